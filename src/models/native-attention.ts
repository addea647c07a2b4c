/**
 * Multi-head attention for short sequences as two native kernels of the `wasm-blas` backend
 * (native/src/attention.cc): `GrokpipeAttention`, the forward pass of every example and head in
 * one call, and `GrokpipeAttentionGrad`, its backward. Written as TF.js ops (layers.ts
 * `multiHeadAttention`, the reference form) a block's attention is some 40 kernels forward and
 * backward (reshapes, transposes, two batched products, scale, mask, softmax and their
 * gradients); here it is two, reading the model's `[batch, seq, d_model]` tensors in place on the
 * wasm heap (heads are column slices: no transposes) and saving the attention probabilities
 * `[batch, n_heads, n_q, seq]` for the backward, small for the sequences this serves (≤ 64).
 * `packedAttention` reads q, k, v packed side by side in one tensor (GPT-2's `c_attn` output, so
 * the model makes them in one product instead of three, and gets one gradient back).
 *
 * Values are the reference form's up to float32 rounding (the products sum in another order;
 * test/model-native-kernels.test.ts). Each (example, head) is computed alone, so an ensemble's
 * members folded into the batch get their solo values bit for bit.
 *
 * Registered through `native-kernels.ts`: on only where `backend.ts` starts `wasm-blas`
 * (`useNativeKernels`); everywhere else `multiHeadAttention` runs its TF.js ops as before.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { defineNativeKernel, nativeKernelsOn } from './native-kernels.js';

/** The addon's attention functions (native/src/attention.cc). */
interface AttentionAddon {
  /** (q, k, v, mask, out, probs, B, n_q, S, d_model, n_heads, qStride, qOffset, kStride, kOffset, vStride, vOffset, maskB, maskH, maskQ, scale) */
  attentionForward(...args: (Float32Array | number)[]): void;
  /** (dy, q, k, v, probs, dq, dk, dv, B, n_q, S, d_model, n_heads, qStride, qOffset, kStride, kOffset, vStride, vOffset, scale) */
  attentionBackward(...args: (Float32Array | number)[]): void;
}

/** Longest key sequence the fused kernels serve; longer ones take the TF.js path. */
export const MAX_FUSED_SEQ = 64;
/** Widest head (`d_head`) the kernels take (native/src/attention.cc `kMaxHeadWidth`). */
export const MAX_HEAD_WIDTH = 256;

/**
 * The element strides `[batch, head, query]` at which the kernel reads an additive mask broadcast
 * to `[batch, n_heads, n_q, seq]` (0 along broadcast axes), or undefined when `mask` is not a
 * float32 tensor whose last axis is `seq` and whose other axes are 1 or the full size.
 */
export function maskStrides(mask: TensorInfo, full: [number, number, number, number]): number[] | undefined {
  if (mask.dtype !== 'float32' || mask.shape.length > 4 || mask.shape[mask.shape.length - 1] !== full[3])
    return undefined;
  const shape = [...new Array<number>(4 - mask.shape.length).fill(1), ...mask.shape];
  const strides = [0, 0, 0];
  let step = shape[3];
  for (let axis = 2; axis >= 0; axis--) {
    if (shape[axis] !== 1 && shape[axis] !== full[axis]) return undefined;
    strides[axis] = shape[axis] === 1 ? 0 : step;
    step *= shape[axis];
  }
  return strides;
}

/**
 * How the kernels find q, k and v among their distinct operand tensors `x0`, `x1`, `x2`: `slots[i]`
 * is the operand holding q (i = 0), k (1), v (2), and `offsets[i]` the column where its d_model
 * columns start in that operand's rows (a packed `[.., 3·d_model]` qkv: slots 0, 0, 0, offsets
 * 0, d, 2d). Together the three column ranges cover each operand's rows exactly.
 */
interface Layout {
  nHeads: number;
  dModel: number;
  slots: number[];
  offsets: number[];
}

/** The addon's layout arguments: each operand's row stride and column offset, for q, k, v. */
function layoutArgs(operands: TensorInfo[], { slots, offsets }: Layout): number[] {
  return [0, 1, 2].flatMap((i) => [operands[slots[i]].shape[2], offsets[i]]);
}

/** A kernel call's layout (its attrs), its operands x0[, x1, x2] and the scores' scale 1/sqrt(d_head). */
function callOf(inputs: NamedTensorInfoMap, attrs: NamedAttrMap): { layout: Layout; x: TensorInfo[]; scale: number } {
  const layout = attrs as unknown as Layout;
  const x = ['x0', 'x1', 'x2'].filter((key) => key in inputs).map((key) => inputs[key] as TensorInfo);
  return { layout, x, scale: 1 / Math.sqrt(layout.dModel / layout.nHeads) };
}

/** `GrokpipeAttention`: operands x0[, x1, x2] and the mask → out `[batch, n_q, d_model]`, probs `[batch, n_heads, n_q, seq]`. */
export const ATTENTION_KERNEL = defineNativeKernel<AttentionAddon>(
  'Attention',
  ['attentionForward'],
  ({ inputs, attrs, addon, out, view }) => {
    const { layout, x, scale } = callOf(inputs, attrs);
    const { nHeads, dModel, slots } = layout;
    const mask = inputs.mask as TensorInfo;
    const [batch, nQ] = x[slots[0]].shape;
    const seq = x[slots[1]].shape[1];
    const strides = maskStrides(mask, [batch, nHeads, nQ, seq]);
    if (!strides) throw new Error(`GrokpipeAttention: mask ${JSON.stringify(mask.shape)} does not broadcast`);
    const [result, probs] = [out([batch, nQ, dModel]), out([batch, nHeads, nQ, seq])];
    addon.attentionForward(
      ...[0, 1, 2].map((i) => view(x[slots[i]])),
      ...[view(mask), view(result), view(probs), batch, nQ, seq, dModel, nHeads],
      ...layoutArgs(x, layout),
      ...strides,
      scale,
    );
    return [result, probs];
  },
);

/** `GrokpipeAttentionGrad`: operands, dy and probs → the operands' gradients. */
export const ATTENTION_GRAD_KERNEL = defineNativeKernel<AttentionAddon>(
  'AttentionGrad',
  ['attentionBackward'],
  ({ inputs, attrs, addon, out, view }) => {
    const { layout, x, scale } = callOf(inputs, attrs);
    const { nHeads, dModel, slots } = layout;
    const [dy, probs] = [inputs.dy, inputs.probs] as TensorInfo[];
    const grads = x.map((t) => out(t.shape));
    addon.attentionBackward(
      ...[view(dy), ...[0, 1, 2].map((i) => view(x[slots[i]])), view(probs)],
      ...[0, 1, 2].map((i) => view(grads[slots[i]])),
      ...[dy.shape[0], dy.shape[1], x[slots[1]].shape[1], dModel, nHeads],
      ...layoutArgs(x, layout),
      scale,
    );
    return grads;
  },
);

/**
 * Whether the fused kernels serve an attention of these sizes: they are on, wasm is the backend,
 * the keys are at most `MAX_FUSED_SEQ` long, heads at most `MAX_HEAD_WIDTH` wide, and the mask is float32 and broadcasts to
 * `[batch, n_heads, n_q, seq]` with a full last axis.
 */
export function fusedAttentionApplies(
  [batch, nQ, seq, dModel]: [number, number, number, number],
  nHeads: number,
  mask: tf.Tensor,
): boolean {
  if (!nativeKernelsOn() || seq > MAX_FUSED_SEQ || dModel % nHeads !== 0 || dModel / nHeads > MAX_HEAD_WIDTH)
    return false;
  return maskStrides(mask, [batch, nHeads, nQ, seq]) !== undefined;
}

/**
 * Multi-head attention as one tape node on the native kernels: `softmax(q kᵀ / sqrt(d_head) +
 * mask) v` per head, the contract of layers.ts `multiHeadAttention` (check `fusedAttentionApplies`
 * first). The mask is a constant: it gets no gradient.
 * @param q `[batch, n_q, d_model]`; @param k, v `[batch, seq, d_model]` (float32)
 * @param mask additive, broadcastable to `[batch, n_heads, n_q, seq]` with last axis `seq`
 * @returns `[batch, n_q, d_model]`
 */
export function fusedAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  nHeads: number,
  mask: tf.Tensor,
): tf.Tensor3D {
  return attend([q, k, v], { nHeads, dModel: q.shape[2], slots: [0, 1, 2], offsets: [0, 0, 0] }, mask);
}

/**
 * `fusedAttention` on a packed `qkv` `[batch, seq, 3·d_model]` (q, k, v side by side in each row,
 * as GPT-2's `c_attn` makes them in one product); its gradient is one `[batch, seq, 3·d_model]`.
 * @returns `[batch, seq, d_model]`
 */
export function packedAttention(qkv: tf.Tensor3D, nHeads: number, mask: tf.Tensor): tf.Tensor3D {
  const d = qkv.shape[2] / 3;
  return attend([qkv], { nHeads, dModel: d, slots: [0, 0, 0], offsets: [0, d, 2 * d] }, mask);
}

/**
 * `fusedAttention` with k and v packed in one `kv` `[batch, seq, 2·d_model]` and the queries `q`
 * `[batch, n_q, d_model]` apart (GPT-2's answer-position block). @returns `[batch, n_q, d_model]`
 */
export function packedKvAttention(q: tf.Tensor3D, kv: tf.Tensor3D, nHeads: number, mask: tf.Tensor): tf.Tensor3D {
  const d = q.shape[2];
  return attend([q, kv], { nHeads, dModel: d, slots: [0, 1, 1], offsets: [0, 0, d] }, mask);
}

/** The tape node: operands `x` (distinct tensors) in `layout`, the two kernels forward and back. */
function attend(x: tf.Tensor3D[], layout: Layout, mask: tf.Tensor): tf.Tensor3D {
  const attrs = layout as unknown as tf.NamedAttrMap;
  const named = (xs: tf.Tensor[]) => Object.fromEntries(xs.map((t, i) => [`x${i}`, t]));
  const attention = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xs = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [out, probs] = tf.engine().runKernel(ATTENTION_KERNEL, { ...named(xs), mask }, attrs) as tf.Tensor[];
    save([...xs, probs]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf
          .engine()
          .runKernel(
            ATTENTION_GRAD_KERNEL,
            { ...named(saved.slice(0, -1)), dy, probs: saved[saved.length - 1] },
            attrs,
          ) as tf.Tensor[],
    };
  });
  return attention(...x) as tf.Tensor3D;
}

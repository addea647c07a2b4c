/**
 * Multi-head attention for short sequences as two native kernels of the `wasm-blas` backend
 * (native/src/attention.cc): `GrokpipeAttention`, the forward pass of every example and head in
 * one call, and `GrokpipeAttentionGrad`, its backward. Written as TF.js ops (layers.ts
 * `multiHeadAttention`, the reference form) a block's attention is some 40 kernels forward and
 * backward (reshapes, transposes, two batched products, scale, mask, softmax and their
 * gradients); here it is two, reading the model's `[batch, seq, d_model]` tensors in place on the
 * wasm heap (heads are column slices: no transposes) and saving the attention probabilities
 * `[batch, n_heads, n_q, seq]` for the backward, small for the sequences this serves (≤ 64).
 *
 * Values are the reference form's up to float32 rounding (the products sum in another order;
 * test/model-native-kernels.test.ts). Each (example, head) is computed alone, so an ensemble's
 * members folded into the batch get their solo values bit for bit.
 *
 * On only where `backend.ts` starts `wasm-blas` (`useNativeAttention`); everywhere else
 * `multiHeadAttention` runs its TF.js ops as before.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeAddon } from './native-blas.js';
import type { WasmHeapBackend } from './native-blas.js';

/** The addon's attention functions (native/src/attention.cc). */
interface AttentionAddon {
  /** (q, k, v, mask, out, probs, B, n_q, S, d_model, n_heads, maskB, maskH, maskQ, scale) */
  attentionForward(...args: (Float32Array | number)[]): void;
  /** (dy, q, k, v, probs, dq, dk, dv, B, n_q, S, d_model, n_heads, scale) */
  attentionBackward(...args: (Float32Array | number)[]): void;
}

/** Kernel names on the `wasm` backend. */
export const ATTENTION_KERNEL = 'GrokpipeAttention';
export const ATTENTION_GRAD_KERNEL = 'GrokpipeAttentionGrad';

/** Longest key sequence the fused kernels serve; longer ones take the TF.js path. */
export const MAX_FUSED_SEQ = 64;

let enabled = false;

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

function addon(): AttentionAddon {
  return nativeAddon() as AttentionAddon;
}

const forwardKernel: KernelFunc = ({ inputs, attrs, backend }) => {
  const { q, k, v, mask } = inputs as Record<'q' | 'k' | 'v' | 'mask', TensorInfo>;
  const nHeads = (attrs as { nHeads: number }).nHeads;
  const [batch, nQ, dModel] = q.shape;
  const seq = k.shape[1];
  const strides = maskStrides(mask, [batch, nHeads, nQ, seq]);
  if (!strides) throw new Error(`${ATTENTION_KERNEL}: mask ${JSON.stringify(mask.shape)} does not broadcast`);
  const heap = backend as WasmHeapBackend;
  const out = heap.makeOutput([batch, nQ, dModel], 'float32');
  const probs = heap.makeOutput([batch, nHeads, nQ, seq], 'float32');
  const view = (t: TensorInfo) => heap.typedArrayFromHeap(t);
  addon().attentionForward(
    ...[view(q), view(k), view(v), view(mask), view(out), view(probs), batch, nQ, seq, dModel, nHeads],
    ...strides,
    1 / Math.sqrt(dModel / nHeads),
  );
  return [out, probs];
};

const backwardKernel: KernelFunc = ({ inputs, attrs, backend }) => {
  const { dy, q, k, v, probs } = inputs as Record<'dy' | 'q' | 'k' | 'v' | 'probs', TensorInfo>;
  const nHeads = (attrs as { nHeads: number }).nHeads;
  const [batch, nQ, dModel] = q.shape;
  const heap = backend as WasmHeapBackend;
  const [dq, dk, dv] = [q.shape, k.shape, v.shape].map((s) => heap.makeOutput(s, 'float32'));
  const view = (t: TensorInfo) => heap.typedArrayFromHeap(t);
  addon().attentionBackward(
    ...[view(dy), view(q), view(k), view(v), view(probs), view(dq), view(dk), view(dv)],
    ...[batch, nQ, k.shape[1], dModel, nHeads, 1 / Math.sqrt(dModel / nHeads)],
  );
  return [dq, dk, dv];
};

const KERNELS: KernelConfig[] = [
  { kernelName: ATTENTION_KERNEL, backendName: 'wasm', kernelFunc: forwardKernel },
  { kernelName: ATTENTION_GRAD_KERNEL, backendName: 'wasm', kernelFunc: backwardKernel },
];

/**
 * Registers the fused attention kernels on the `wasm` backend and routes `multiHeadAttention` to
 * them (`on`), or unregisters them (`off`). Idempotent.
 * @throws Error when turning on without the loaded addon or with one built before these kernels.
 */
export function useNativeAttention(on: boolean): void {
  if (on && typeof (nativeAddon() as Partial<AttentionAddon> | undefined)?.attentionForward !== 'function')
    throw new Error('useNativeAttention: the native addon is not loaded or predates attention (npm run build:native)');
  for (const config of KERNELS) {
    const present = tf.getKernel(config.kernelName, 'wasm') !== undefined;
    if (on && !present) tf.registerKernel(config);
    if (!on && present) tf.unregisterKernel(config.kernelName, 'wasm');
  }
  enabled = on;
}

/**
 * Whether `fusedAttention` serves these operands: the kernels are on, wasm is the backend, the keys
 * are at most `MAX_FUSED_SEQ` long, every operand is float32 and the mask broadcasts with a full
 * last axis.
 */
export function fusedAttentionApplies(q: tf.Tensor3D, k: tf.Tensor3D, nHeads: number, mask: tf.Tensor): boolean {
  if (!enabled || k.shape[1] > MAX_FUSED_SEQ || tf.getBackend() !== 'wasm') return false;
  if (q.dtype !== 'float32' || k.dtype !== 'float32' || q.shape[2] % nHeads !== 0) return false;
  return maskStrides(mask, [q.shape[0], nHeads, q.shape[1], k.shape[1]]) !== undefined;
}

/**
 * Multi-head attention as one tape node on the native kernels: `softmax(q kᵀ / sqrt(d_head) +
 * mask) v` per head, the same contract as layers.ts `multiHeadAttention` (check
 * `fusedAttentionApplies` first). The mask is a constant: it gets no gradient.
 * @param q `[batch, n_q, d_model]`; @param k, v `[batch, seq, d_model]`
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
  const attention = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [out, probs] = tf
      .engine()
      .runKernel(ATTENTION_KERNEL, { q: qi, k: ki, v: vi, mask }, { nHeads }) as tf.Tensor[];
    save([qi, ki, vi, probs]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, [qs, ks, vs, ps]: tf.Tensor[]) =>
        tf.engine().runKernel(ATTENTION_GRAD_KERNEL, { dy, q: qs, k: ks, v: vs, probs: ps }, { nHeads }) as tf.Tensor[],
    };
  });
  return attention(q, k, v) as tf.Tensor3D;
}

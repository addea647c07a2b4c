/**
 * AdamW's update as native kernels of the `wasm-blas` backend (native/src/adamw.cc):
 * `GrokpipeGradNorm`, the global gradient norm of every member in one call, and `GrokpipeAdamW`,
 * the update of a run of parameters and their flat moments in one call (clipping coefficient,
 * moments, decoupled decay and step: Loshchilov & Hutter 2019, Algorithm 2, as adamw.ts writes
 * it). As TF.js ops (adamw.ts) an update is some 140 kernels for a small model; here it is two.
 *
 * Both run the float32 operations of adamw.ts' chain in the same order (the norm: each gradient's
 * squares summed in index order, those sums in parameter order, as wasm's Sum and AddN), so the
 * values are the chain's bit for bit (test/model-optimised.test.ts, test/model-native-kernels.test.ts).
 * Both work on each member's slice alone: an ensemble's member gets its solo values bit for bit.
 *
 * Registered through `native-kernels.ts`: on only where `backend.ts` starts `wasm-blas`
 * (`useNativeKernels`); elsewhere adamw.ts runs its TF.js chain as before.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { defineNativeKernel, nativeKernelsOn } from './native-kernels.js';

/** The addon's AdamW functions (native/src/adamw.cc). */
interface AdamWAddon {
  gradNorm(grads: Float32Array[], members: number, out: Float32Array): void;
  /** (params, grads, newParams, decays, m, v, newM, newV, norm, decay, step, members, clip, b1, b1c, b2, b2c, eps, invBc2Sqrt) */
  adamwUpdate(...args: (Float32Array | Float32Array[] | Uint8Array | number)[]): void;
}

/** The scalars of update t, as adamw.ts computes them (float64, rounded to float32 by the kernel). */
export interface NativeAdamWScalars {
  /** Maximum global norm; 0 turns clipping off. */
  clip: number;
  /** β₁, 1 − β₁, β₂, 1 − β₂, ε, and `1 / sqrt(1 − β₂ᵗ)`. */
  b1: number;
  b1c: number;
  b2: number;
  b2c: number;
  eps: number;
  invBc2Sqrt: number;
  /** Per member: the decay factor `1 − lr_t · λ` and the step `lr_t / (1 − β₁ᵗ)`. */
  decay: number[];
  step: number[];
}

/** `GrokpipeGradNorm`: gradients g0, g1, ... → each member's global norm (`[members]`, or a scalar). */
export const GRAD_NORM_KERNEL = defineNativeKernel<AdamWAddon>(
  'GradNorm',
  ['gradNorm'],
  ({ inputs, attrs, addon, out, view }) => {
    const { members, shape } = attrs as { members: number; shape: number[] };
    const norm = out(shape);
    const grads = Object.keys(inputs).map((key) => view(inputs[key] as TensorInfo));
    addon.gradNorm(grads, members, view(norm));
    return norm;
  },
);

/** `GrokpipeAdamW`: parameters p0.., gradients g0.., moments m, v and norms → new parameters, m, v. */
export const ADAMW_KERNEL = defineNativeKernel<AdamWAddon>(
  'AdamW',
  ['adamwUpdate'],
  ({ inputs, attrs, addon, out, view }) => {
    const a = attrs as unknown as NativeAdamWScalars & { count: number; members: number; decays: number[] };
    const at = (key: string) => inputs[key] as TensorInfo;
    const index = [...new Array<number>(a.count).keys()];
    const outs = [...index.map((i) => at(`p${i}`).shape), at('m').shape, at('v').shape].map((s) => out(s));
    addon.adamwUpdate(
      index.map((i) => view(at(`p${i}`))),
      index.map((i) => view(at(`g${i}`))),
      outs.slice(0, a.count).map(view),
      Uint8Array.from(a.decays),
      ...[view(at('m')), view(at('v')), view(outs[a.count]), view(outs[a.count + 1]), view(at('norm'))],
      ...[Float32Array.from(a.decay), Float32Array.from(a.step), a.members, a.clip],
      ...[a.b1, a.b1c, a.b2, a.b2c, a.eps, a.invBc2Sqrt],
    );
    return outs;
  },
);

/** Whether adamw.ts should update through these kernels: they are on, wasm runs, every tensor is float32. */
export function nativeAdamWApplies(tensors: readonly tf.Tensor[]): boolean {
  return nativeKernelsOn() && tensors.every((t) => t.dtype === 'float32');
}

/**
 * Each member's global L2 norm `sqrt(Σ_p Σ_i g_i²)` of gradients stacked `[members, ...]` (or of
 * one model's, `members` 1), summed in float32 as adamw.ts' `globalNorm`.
 * @returns `[members]` for an ensemble (`stacked`), a scalar for one model.
 */
export function nativeGradNorm(grads: readonly tf.Tensor[], members: number, stacked: boolean): tf.Tensor {
  const inputs = Object.fromEntries(grads.map((g, i) => [`g${i}`, g]));
  return tf.engine().runKernel(GRAD_NORM_KERNEL, inputs, { members, shape: stacked ? [members] : [] }) as tf.Tensor;
}

/**
 * One AdamW update of a run of parameters whose moments are stored flat, `[members, Σ sizes]`
 * (or `[Σ sizes]`; a lone parameter's may have its own shape), parameter i at offset
 * `Σ_{j<i} size_j` of each member's row.
 * @param norm each member's global gradient norm (`nativeGradNorm`), for the clipping coefficient
 * @param decays whether each parameter decays
 * @returns the new parameters (shaped as `params`) and moments (shaped as `m`, `v`); the caller assigns and frees them
 */
export function nativeAdamWUpdate(
  params: readonly tf.Tensor[],
  grads: readonly tf.Tensor[],
  moments: { m: tf.Tensor; v: tf.Tensor; norm: tf.Tensor },
  decays: readonly boolean[],
  members: number,
  scalars: NativeAdamWScalars,
): { params: tf.Tensor[]; m: tf.Tensor; v: tf.Tensor } {
  const inputs: Record<string, tf.Tensor> = { ...moments };
  params.forEach((p, i) => (inputs[`p${i}`] = p));
  grads.forEach((g, i) => (inputs[`g${i}`] = g));
  const attrs = { ...scalars, count: params.length, members, decays: decays.map(Number) };
  const out = tf.engine().runKernel(ADAMW_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { params: out.slice(0, params.length), m: out[params.length], v: out[params.length + 1] };
}

/**
 * The Grokfast-EMA gradient filter (grad-filter.ts) as one native kernel of the `wasm-blas`
 * backend (native/src/grad_filter.cc), `GrokpipeEmaFilter`: every gradient and moving average of a
 * step in one call instead of five TF.js kernels a parameter. The kernel runs the float32
 * operations of grad-filter.ts' chain in the same order, so the values are the chain's bit for bit
 * (test/model-native-kernels.test.ts). Elementwise: an ensemble's member gets its solo values.
 *
 * Registered through `native-kernels.ts`: on only where `backend.ts` starts `wasm-blas`
 * (`useNativeKernels`); elsewhere grad-filter.ts runs its TF.js chain as before.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { defineNativeKernel, nativeKernelsOn } from './native-kernels.js';

/** The addon's filter (native/src/grad_filter.cc). */
interface GradFilterAddon {
  emaFilter(
    grads: Float32Array[],
    emas: Float32Array[],
    newGrads: Float32Array[],
    newEmas: Float32Array[],
    alpha: number,
    oneMinusAlpha: number,
    lambda: number,
  ): void;
}

/** `GrokpipeEmaFilter`: gradients g0.. and averages e0.. (none at the first step) → new gradients, new averages. */
export const EMA_FILTER_KERNEL = defineNativeKernel<GradFilterAddon>(
  'EmaFilter',
  ['emaFilter'],
  ({ inputs, attrs, addon, out, view }) => {
    const { count, alpha, oneMinusAlpha, lambda } = attrs as Record<string, number>;
    const index = [...new Array<number>(count).keys()];
    const grads = index.map((i) => inputs[`g${i}`] as TensorInfo);
    // The first step has no averages: they start at the gradients.
    const emas = index.map((i) => (inputs[`e${i}`] ?? inputs[`g${i}`]) as TensorInfo);
    const outs = [...grads, ...grads].map((g) => out(g.shape));
    addon.emaFilter(
      grads.map(view),
      emas.map(view),
      outs.slice(0, count).map(view),
      outs.slice(count).map(view),
      alpha,
      oneMinusAlpha,
      lambda,
    );
    return outs;
  },
);

/** Whether grad-filter.ts should filter through the kernel: it is on, wasm runs, every tensor is float32. */
export function nativeGradFilterApplies(tensors: readonly tf.Tensor[]): boolean {
  return nativeKernelsOn() && tensors.every((t) => t.dtype === 'float32');
}

/**
 * One Grokfast-EMA step on the kernel, the contract of grad-filter.ts `emaFilter` for scalar α
 * and λ (shapes already checked there).
 * @param ema the averages, or null at the first step. @returns the filtered gradients and new averages.
 */
export function nativeEmaFilter(
  grads: readonly tf.Tensor[],
  ema: readonly tf.Tensor[] | null,
  alpha: number,
  lambda: number,
): { grads: tf.Tensor[]; ema: tf.Tensor[] } {
  const inputs: Record<string, tf.Tensor> = {};
  grads.forEach((g, i) => (inputs[`g${i}`] = g));
  ema?.forEach((e, i) => (inputs[`e${i}`] = e));
  const attrs = { count: grads.length, alpha, oneMinusAlpha: 1 - alpha, lambda };
  const out = tf.engine().runKernel(EMA_FILTER_KERNEL, inputs, attrs) as tf.Tensor[];
  return { grads: out.slice(0, grads.length), ema: out.slice(grads.length) };
}

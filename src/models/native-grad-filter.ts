/**
 * The Grokfast-EMA gradient filter (grad-filter.ts) as one native kernel of the `wasm-blas`
 * backend (native/src/grad_filter.cc), `GrokpipeEmaFilter`: every gradient and moving average of a
 * step in one call instead of five TF.js kernels a parameter. The kernel runs the float32
 * operations of grad-filter.ts' chain in the same order, so the values are the chain's bit for bit
 * (test/model-native-kernels.test.ts). Elementwise: an ensemble's member gets its solo values.
 *
 * On only where `backend.ts` starts `wasm-blas` (`useNativeGradFilter`); elsewhere grad-filter.ts
 * runs its TF.js chain as before.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeAddon, switchNativeKernels } from './native-blas.js';
import type { WasmHeapBackend } from './native-blas.js';

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

/** Kernel name on the `wasm` backend. */
export const EMA_FILTER_KERNEL = 'GrokpipeEmaFilter';

let enabled = false;

const filterKernel: KernelFunc = ({ inputs, attrs, backend }) => {
  const { count, alpha, oneMinusAlpha, lambda } = attrs as Record<string, number>;
  const heap = backend as WasmHeapBackend;
  const index = [...new Array<number>(count).keys()];
  const grads = index.map((i) => inputs[`g${i}`] as TensorInfo);
  // The first step has no averages: they start at the gradients.
  const emas = index.map((i) => (inputs[`e${i}`] ?? inputs[`g${i}`]) as TensorInfo);
  const outs = [...grads, ...grads].map((g) => heap.makeOutput(g.shape, 'float32'));
  const view = (t: TensorInfo) => heap.typedArrayFromHeap(t);
  (nativeAddon() as GradFilterAddon).emaFilter(
    grads.map(view),
    emas.map(view),
    outs.slice(0, count).map(view),
    outs.slice(count).map(view),
    alpha,
    oneMinusAlpha,
    lambda,
  );
  return outs;
};

const KERNEL: KernelConfig = { kernelName: EMA_FILTER_KERNEL, backendName: 'wasm', kernelFunc: filterKernel };

/**
 * Registers the filter kernel on the `wasm` backend and routes grad-filter.ts to it (`on`), or
 * unregisters it (`off`). Idempotent.
 * @throws Error when turning on without the loaded addon or with one built before this kernel.
 */
export function useNativeGradFilter(on: boolean): void {
  switchNativeKernels([KERNEL], on, 'emaFilter');
  enabled = on;
}

/** Whether grad-filter.ts should filter through the kernel: it is on, wasm runs, every tensor is float32. */
export function nativeGradFilterApplies(tensors: readonly tf.Tensor[]): boolean {
  return enabled && tf.getBackend() === 'wasm' && tensors.every((t) => t.dtype === 'float32');
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

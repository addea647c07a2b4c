/**
 * grokpipe's fused native kernels on the `wasm-blas` backend: the switch, the registry and the
 * heap access that `native-loss.ts`, `native-norms.ts`, `native-activations.ts` and
 * `native-embedding.ts` share.
 *
 * The addon (native/src/kernels.cc, loaded with the BLAS one by `native-blas.ts`) computes
 * softmax cross-entropy, LayerNorm, RMSNorm, GELU, SiLU, SwiGLU's gate and GPT-2's token + position embedding
 * (`native-embedding.ts`), forward and backward, each in one pass
 * over Float32Array views of the wasm heap (no copies). Each is a TF.js kernel of the `wasm`
 * backend named `Grokpipe…`, run through `tf.engine().runKernel` (so `tf.profile` and memory
 * tracking see it), and wrapped in a `tf.customGrad` so that the tape holds one node.
 *
 * They are on exactly when `initBackend` starts `wasm-blas` (`useNativeKernels`); the callers
 * (`fused.ts`, `layers.ts`, `train/loss.ts`) ask `nativeKernelsOn()` and otherwise run their
 * TF.js forms, so every other backend computes as before. The kernels are single-threaded and
 * deterministic, and each output row depends only on its own input row, so a member of an
 * ensemble gets the bits of its solo run; values equal the TF.js forms to float32 rounding
 * (test/model-native-kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeAddon } from './native-blas.js';

/** An embedding's sizes (native/src/embedding.cc `embed`). */
export type EmbedShape = [groups: number, rows: number, seq: number, vocab: number, positions: number, d: number];

/** The fused kernels' functions of the addon (native/src/kernels.cc documents each). */
export interface KernelsAddon {
  crossEntropy(
    logits: Float32Array,
    targets: Int32Array,
    loss: Float32Array,
    grad: Float32Array,
    correct: Float32Array,
    rows: number,
    vocab: number,
  ): void;
  crossEntropyGrad(dy: Float32Array, grad: Float32Array, dlogits: Float32Array, rows: number, vocab: number): void;
  /** LayerNorm, or RMSNorm when `beta` is null. */
  norm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array | null,
    y: Float32Array,
    xhat: Float32Array,
    rstd: Float32Array,
    groups: number,
    rows: number,
    d: number,
    eps: number,
  ): void;
  /** LayerNorm's backward, or RMSNorm's when `dbeta` is null. */
  normGrad(
    dy: Float32Array,
    xhat: Float32Array,
    rstd: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array | null,
    groups: number,
    rows: number,
    d: number,
  ): void;
  gelu(x: Float32Array, y: Float32Array, n: number): void;
  geluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, n: number): void;
  silu(x: Float32Array, y: Float32Array, n: number): void;
  siluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, n: number): void;
  swiglu(gate: Float32Array, up: Float32Array, y: Float32Array, n: number): void;
  swigluGrad(
    gate: Float32Array,
    up: Float32Array,
    dy: Float32Array,
    dgate: Float32Array,
    dup: Float32Array,
    n: number,
  ): void;
  embed(table: Float32Array, pos: Float32Array, ids: Int32Array, out: Float32Array, ...shape: EmbedShape): void;
  embedGrad(dy: Float32Array, ids: Int32Array, dtable: Float32Array, dpos: Float32Array, ...shape: EmbedShape): void;
  /** fmath.h's polynomial exp, elementwise (for its accuracy test). */
  exp(x: Float32Array, y: Float32Array, n: number): void;
}

/** The wasm backend's heap access (tfjs-backend-wasm's `BackendWasm`). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array;
}

/**
 * A native kernel's body: allocate outputs with `out`, then (after every allocation: allocating
 * may grow, and detach, the wasm heap) read views with `view` and call the addon.
 */
export type NativeKernelBody = (io: {
  inputs: NamedTensorInfoMap;
  attrs: NamedAttrMap;
  addon: KernelsAddon;
  out: (shape: number[]) => TensorInfo;
  view: (info: TensorInfo) => Float32Array;
  ints: (info: TensorInfo) => Int32Array;
}) => TensorInfo | TensorInfo[];

const defined: KernelConfig[] = [];
let on = false;

/** The addon with the fused kernels, or undefined when it is not loaded or predates them. */
export function kernelsAddon(): KernelsAddon | undefined {
  const addon = nativeAddon() as Partial<KernelsAddon> | undefined;
  return addon && typeof addon.crossEntropy === 'function' ? (addon as KernelsAddon) : undefined;
}

/**
 * Declares the `wasm` kernel `Grokpipe<name>` (registered with TF.js when the kernels are turned
 * on, at once if they already are). Called once per kernel by the topic files at import.
 * @returns the kernel's TF.js name.
 */
export function defineNativeKernel(name: string, body: NativeKernelBody): string {
  const kernelName = `Grokpipe${name}`;
  const kernelFunc: KernelFunc = ({ inputs, attrs, backend }) => {
    const addon = kernelsAddon();
    if (!addon) throw new Error(`${kernelName}: the native addon with the fused kernels is not loaded`);
    const b = backend as WasmHeapBackend;
    return body({
      inputs,
      attrs: attrs ?? {},
      addon,
      out: (shape) => b.makeOutput(shape, 'float32'),
      view: (info) => {
        if (info.dtype !== 'float32') throw new Error(`${kernelName}: expected float32, got ${info.dtype}`);
        return b.typedArrayFromHeap(info) as Float32Array;
      },
      ints: (info) => {
        if (info.dtype !== 'int32') throw new Error(`${kernelName}: expected int32, got ${info.dtype}`);
        return b.typedArrayFromHeap(info) as Int32Array;
      },
    });
  };
  const config: KernelConfig = { kernelName, backendName: 'wasm', kernelFunc };
  defined.push(config);
  if (on) register(config);
  return kernelName;
}

function register(config: KernelConfig): void {
  if (!tf.getKernel(config.kernelName, config.backendName)) tf.registerKernel(config);
}

/**
 * Turns the fused native kernels on (`wasm-blas`) or off (every other backend). `initBackend`
 * calls it. @throws Error when turning on without the addon's fused kernels loaded.
 */
export function useNativeKernels(enabled: boolean): void {
  if (enabled && !kernelsAddon())
    throw new Error('useNativeKernels: the native addon has no fused kernels (rebuild it: npm run build:native)');
  on = enabled;
  if (on) defined.forEach(register);
}

/** Whether the fused layers should call the native kernels: on, and the active backend is wasm. */
export function nativeKernelsOn(): boolean {
  return on && tf.getBackend() === 'wasm';
}

/** Runs the native kernel `kernelName` on tensors (one output or several). */
export function runNative<T extends tf.Tensor | tf.Tensor[]>(
  kernelName: string,
  inputs: Record<string, tf.Tensor>,
  attrs: NamedAttrMap = {},
): T {
  return tf.engine().runKernel(kernelName, inputs, attrs) as unknown as T;
}

/** The number of elements of a shape. */
export const sizeOf = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

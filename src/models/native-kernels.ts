/**
 * grokpipe's fused native kernels on the `wasm-blas` backend: the one registry and on/off switch
 * of every `Grokpipe…` kernel.
 *
 * The addon (native/src/*.cc, loaded with the BLAS one by `native-blas.ts`) computes each fused
 * operation in one pass over Float32Array views of the wasm heap (no copies; `wasm-heap.ts`). Each
 * topic file declares its kernels here with `defineNativeKernel` at import: `native-loss.ts`
 * (softmax cross-entropy), `native-norms.ts` (LayerNorm, RMSNorm), `native-activations.ts` (GELU,
 * SiLU, SwiGLU), `native-embedding.ts` (GPT-2's token + position embedding),
 * `native-attention.ts` (multi-head attention), `native-adamw.ts` (gradient norm and AdamW
 * update) and `native-grad-filter.ts` (Grokfast-EMA). Each kernel is a TF.js kernel of the `wasm`
 * backend named `Grokpipe…`, run through `tf.engine().runKernel` (so `tf.profile` and memory
 * tracking see it), usually wrapped in a `tf.customGrad` so that the tape holds one node.
 *
 * They are on exactly when `initBackend` starts `wasm-blas` (`useNativeKernels`, its one call);
 * the callers (`fused.ts`, `layers.ts`, `train/loss.ts`, `adamw.ts`, `grad-filter.ts`, the topic
 * files' `…Applies`) ask `nativeKernelsOn()` and otherwise run their TF.js forms, so every other
 * backend computes as before. Turning them on checks that the loaded addon has every function the
 * defined kernels call (a stale build names the missing one). The kernels are single-threaded and
 * deterministic, and each output row depends only on its own input row (or member), so a member
 * of an ensemble gets the bits of its solo run; values equal the TF.js forms to float32 rounding
 * (test/model-native-kernels.test.ts, test/model-native-attention.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeAddon } from './native-blas.js';
import { wasmHeap } from './wasm-heap.js';
import type { WasmHeap } from './wasm-heap.js';

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

/**
 * A native kernel's body: allocate outputs with `out`, then (after every allocation: allocating
 * may grow, and detach, the wasm heap) read views with `view` / `ints` and call the addon `A`
 * (the topic's interface to it).
 */
export type NativeKernelBody<A = KernelsAddon> = (
  io: WasmHeap & { inputs: NamedTensorInfoMap; attrs: NamedAttrMap; addon: A },
) => TensorInfo | TensorInfo[];

/** A defined kernel: its TF.js config and the addon functions its body calls. */
interface Defined {
  config: KernelConfig;
  uses: readonly string[];
}

const defined: Defined[] = [];
let on = false;

/** The first of `uses` that the loaded addon lacks ('' when none is loaded), or undefined. */
function missing(uses: readonly string[]): string | undefined {
  const addon = nativeAddon() as Record<string, unknown> | undefined;
  if (!addon) return '';
  return uses.find((f) => typeof addon[f] !== 'function');
}

/**
 * The loaded addon, or undefined when it is not loaded or predates a function that a defined
 * kernel calls.
 */
export function kernelsAddon(): KernelsAddon | undefined {
  return missing(defined.flatMap((d) => d.uses)) === undefined ? (nativeAddon() as KernelsAddon) : undefined;
}

/** Registers a defined kernel on `wasm` (once). @throws Error when the addon lacks a function it calls. */
function register({ config, uses }: Defined): void {
  const lacking = missing(uses);
  if (lacking === '')
    throw new Error(`${config.kernelName}: the native addon is not loaded (build it: npm run build:native)`);
  if (lacking !== undefined)
    throw new Error(`${config.kernelName}: the native addon predates ${lacking}() (rebuild it: npm run build:native)`);
  if (!tf.getKernel(config.kernelName, 'wasm')) tf.registerKernel(config);
}

/**
 * Declares the `wasm` kernel `Grokpipe<name>`, registered with TF.js while the kernels are on (at
 * once if they already are). Called once per kernel by the topic files at import.
 * @param uses the addon functions `body` calls (checked when the kernel is turned on)
 * @returns the kernel's TF.js name.
 */
export function defineNativeKernel<A extends object = KernelsAddon>(
  name: string,
  uses: readonly (keyof A & string)[],
  body: NativeKernelBody<A>,
): string {
  const kernelName = `Grokpipe${name}`;
  const kernelFunc: KernelFunc = ({ inputs, attrs, backend }) =>
    body({ inputs, attrs: attrs ?? {}, addon: nativeAddon() as A, ...wasmHeap(backend, kernelName) });
  const kernel: Defined = { config: { kernelName, backendName: 'wasm', kernelFunc }, uses };
  defined.push(kernel);
  if (on) register(kernel);
  return kernelName;
}

/**
 * Turns the fused native kernels on (`wasm-blas`: registers every defined kernel on `wasm`) or
 * off (every other backend: unregisters them). Idempotent; `initBackend` calls it.
 * @throws Error when turning on without the addon loaded, or with one built before a function
 *   that a defined kernel calls (the message names it and says `npm run build:native`).
 */
export function useNativeKernels(enabled: boolean): void {
  if (enabled) defined.forEach(register);
  else
    for (const { config } of defined)
      if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
  on = enabled;
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

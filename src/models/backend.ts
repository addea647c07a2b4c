/**
 * Choosing and initialising the TF.js backend that training runs on (docs/design.md §6).
 *
 * Best first: `@tensorflow/tfjs-node-gpu` (CUDA), `@tensorflow/tfjs-node` (libtensorflow on the
 * CPU), `wasm-blas` (wasm with its matrix products on OpenBLAS through grokpipe's addon,
 * `native-blas.ts`), `@tensorflow/tfjs-backend-wasm` (XNNPACK, SIMD), then the plain JavaScript
 * CPU backend. The libtensorflow packages are optional dependencies and the addon an optional
 * build; each is used only when present. The name of the backend that ran goes into the manifest.
 *
 * Kernel fixes, registered by `initBackend` (measured on a 2-core EPYC, see bench/train.bench.ts):
 * - wasm and cpu: `UnsortedSegmentSum` on the host. The gradient of `gather` (every embedding
 *   lookup) needs it; wasm has none, and cpu's loops over the whole input once per segment
 *   (O(vocab · batch · seq · d_model)).
 * - wasm: `GatherV2` along axis 0 copies whole rows on the host (the stock kernel is ~30x slower
 *   on a `[vocab, d_model]` table) and `Identity` shares the input's buffer instead of copying it
 *   (every tensor saved for backprop is cloned).
 * - all: the gradients of `gradients.ts` (tfjs-core's Node bundle registers none).
 * - wasm-blas: `BatchMatMul` on the native CBLAS library (`native-blas.ts`), and grokpipe's fused
 *   native kernels, turned on and off together (`native-kernels.ts` `useNativeKernels`), one
 *   topic a file: cross-entropy (`native-loss.ts`), LayerNorm and RMSNorm (`native-norms.ts`),
 *   GELU, SiLU, SwiGLU (`native-activations.ts`), GPT-2's embedding (`native-embedding.ts`),
 *   attention for short sequences (`native-attention.ts`), the AdamW update (`native-adamw.ts`)
 *   and the Grokfast filter (`native-grad-filter.ts`).
 * The other wasm problem, `BatchMatMul` with transposed operands running ~15x slower than plain
 * products, is avoided by `matMul` in `layers.ts` (explicit transposes on `wasm` only).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendName } from './backend-names.js';
import { BACKEND_PREFERENCE, BACKEND_REQUESTS, isBackendRequest } from './backend-names.js';
import { registerGradients } from './gradients.js';
import { useExplicitTransposeGradient } from './layers.js';
// The fused kernels' topic files define their kernels at import (native-kernels.ts): all of them
// are imported here so that `useNativeKernels(true)` checks the addon against every kernel.
import './native-activations.js';
import './native-adamw.js';
import './native-attention.js';
import './native-embedding.js';
import './native-grad-filter.js';
import './native-loss.js';
import './native-norms.js';
import { loadNativeBlas, NATIVE_BLAS_HINT, setBlasThreads, useNativeMatMul } from './native-blas.js';
import { useNativeKernels } from './native-kernels.js';
import type { BlasLibrary } from './native-blas.js';

export type { BackendName, BackendRequest } from './backend-names.js';
export { BACKEND_PREFERENCE, BACKEND_REQUESTS } from './backend-names.js';

/** Thrown when a requested backend is not installed or fails to start; the message says how to fix it. */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

/** Options of `initBackend`. */
export interface BackendOptions {
  /**
   * Threads for numeric work: `TF_NUM_INTRAOP_THREADS` for tfjs-node (when not already set), the
   * BLAS library's threads for `wasm-blas` (default: every core). wasm itself runs one thread.
   */
  threads?: number;
}

const PACKAGE: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  'wasm-blas': '@tensorflow/tfjs-backend-wasm',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

/** The TF.js name under which each package registers its backend. */
const TF_NAME: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  'wasm-blas': 'wasm',
  wasm: 'wasm',
  cpu: 'cpu',
};

const INSTALL_HINT: Record<BackendName, string> = {
  'tensorflow-gpu':
    'install it with `npm install @tensorflow/tfjs-node-gpu` on a machine with internet access and CUDA (it downloads libtensorflow at install time; CUDA and cuDNN must match the versions its README lists)',
  tensorflow:
    'install it with `npm install @tensorflow/tfjs-node` on a machine with internet access (it downloads libtensorflow at install time)',
  'wasm-blas': NATIVE_BLAS_HINT,
  wasm: 'reinstall the dependencies with `npm ci` (@tensorflow/tfjs-backend-wasm is a regular dependency)',
  cpu: 'reinstall the dependencies with `npm ci` (@tensorflow/tfjs-backend-cpu is a regular dependency)',
};

let active: BackendName | undefined;
let activeBlas: BlasLibrary | undefined;

/** The backend `initBackend` last set up, or undefined before the first call. */
export function activeBackend(): BackendName | undefined {
  return active;
}

/**
 * What runs the active backend's numbers, for manifests and `grokpipe doctor`: the backend name,
 * and for `wasm-blas` the BLAS library (e.g. `OpenBLAS 0.3.21 ... Zen, 2 threads`).
 */
export function backendDescription(): string | undefined {
  if (!active) return undefined;
  if (active !== 'wasm-blas' || !activeBlas) return active;
  const lib = activeBlas.config ?? activeBlas.path;
  const n = activeBlas.threads;
  return `wasm-blas (${lib}${n ? `, ${n} thread${n === 1 ? '' : 's'}` : ''})`;
}

/** Imports a backend's package and activates it; returns the name of what actually runs. */
async function load(name: BackendName, options: BackendOptions): Promise<BackendName> {
  if (name === 'tensorflow' || name === 'tensorflow-gpu') {
    if (options.threads && process.env.TF_NUM_INTRAOP_THREADS === undefined) {
      process.env.TF_NUM_INTRAOP_THREADS = String(options.threads);
    }
  }
  if (name === 'wasm-blas') {
    const blas = loadNativeBlas();
    if ('error' in blas) throw new Error(blas.error);
  }
  // A variable specifier keeps tsc and bundlers from resolving the optional packages statically.
  const spec = PACKAGE[name];
  await import(spec);
  if (tf.findBackendFactory(TF_NAME[name]) === null) {
    throw new Error(
      `${spec} loaded but registered no "${TF_NAME[name]}" backend with this copy of @tensorflow/tfjs-core ` +
        `(${tf.version_core}); install matching versions`,
    );
  }
  if (!(await tf.setBackend(TF_NAME[name]))) throw new Error(`tf.setBackend('${TF_NAME[name]}') failed`);
  await tf.ready();
  if (name === 'tensorflow-gpu') {
    // tfjs-node-gpu falls back to the CPU silently when CUDA is unusable; its backend says so.
    const b = tf.backend() as { isUsingGpuDevice?: boolean };
    if (b.isUsingGpuDevice === false) return 'tensorflow';
  }
  return name;
}

/**
 * Loads and activates a TF.js backend; with `auto` the first of `BACKEND_PREFERENCE` that starts
 * (tfjs-node-gpu without a usable GPU runs on the CPU and is reported as `tensorflow`). Registers
 * the kernel fixes and gradients above. Idempotent for the same request.
 * @param request a `BackendRequest`; a string because it comes through the stage contract, where the
 *   engine passes the invocation's `--backend` as an opaque name.
 * @param options.threads for tfjs-node only (wasm runs single-threaded under Node).
 * @returns the backend's manifest name.
 * @throws BackendUnavailableError when a requested backend (not `auto`) is missing or fails, with
 *   the command that installs it; Error naming the known requests when `request` is none of them.
 */
export async function initBackend(request: string = 'auto', options: BackendOptions = {}): Promise<BackendName> {
  if (!isBackendRequest(request)) {
    throw new Error(`unknown TF.js backend "${request}" (known: ${BACKEND_REQUESTS.join(', ')})`);
  }
  const candidates = request === 'auto' ? BACKEND_PREFERENCE : [request];
  const failures: string[] = [];
  for (const name of candidates) {
    try {
      const running = await load(name, options);
      if (running !== name && request !== 'auto') {
        throw new Error('@tensorflow/tfjs-node-gpu is installed but found no usable CUDA GPU');
      }
      const tfName = TF_NAME[running];
      if (tfName === 'wasm' || tfName === 'cpu') registerHostSegmentSum(tfName);
      if (tfName === 'wasm') {
        registerWasmRowGather();
        registerWasmSharedIdentity();
        useNativeMatMul(running === 'wasm-blas');
      }
      useNativeKernels(running === 'wasm-blas');
      activeBlas = undefined;
      if (running === 'wasm-blas') {
        setBlasThreads(options.threads);
        const blas = loadNativeBlas();
        if (!('error' in blas)) activeBlas = blas;
      }
      // wasm's own products with transpose flags are ~15x slower than plain ones; BLAS's are not.
      useExplicitTransposeGradient(running === 'wasm');
      registerGradients();
      active = running;
      return running;
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      if (request !== 'auto') {
        throw new BackendUnavailableError(
          `TF.js backend "${name}" is not available (${failures[0]}); ${INSTALL_HINT[name]}.`,
        );
      }
    }
  }
  throw new BackendUnavailableError(`no TF.js backend could start:\n  ${failures.join('\n  ')}`);
}

/**
 * Reference segment sum on host arrays: `out[s, j] = Σ_{i : ids[i] = s} x[i, j]`, rows summed in
 * index order; ids outside `[0, numSegments)` are dropped (as TensorFlow does).
 * @param x `[n, inner]` row-major values.
 * @param ids `[n]` segment of each row.
 * @returns `[numSegments, inner]` row-major sums.
 */
export function segmentSumHost(
  x: ArrayLike<number>,
  ids: ArrayLike<number>,
  numSegments: number,
  inner: number,
): Float32Array {
  const out = new Float32Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
  return out;
}

interface HostBackend {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput?(shape: number[], dtype: string, memoryOffset?: number, values?: Float32Array): TensorInfo;
  makeTensorInfo?(shape: number[], dtype: string, values?: Float32Array): TensorInfo;
}

/**
 * Kernel config computing `UnsortedSegmentSum` on the host for `backendName` (`wasm` or `cpu`):
 * `x: [...idsShape, ...inner]` float32, `segmentIds: idsShape` int32 → `[numSegments, ...inner]`.
 * Copies both inputs out of the backend once: O(size of x), fine for embedding-sized tensors.
 */
export function hostSegmentSumKernel(backendName: 'wasm' | 'cpu'): KernelConfig {
  return {
    kernelName: tf.UnsortedSegmentSum,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }: { inputs: NamedTensorInfoMap; backend: object; attrs?: NamedAttrMap }) => {
      const x = inputs.x as TensorInfo;
      const ids = inputs.segmentIds as TensorInfo;
      const numSegments = (attrs as { numSegments: number }).numSegments;
      if (x.dtype !== 'float32')
        throw new Error(`UnsortedSegmentSum (${backendName}): x must be float32, got ${x.dtype}`);
      const b = backend as HostBackend;
      const n = ids.shape.reduce((a, d) => a * d, 1);
      const innerShape = x.shape.slice(ids.shape.length);
      const inner = innerShape.reduce((a, d) => a * d, 1);
      const out = segmentSumHost(b.readSync(x.dataId), b.readSync(ids.dataId), numSegments, n === 0 ? 0 : inner);
      const shape = [numSegments, ...innerShape];
      // Both backends have a `makeOutput`, with different signatures: pick by name.
      if (backendName === 'wasm' && b.makeOutput) return b.makeOutput(shape, 'float32', undefined, out);
      if (backendName === 'cpu' && b.makeTensorInfo) return b.makeTensorInfo(shape, 'float32', out);
      throw new Error(`UnsortedSegmentSum: backend ${backendName} cannot make outputs`);
    },
  };
}

/** Registers the host `UnsortedSegmentSum` for `backendName`, replacing any stock kernel (once). */
export function registerHostSegmentSum(backendName: 'wasm' | 'cpu'): void {
  const current = tf.getKernel(tf.UnsortedSegmentSum, backendName) as (KernelConfig & { grokpipe?: true }) | undefined;
  if (current?.grokpipe) return;
  if (current) tf.unregisterKernel(tf.UnsortedSegmentSum, backendName);
  tf.registerKernel({ ...hostSegmentSumKernel(backendName), grokpipe: true } as KernelConfig);
}

interface WasmBackend {
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * Registers, for wasm, a `GatherV2` that copies whole rows on the host when gathering along axis 0
 * of a float32 tensor (every embedding lookup): the stock wasm kernel indexes element by element,
 * ~30x slower for `[vocab, d_model]` tables. Other gathers go to the stock kernel. Idempotent.
 * @throws Error (at run time) on an index outside `[0, rows)`.
 */
export function registerWasmRowGather(): void {
  const stock = tf.getKernel(tf.GatherV2, 'wasm') as (KernelConfig & { grokpipe?: true }) | undefined;
  if (!stock || stock.grokpipe) return;
  const config: KernelConfig & { grokpipe: true } = {
    kernelName: tf.GatherV2,
    backendName: 'wasm',
    grokpipe: true,
    setupFunc: stock.setupFunc,
    disposeFunc: stock.disposeFunc,
    kernelFunc: (args) => {
      const x = args.inputs.x as TensorInfo;
      const indices = args.inputs.indices as TensorInfo;
      const { axis, batchDims } = (args.attrs ?? {}) as { axis: number; batchDims: number };
      const ax = axis < 0 ? axis + x.shape.length : axis;
      if (x.dtype !== 'float32' || indices.dtype !== 'int32' || ax !== 0 || (batchDims ?? 0) !== 0)
        return stock.kernelFunc(args);
      const b = args.backend as WasmBackend;
      const rows = x.shape[0];
      const inner = x.shape.slice(1).reduce((p, d) => p * d, 1);
      const out = b.makeOutput([...indices.shape, ...x.shape.slice(1)], 'float32');
      // Views after makeOutput: allocating may grow (and detach) the wasm heap.
      const table = b.typedArrayFromHeap(x) as Float32Array;
      const ids = b.typedArrayFromHeap(indices) as Int32Array;
      const dst = b.typedArrayFromHeap(out) as Float32Array;
      for (let i = 0; i < ids.length; i++) {
        const r = ids[i];
        if (r < 0 || r >= rows) throw new Error(`GatherV2: index ${r} outside [0, ${rows})`);
        dst.set(table.subarray(r * inner, r * inner + inner), i * inner);
      }
      return out;
    },
  };
  tf.unregisterKernel(tf.GatherV2, 'wasm');
  tf.registerKernel(config);
}

/**
 * Registers, for wasm, an `Identity` (`tf.clone`) that shares the input's buffer with a reference
 * count, as the stock wasm `Reshape` does, instead of copying it. Every tensor a gradient saves for
 * the backward pass is cloned, so the copy costs ~7% of a training step. Idempotent.
 */
export function registerWasmSharedIdentity(): void {
  const stock = tf.getKernel(tf.Identity, 'wasm') as (KernelConfig & { grokpipe?: true }) | undefined;
  if (!stock || stock.grokpipe) return;
  const config: KernelConfig & { grokpipe: true } = {
    kernelName: tf.Identity,
    backendName: 'wasm',
    grokpipe: true,
    kernelFunc: (args) => {
      const x = args.inputs.x as TensorInfo;
      if (x.dtype === 'string') return stock.kernelFunc(args);
      (args.backend as WasmBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  };
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel(config);
}

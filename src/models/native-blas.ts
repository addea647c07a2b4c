/**
 * Matrix products on a native CBLAS library (OpenBLAS by default) for the TF.js wasm backend: the
 * `wasm-blas` backend of `backend.ts`.
 *
 * The addon in `native/` (built by `npm run build:native`, which `npm ci` runs and which never
 * fails the install) opens a CBLAS library with dlopen and runs `cblas_sgemm` directly on the wasm
 * heap: the kernel below hands it Float32Array views of the input and output tensors, so nothing
 * is copied. wasm's own products reach ~10 GFLOP/s (one thread, 128-bit SIMD); OpenBLAS reaches
 * 90 on one core and 176 on two of this project's 2-core EPYC machines (`npm run bench -- train`).
 * Every other TF.js kernel stays wasm's; grokpipe's fused kernels (`native-kernels.ts`) live in the
 * same addon.
 *
 * Library search: `GROKPIPE_BLAS` (a path or soname, e.g. `/opt/intel/mkl/lib/libmkl_rt.so`) when
 * set, else `libopenblas.so.0`, `libopenblas.so`, `libblis.so.4`, `libmkl_rt.so`. The generic
 * `libblas.so.3` is not tried: on Debian it is often the reference BLAS, slower than wasm.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { wasmHeap } from './wasm-heap.js';

/** The compiled addon's functions (native/src/blas.cc); `matMul` is also run by `native-linear.ts`. */
export interface BlasAddon {
  load(candidates: string[]): BlasLibrary;
  setThreads(n: number): number | null;
  matMul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batch: number,
    batchA: number,
    batchB: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
  ): void;
}

/** The CBLAS library the addon opened. */
export interface BlasLibrary {
  /** The name or path it was opened by. */
  path: string;
  /** `openblas_get_config()` (version, build options, core), or null for other libraries. */
  config: string | null;
  /** The CPU kernel set OpenBLAS chose at load (e.g. `Zen`, `SkylakeX`), or null. */
  corename: string | null;
  /** Threads the library uses per product, or null when it cannot tell. */
  threads: number | null;
}

/** Sonames tried in order when `GROKPIPE_BLAS` is not set. */
export const BLAS_CANDIDATES: readonly string[] = [
  'libopenblas.so.0',
  'libopenblas.so',
  'libblis.so.4',
  'libmkl_rt.so',
];

/** How to get the native path working, for error messages and `grokpipe doctor`. */
export const NATIVE_BLAS_HINT =
  'install a C++ toolchain and OpenBLAS (Debian: `apt-get install g++ make python3 libopenblas0-pthread`), ' +
  'then run `npm run build:native` in the grokpipe folder; set GROKPIPE_BLAS=/path/to/libcblas.so for another CBLAS library';

const NATIVE_DIR = fileURLToPath(new URL('../../native', import.meta.url));

let addon: BlasAddon | undefined;
let library: BlasLibrary | undefined;
let loadError: string | undefined;

/**
 * Loads the addon and opens the CBLAS library, once per process.
 * @returns the library, or an `{ error }` saying what is missing (addon not built, no library).
 */
export function loadNativeBlas(): BlasLibrary | { error: string } {
  if (library) return library;
  if (loadError) return { error: loadError };
  try {
    const require = createRequire(import.meta.url);
    const build = require('node-gyp-build') as (dir: string) => BlasAddon;
    addon = build(NATIVE_DIR);
  } catch (err) {
    loadError = `the native addon is not built (${(err as Error).message.split('\n')[0]})`;
    return { error: loadError };
  }
  const wanted = process.env.GROKPIPE_BLAS ? [process.env.GROKPIPE_BLAS] : [...BLAS_CANDIDATES];
  try {
    library = addon.load(wanted);
    return library;
  } catch (err) {
    loadError = (err as Error).message.replace(/:\n\s*/, ': ').replace(/\n\s*/g, '; ');
    return { error: loadError };
  }
}

/**
 * The loaded addon (native/build), for the fused kernels of `native-kernels.ts`, which cast it to
 * their own interfaces; undefined until `loadNativeBlas` has loaded it (or when it is not built).
 */
export function nativeAddon(): object | undefined {
  return addon;
}

/**
 * Sets the threads of every later product (OpenBLAS and MKL; BLIS reads `BLIS_NUM_THREADS`).
 * @param threads ≥ 1; default: the cores Node sees.
 * @returns the threads the library reports afterwards, or null when it cannot tell.
 * @throws Error when the library is not loaded.
 */
export function setBlasThreads(threads = os.availableParallelism()): number | null {
  if (!addon || !library) throw new Error('setBlasThreads: the native BLAS library is not loaded');
  library.threads = addon.setThreads(Math.max(1, Math.floor(threads)));
  return library.threads;
}

const product = (dims: number[]) => dims.reduce((p, d) => p * d, 1);

/**
 * The `BatchMatMul` kernel for wasm on the native library: float32 `a` `[...batchA, m, k]`
 * (`[..., k, m]` with `transposeA`) times `b` `[...batchB, k, n]` (`[..., n, k]` with
 * `transposeB`) → `[...broadcast(batchA, batchB), m, n]`, one `cblas_sgemm` per matrix. Other
 * dtypes and broadcasts other than "one side has a single matrix" go to `stock`.
 * @throws Error on mismatched inner dimensions (as TF.js' own kernel).
 */
export function nativeMatMulKernel(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const a = args.inputs.a as TensorInfo;
    const b = args.inputs.b as TensorInfo;
    const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA: boolean; transposeB: boolean };
    if (!addon || a.dtype !== 'float32' || b.dtype !== 'float32') return stock.kernelFunc(args);
    const ra = a.shape.length;
    const rb = b.shape.length;
    const [m, k] = transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
    const [kb, n] = transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
    if (k !== kb)
      throw new Error(
        `BatchMatMul: inner dimensions ${k} (a ${JSON.stringify(a.shape)}) and ${kb} (b ${JSON.stringify(b.shape)}) differ`,
      );
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const batch = product(outer);
    const batchA = product(a.shape.slice(0, -2));
    const batchB = product(b.shape.slice(0, -2));
    const flat = (batchA === 1 || batchA === batch) && (batchB === 1 || batchB === batch);
    if (!flat) return stock.kernelFunc(args);
    const heap = wasmHeap(args.backend, tf.BatchMatMul);
    const out = heap.out([...outer, m, n]);
    // An empty output has nothing to compute (stock wasm traps on some: `[0, m, k] @ [k, n]`).
    if (batch * m * n === 0) return out;
    // Views after `out`: allocating may grow (and detach) the wasm heap.
    addon.matMul(heap.view(a), heap.view(b), heap.view(out), batch, batchA, batchB, m, n, k, transposeA, transposeB);
    return out;
  };
  return {
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    disposeFunc: stock.disposeFunc,
    kernelFunc,
  };
}

type Marked = KernelConfig & { grokpipe?: 'native-blas'; stock?: KernelConfig };

/**
 * Routes wasm's `BatchMatMul` to the native library (`on`) or back to wasm's own kernel (`off`).
 * Idempotent. Call after the wasm backend is ready (its stock kernel's setup has run).
 * @throws Error when turning on without a loaded library (see `loadNativeBlas`).
 */
export function useNativeMatMul(on: boolean): void {
  const current = tf.getKernel(tf.BatchMatMul, 'wasm') as Marked | undefined;
  if (!current) throw new Error('useNativeMatMul: the wasm backend has no BatchMatMul kernel (is it registered?)');
  const isNative = current.grokpipe === 'native-blas';
  if (on === isNative) return;
  if (on && !library) throw new Error(`useNativeMatMul: ${loadError ?? 'call loadNativeBlas() first'}`);
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  if (on) tf.registerKernel({ ...nativeMatMulKernel(current), grokpipe: 'native-blas', stock: current } as Marked);
  else tf.registerKernel(current.stock!);
}

/**
 * The library's sgemm throughput in GFLOP/s on `n × n × n` (`2n³` FLOPs a product, best of 3
 * after one warm-up), with the threads last set: the "matmul peak" that `npm run bench -- train`
 * reports shares of. @throws Error when the library is not loaded.
 */
export function measureBlasPeak(n = 2048): number {
  if (!addon || !library) throw new Error('measureBlasPeak: the native BLAS library is not loaded');
  const a = new Float32Array(n * n).fill(0.5);
  const b = new Float32Array(n * n).fill(0.25);
  const c = new Float32Array(n * n);
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    addon.matMul(a, b, c, 1, 1, 1, n, n, n, false, false);
    if (i > 0) best = Math.min(best, performance.now() - t0);
  }
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

/**
 * The names of the backends grokpipe can train on, without loading TF.js (the CLI parses
 * `--backend` with these before any tensor code is imported).
 */

/**
 * A backend grokpipe can train on, by the name recorded in each training manifest:
 * - `tensorflow-gpu`: `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA);
 * - `tensorflow`: `@tensorflow/tfjs-node` (libtensorflow on the CPU);
 * - `wasm-blas`: TF.js wasm with every float32 matrix product on a native CBLAS library
 *   (OpenBLAS) through grokpipe's addon in `native/`;
 * - `wasm`: TF.js wasm (XNNPACK, 128-bit SIMD, one thread under Node);
 * - `cpu`: TF.js's plain JavaScript kernels.
 */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm-blas' | 'wasm' | 'cpu';

/** What the caller may ask for: a backend, or `auto` for the fastest one present. */
export type BackendRequest = 'auto' | BackendName;

/** Order in which `auto` tries backends, fastest first. */
export const BACKEND_PREFERENCE: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm-blas', 'wasm', 'cpu'];

/** Every value `--backend` accepts. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', ...BACKEND_PREFERENCE];

/** Whether `name` is a backend request grokpipe knows (`auto` or a `BackendName`). */
export function isBackendRequest(name: string): name is BackendRequest {
  return (BACKEND_REQUESTS as readonly string[]).includes(name);
}

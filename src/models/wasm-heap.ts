/**
 * How a native kernel reaches the TF.js `wasm` backend's memory: allocating outputs on the wasm
 * heap and typed-array views of tensors' data there (no copies), for `native-blas.ts`' matrix
 * products and the fused kernels of `native-kernels.ts`.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';

/** The wasm backend's heap access (tfjs-backend-wasm's `BackendWasm`). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array;
}

/**
 * A kernel's access to the heap. Take every view after the last `out`: allocating may grow the
 * heap and detach earlier views.
 */
export interface WasmHeap {
  /** A new float32 tensor of `shape` on the heap (uninitialised). */
  out(shape: number[]): TensorInfo;
  /** A float32 tensor's data. @throws Error naming the kernel when `info` is not float32. */
  view(info: TensorInfo): Float32Array;
  /** An int32 tensor's data. @throws Error naming the kernel when `info` is not int32. */
  ints(info: TensorInfo): Int32Array;
}

/**
 * The heap of `backend` (the `backend` argument of a `wasm` kernel function), for the kernel
 * `kernelName` (named in errors).
 */
export function wasmHeap(backend: unknown, kernelName: string): WasmHeap {
  const b = backend as WasmHeapBackend;
  return {
    out: (shape) => b.makeOutput(shape, 'float32'),
    view: (info) => {
      if (info.dtype !== 'float32') throw new Error(`${kernelName}: expected float32, got ${info.dtype}`);
      return b.typedArrayFromHeap(info) as Float32Array;
    },
    ints: (info) => {
      if (info.dtype !== 'int32') throw new Error(`${kernelName}: expected int32, got ${info.dtype}`);
      return b.typedArrayFromHeap(info) as Int32Array;
    },
  };
}

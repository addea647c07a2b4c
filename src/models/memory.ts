/**
 * How much of the wasm backend's heap a training step needs, and the micro-batch that makes it
 * fit. The wasm heap is a 32-bit address space (4 GiB at most, emscripten's `getHeapMax`); every
 * tensor of a step lives in it. Without TF.js, so the train stage can use it in error messages.
 */
import { countModel } from './arch/registry.js';
import type { ModelConfig } from './arch/registry.js';

/** Bytes of the wasm heap a training step may plan to use: 3.2 GB of the 4 GiB, for fragmentation. */
export const WASM_HEAP_BUDGET = 3.2e9;

/**
 * Estimated peak wasm-heap bytes of training with `micro` examples a pass: 6.5 parameter-sized
 * float32 buffers (weights, Adam's m and v, the gradient and its accumulator, the update's
 * temporaries and the heap's fragmentation) plus 250 bytes per token, layer and model dimension
 * of activations and their gradients. Fitted on the trainer with GPT-2 8×768, 6 tokens, fused
 * layers, on wasm-blas: 2.69 GB at 128 examples a pass, 3.87 GB at 256 (`wasm_heap_bytes` of
 * `npm run bench -- train --models 8x768x12 --micro-batch 128`, resp. 256).
 */
export function stepHeapBytes(config: ModelConfig, micro: number, seqLen = config.seq_len): number {
  return 6.5 * 4 * countModel(config).parameters + 250 * micro * seqLen * config.n_layers * config.d_model;
}

/**
 * The micro-batch for a step of `batch` examples on wasm: `batch` itself when
 * `stepHeapBytes` fits `WASM_HEAP_BUDGET`, else the largest `batch / 2^k` that fits (stopping at
 * an odd size or 1).
 */
export function wasmMicroBatch(config: ModelConfig, batch: number, seqLen = config.seq_len): number {
  let micro = batch;
  while (micro > 1 && micro % 2 === 0 && stepHeapBytes(config, micro, seqLen) > WASM_HEAP_BUDGET) micro /= 2;
  return micro;
}

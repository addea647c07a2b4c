/**
 * The wasm backend fixes (src/models/backend.ts) against the stock cpu backend: the host
 * UnsortedSegmentSum, the row GatherV2, the buffer-sharing Identity, and a whole GPT-2 gradient.
 * This file never calls initBackend('cpu'), so the cpu kernels here are TF.js' own.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { hostSegmentSumKernel, initBackend, segmentSumHost } from '../src/models/backend.js';
import type { ModelConfig } from '../src/models/arch/registry.js';
import { createModel } from '../src/models/arch/factories.js';
import { fillNormal, makeRng } from '../src/models/train-rng.js';
import { crossEntropy } from '../src/models/train/loss.js';
import { maxRelDiff, randn, randomTokens } from './model-arch-helpers.js';

const tiny: ModelConfig = { arch: 'gpt2', n_layers: 2, d_model: 16, n_heads: 4, d_mlp: 32, vocab_size: 23, seq_len: 5 };

describe('wasm host kernels', () => {
  it('UnsortedSegmentSum on wasm equals the stock cpu kernel', async () => {
    const x = fillNormal(makeRng(4), new Float32Array(300 * 8));
    const ids = Int32Array.from({ length: 300 }, (_, i) => (i * 37) % 50);
    await tf.setBackend('cpu');
    const cpu = tf.tidy(() =>
      tf.unsortedSegmentSum(tf.tensor2d(x, [300, 8]), tf.tensor1d(ids, 'int32'), 50).dataSync(),
    );
    expect(tf.getKernel('UnsortedSegmentSum', 'cpu')).not.toHaveProperty('grokpipe');
    await initBackend('wasm');
    const wasm = tf.tidy(() =>
      tf.unsortedSegmentSum(tf.tensor2d(x, [300, 8]), tf.tensor1d(ids, 'int32'), 50).dataSync(),
    );
    expect(maxRelDiff(wasm, cpu)).toBeLessThan(1e-6);
    expect(maxRelDiff(segmentSumHost(x, ids, 50, 8), cpu)).toBeLessThan(1e-6);
    expect(hostSegmentSumKernel('wasm').backendName).toBe('wasm');
  });

  it('row gather, shared identity and a training gradient on wasm equal cpu', async () => {
    const table = fillNormal(makeRng(5), new Float32Array(40 * 6));
    const ids = Int32Array.from([3, 0, 39, 3, 17]);
    const run = () =>
      tf.tidy(() => {
        const t = tf.tensor2d(table, [40, 6]);
        const g = tf.gather(t, tf.tensor1d(ids, 'int32'));
        const c = tf.clone(g);
        g.dispose();
        return Array.from(c.dataSync());
      });
    await tf.setBackend('cpu');
    const cpu = run();
    await initBackend('wasm');
    expect(run()).toEqual(cpu);

    const gradOf = () =>
      tf.tidy(() => {
        const m = createModel(tiny, makeRng(7));
        const toks = tf.tensor2d(randomTokens(8, 5, tiny.vocab_size, 8), [8, 5], 'int32');
        const { grads } = tf.variableGrads(
          () =>
            tf.mean(
              crossEntropy(
                m.answerLogits(toks, tf.fill([8], 4, 'int32') as tf.Tensor1D),
                tf.tensor1d([1, 2, 3, 4, 5, 6, 7, 8], 'int32'),
              ),
            ) as tf.Scalar,
          [...m.params.values()],
        );
        const out = [...m.params.values()].map((v) => Array.from(grads[v.name].dataSync()));
        m.dispose();
        return out;
      });
    const wasmGrads = gradOf();
    await tf.setBackend('cpu');
    const cpuGrads = gradOf();
    cpuGrads.forEach((g, i) => expect(maxRelDiff(wasmGrads[i], g)).toBeLessThan(1e-3));
  });

  it('the BatchMatMul gradient sums a broadcast batch back to the single matrix', async () => {
    await initBackend('wasm');
    const a = randn([3, 4, 5], 11);
    const b = randn([5, 2], 12);
    const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D)));
    const [ga, gb] = tf.grads(loss)([a, b]);
    // Reference: the same product with b tiled to the batch; its gradient summed over the batch.
    const tiled = tf.tile(tf.reshape(b, [1, 5, 2]), [3, 1, 1]);
    const [ra, rb] = tf.grads(loss)([a, tiled]);
    expect(gb.shape).toEqual([5, 2]);
    expect(maxRelDiff(gb.dataSync(), tf.sum(rb, 0).dataSync())).toBeLessThan(1e-5);
    expect(maxRelDiff(ga.dataSync(), ra.dataSync())).toBeLessThan(1e-5);
    tf.dispose([a, b, ga, gb, tiled, ra, rb]);
  });
});

describe('backend requests', () => {
  it('initBackend rejects a name that is not a backend request (the stage contract passes it as a string)', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(
      'unknown TF.js backend "tpu" (known: auto, tensorflow-gpu, tensorflow, wasm-blas, wasm, cpu)',
    );
  });
});

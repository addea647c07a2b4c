/**
 * The answer-position kernels of `wasm-blas` (src/models/native-positions.ts,
 * native/src/positions.cc) against the TF.js ops they replace (`selectPositions`'s gather and its
 * segment-sum gradient, `positionMask`'s comparison, cast and product), on the same backend with
 * the native kernels switched off: the same bits (signed zeros included), on odd shapes and on the
 * folded `[members · batch, ...]` shapes of an ensemble; the native kernels ran (only) when on;
 * a position outside the sequence is named.
 *
 * Where the addon is not built or no BLAS library loads, the tests are skipped with the reason,
 * unless `GROKPIPE_REQUIRE_NATIVE` is set (as in CI): then they fail (test/native-helpers.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { positionMask, selectPositions } from '../src/models/layers.js';
import { useNativeKernels } from '../src/models/native-kernels.js';
import { fillNormal, makeRng } from '../src/models/train-rng.js';
import { needNative, nativeUnavailable } from './native-helpers.js';

let seed = 1;
const normal = (shape: number[]): tf.Tensor =>
  tf.tensor(fillNormal(makeRng(seed++), new Float32Array(shape.reduce((p, d) => p * d, 1)), 0, 1), shape);
const positionsOf = (batch: number, seq: number): tf.Tensor1D =>
  tf.tensor1d(
    Int32Array.from({ length: batch }, (_, b) => (b * 7 + seed) % seq),
    'int32',
  );

/** The bits of a float32 array (so that −0 and +0 differ). */
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** `f`'s outputs as bits, and the kernels that ran, with the native kernels on or off. */
async function run(f: () => tf.Tensor[], on: boolean) {
  useNativeKernels(on);
  try {
    let out: tf.Tensor[] = [];
    const profile = await tf.profile(() => {
      out = tf.tidy(f);
    });
    const result = out.map((t) => bits(t.dataSync() as Float32Array));
    tf.dispose(out);
    return { result, kernels: profile.kernelNames };
  } finally {
    useNativeKernels(true);
  }
}

describe('answer-position kernels on wasm-blas', () => {
  beforeEach(needNative);
  beforeAll(async () => {
    if (!nativeUnavailable) await initBackend('wasm-blas', { threads: 1 });
  });
  afterAll(() => {
    if (!nativeUnavailable) useNativeKernels(true);
  });

  it('selectPositions: values and gradient bit for bit, one model and folded members', async () => {
    for (const [batch, seq, d] of [
      [5, 3, 7],
      [128, 6, 64],
      [3 * 40, 5, 37],
    ]) {
      const [x, positions, r] = [normal([batch, seq, d]), positionsOf(batch, seq), normal([batch, d])];
      // A −0 in the gradient: the segment sum's 0 + (−0) is +0, and so must the native one be.
      const rData = r.dataSync().slice();
      rData[0] = -0;
      const rz = tf.tensor(rData, r.shape);
      const f = () => {
        const y = selectPositions(x as tf.Tensor3D, positions);
        const g = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(selectPositions(xi as tf.Tensor3D, positions), rz)))(x);
        return [y, g];
      };
      const got = await run(f, true);
      const want = await run(f, false);
      expect(got.result).toEqual(want.result);
      expect(got.kernels).toContain('GrokpipeSelectRows');
      expect(got.kernels).toContain('GrokpipeSelectRowsGrad');
      expect(want.kernels.filter((k) => k.startsWith('Grokpipe'))).toEqual([]);
      tf.dispose([x, positions, r, rz]);
    }
  });

  it('positionMask: the same bits (−0 where allowed, −1e9 after)', async () => {
    for (const [batch, seq] of [
      [1, 1],
      [7, 5],
      [1024, 6],
    ]) {
      const positions = positionsOf(batch, seq);
      const got = await run(() => [positionMask(positions, seq)], true);
      const want = await run(() => [positionMask(positions, seq)], false);
      expect(got.result).toEqual(want.result);
      expect(got.kernels).toEqual(['GrokpipePositionMask']);
      positions.dispose();
    }
  });

  it('names a position outside the sequence', () => {
    const [x, positions] = [tf.zeros([2, 3, 4]) as tf.Tensor3D, tf.tensor1d([1, 3], 'int32')];
    expect(() => selectPositions(x, positions)).toThrow(/selectRows: position 3 outside \[0, 3\)/);
    tf.dispose([x, positions]);
  });
});

/**
 * The native affine map of `wasm-blas` (src/models/native-linear.ts, native/src/linear.cc) against
 * the TF.js op chain it replaces (`fusedLinear` with transpose flags, the native kernels switched
 * off), on the same backend: values and the gradients of `Σ y ⊙ r` (random `r`) with respect to
 * `x`, `w` and `b` are the same bits, on odd shapes, for one model (with and without the member
 * axis of 1) and for the `[members, ...]` shapes of an ensemble, whose every member gets the bits
 * of its solo run; the native kernels actually ran (`tf.profile`), and only when on; misfit
 * shapes are named.
 *
 * Where the addon is not built or no BLAS library loads, the tests are skipped with the reason,
 * unless `GROKPIPE_REQUIRE_NATIVE` is set (as in CI): then they fail (test/native-helpers.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { fusedLinear } from '../src/models/fused.js';
import { linear, linearT, residualLinear } from '../src/models/layers.js';
import { useNativeKernels } from '../src/models/native-kernels.js';
import { nativeLinear } from '../src/models/native-linear.js';
import { fillNormal, makeRng } from '../src/models/train-rng.js';
import { needNative, nativeUnavailable } from './native-helpers.js';

let seed = 1;
const normal = (shape: number[], std = 1): tf.Tensor =>
  tf.tensor(fillNormal(makeRng(seed++), new Float32Array(shape.reduce((p, d) => p * d, 1)), 0, std), shape);

/**
 * `f(...xs)` and the gradients of `Σ f(xs) ⊙ r` with respect to each of `xs`, with the native
 * kernels on or off, and the kernels that ran.
 */
async function runWith(f: (...a: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], r: tf.Tensor, on: boolean) {
  useNativeKernels(on);
  try {
    let out: tf.Tensor[] = [];
    const profile = await tf.profile(() => {
      out = tf.tidy(() => {
        const { value, grads } = tf.valueAndGrads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), r)))(xs);
        value.dispose();
        return [f(...xs), ...grads];
      });
    });
    const arrays = out.map((t) => Array.from(t.dataSync()));
    const shapes = out.map((t) => t.shape);
    tf.dispose(out);
    return { arrays, shapes, kernels: profile.kernelNames };
  } finally {
    useNativeKernels(true);
  }
}

/** `runWith` of `fusedLinear` (transpose flags) on x, w, b. */
const run = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, r: tf.Tensor, on: boolean) =>
  runWith((xi, wi, bi) => fusedLinear(xi, wi, bi, false), [x, w, b], r, on);

/** Native against the op chain on `x`, `w`, `b`: the same bits and shapes; @returns the native run's arrays. */
async function compare(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): Promise<number[][]> {
  const r = normal([...x.shape.slice(0, -1), w.shape[w.rank - 1]]);
  const got = await run(x, w, b, r, true);
  const want = await run(x, w, b, r, false);
  expect(got.shapes).toEqual(want.shapes);
  got.arrays.forEach((a, i) => expect(a, `output ${i}`).toEqual(want.arrays[i]));
  want.arrays.slice(1).forEach((g) => expect(g.some((v) => v !== 0)).toBe(true));
  expect(got.kernels).toContain('GrokpipeLinear');
  expect(got.kernels).toContain('GrokpipeLinearGrad');
  expect(want.kernels.filter((k) => k.startsWith('Grokpipe'))).toEqual([]);
  r.dispose();
  return got.arrays;
}

describe('native affine map on wasm-blas', () => {
  beforeEach(needNative);
  beforeAll(async () => {
    if (!nativeUnavailable) await initBackend('wasm-blas', { threads: 1 });
  });
  afterAll(() => {
    if (!nativeUnavailable) useNativeKernels(true);
  });

  it('one model: the op chain bit for bit, odd and training shapes', async () => {
    for (const [xs, dIn, dOut] of [
      [[7, 13], 13, 5],
      [[3, 5, 13], 13, 37],
      [[1, 128, 6, 64], 64, 192],
      [[1, 128, 1, 256], 256, 64],
      [[11], 11, 3],
    ] as [number[], number, number][]) {
      const [x, w, b] = [normal(xs, 2), normal([dIn, dOut], 0.3), normal([dOut])];
      await compare(x, w, b);
      tf.dispose([x, w, b]);
    }
  });

  it('members: the op chain bit for bit, and each member the bits of its solo run', async () => {
    for (const [members, lead, dIn, dOut] of [
      [3, [4, 3], 13, 7],
      [2, [128, 6], 64, 256],
    ] as [number, number[], number, number][]) {
      const [x, w, b] = [
        normal([members, ...lead, dIn], 2),
        normal([members, dIn, dOut], 0.3),
        normal([members, 1, dOut]),
      ];
      const [y, dx, dw, db] = await compare(x, w, b);
      const n = lead.reduce((p, d) => p * d, 1);
      for (let m = 0; m < members; m++) {
        const pick = (t: tf.Tensor, shape: number[]) =>
          tf.reshape(tf.slice(t, [m, ...t.shape.slice(1).map(() => 0)], [1, ...t.shape.slice(1)]), shape);
        const [xm, wm, bm] = [pick(x, [1, ...lead, dIn]), pick(w, [dIn, dOut]), pick(b, [dOut])];
        const r = normal([1, ...lead, dOut]);
        const rAll = tf.concat([...Array.from({ length: members }, (_, i) => (i === m ? r : tf.zerosLike(r)))]);
        const solo = await run(xm, wm, bm, r, true);
        const full = await run(x, w, b, rAll, true);
        const slice = (a: number[], size: number) => a.slice(m * size, (m + 1) * size);
        expect(solo.arrays[0]).toEqual(slice(y, n * dOut));
        expect(solo.arrays[1]).toEqual(slice(full.arrays[1], n * dIn));
        expect(solo.arrays[2]).toEqual(slice(full.arrays[2], dIn * dOut));
        expect(solo.arrays[3]).toEqual(slice(full.arrays[3], dOut));
        tf.dispose([xm, wm, bm, r, rAll]);
      }
      expect([dx, dw, db].every((g) => g.length > 0)).toBe(true);
      tf.dispose([x, w, b]);
    }
  });

  it('residual connection: `r + (x @ w + b)` and its four gradients bit for bit, solo and members', async () => {
    for (const [lead, wShape, bShape] of [
      [[1, 5, 3, 13], [13, 7], [7]],
      [
        [3, 4, 3, 13],
        [3, 13, 7],
        [3, 1, 7],
      ],
      [[1, 128, 6, 256], [256, 64], [64]],
    ] as [number[], number[], number[]][]) {
      const outShape = [...lead.slice(0, -1), wShape[wShape.length - 1]];
      const xs = [normal(outShape), normal(lead, 2), normal(wShape, 0.3), normal(bShape)];
      const r = normal(outShape);
      const f = (a: tf.Tensor, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => residualLinear(a, x, w, b);
      const once = (on: boolean) => runWith(f, xs, r, on);
      const [got, want] = [await once(true), await once(false)];
      got.arrays.forEach((a, i) => expect(a, `output ${i}`).toEqual(want.arrays[i]));
      expect(got.kernels).toContain('GrokpipeLinear');
      expect(got.kernels).not.toContain('Add');
      expect(want.kernels).toContain('Add');
      tf.dispose([...xs, r]);
    }
    const [x, w, b, bad] = [tf.zeros([4, 5]), tf.zeros([5, 3]), tf.zeros([3]), tf.zeros([4, 2])];
    expect(() => nativeLinear(x, w, b, bad)).toThrow(/linear: residual \[4,2\] is not of the output's shape \[4,3\]/);
    tf.dispose([x, w, b, bad]);
  });

  it('without a bias, and with a transposed weight (linearT): the op chains bit for bit, solo and members', async () => {
    for (const [xs, wShape, transposed] of [
      [[1, 7, 13], [13, 5], false],
      [[3, 4, 13], [3, 13, 5], false],
      [[1, 128, 64], [1200, 64], true],
      [[3, 4, 13], [3, 5, 13], true],
      [[2, 9, 37], [2, 11, 37], true],
    ] as [number[], number[], boolean][]) {
      const [x, w] = [normal(xs, 2), normal(wShape, 0.3)];
      const f = (a: tf.Tensor, c: tf.Tensor) => (transposed ? linearT(a, c) : linear(a, c));
      const r = normal(f(x, w).shape);
      const once = (on: boolean) => runWith(f, [x, w], r, on);
      const [got, want] = [await once(true), await once(false)];
      got.arrays.forEach((a, i) => expect(a, `output ${i}`).toEqual(want.arrays[i]));
      expect(got.kernels).toContain('GrokpipeLinearGrad');
      expect(want.kernels).toContain('BatchMatMul');
      tf.dispose([x, w, r]);
    }
  });

  it('names shapes that do not fit', () => {
    const [x, w, b] = [tf.zeros([4, 5]), tf.zeros([5, 3]), tf.zeros([4])];
    expect(() => nativeLinear(x, w, b)).toThrow(/linear: x \[4,5\], w \[5,3\] and b \[4\] do not fit/);
    tf.dispose([x, w, b]);
  });
});

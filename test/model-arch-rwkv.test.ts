/**
 * RWKV-4's WKV: the parallel form (softmax over a decay mask) equals the step-by-step recurrence
 * on random inputs, also with large keys and decays; its gradient equals float64 central
 * differences of the recurrence; the token shift; and the original initial schedules.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { rwkvSchedules, tokenShift, wkvParallel, wkvRecurrent } from '../src/models/arch/rwkv-model.js';
import { fillNormal, makeRng } from '../src/models/train-rng.js';
import { maxAbsDiff } from './model-arch-helpers.js';

const [B, T, D] = [3, 10, 8];

beforeAll(async () => {
  await initBackend('wasm');
});

/** The WKV recurrence in float64 as written in the paper (no max shift), `[B, T, D]` row-major. */
function wkvHost(k: ArrayLike<number>, v: ArrayLike<number>, w: ArrayLike<number>, u: ArrayLike<number>): Float64Array {
  const out = new Float64Array(B * T * D);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < D; c++) {
      let num = 0; // Σ_{i<t} e^{(t−1−i)w + k_i} v_i
      let den = 0;
      for (let t = 0; t < T; t++) {
        const x = (b * T + t) * D + c;
        const bonus = Math.exp(u[c] + k[x]);
        out[x] = (num + bonus * v[x]) / (den + bonus);
        num = Math.exp(w[c]) * num + Math.exp(k[x]) * v[x];
        den = Math.exp(w[c]) * den + Math.exp(k[x]);
      }
    }
  }
  return out;
}

function inputs(seed: number, kStd: number) {
  const k = fillNormal(makeRng(seed), new Float32Array(B * T * D), 0, kStd);
  const v = fillNormal(makeRng(seed + 1), new Float32Array(B * T * D));
  // Decays from e^-5 to e^3 per step (the initial range), bonuses around ln 0.3.
  const w = Float32Array.from({ length: D }, (_, c) => -Math.exp(-5 + (8 * c) / (D - 1)));
  const u = fillNormal(makeRng(seed + 2), new Float32Array(D), Math.log(0.3), 1);
  return { k, v, w, u };
}

function parallel(x: ReturnType<typeof inputs>, form = wkvParallel): Float32Array {
  return tf.tidy(
    () =>
      form(
        tf.tensor3d(x.k, [B, T, D]),
        tf.tensor3d(x.v, [B, T, D]),
        tf.tensor1d(x.w),
        tf.tensor1d(x.u),
      ).dataSync() as Float32Array,
  );
}

describe('WKV', () => {
  it('parallel form equals the step-by-step recurrence on random inputs (1e-5)', () => {
    for (const seed of [1, 2, 3]) {
      const x = inputs(seed, 1);
      const want = wkvHost(x.k, x.v, x.w, x.u);
      expect(maxAbsDiff(parallel(x), want), `seed ${seed}`).toBeLessThan(1e-5);
      expect(maxAbsDiff(parallel(x, wkvRecurrent), want), `seed ${seed}, tensor recurrence`).toBeLessThan(1e-5);
    }
  });

  it('stays finite and exact with large keys (e^k overflows float32)', () => {
    const x = inputs(4, 60); // |k| up to ~200: e^200 is far beyond float32 (and float64 is still fine)
    const got = parallel(x);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(got, wkvHost(x.k, x.v, x.w, x.u))).toBeLessThan(1e-5);
    expect(maxAbsDiff(parallel(x, wkvRecurrent), got)).toBeLessThan(1e-5);
  });

  it('has the gradient of the recurrence (float64 central differences)', () => {
    const x = inputs(5, 1);
    const weights = fillNormal(makeRng(9), new Float32Array(B * T * D));
    const lossHost = (y: Float64Array) => y.reduce((a, yi, i) => a + yi * weights[i], 0);
    const grads = tf.tidy(() => {
      const f = (k: tf.Tensor, v: tf.Tensor, w: tf.Tensor, u: tf.Tensor) =>
        tf.sum(
          tf.mul(
            wkvParallel(k as tf.Tensor3D, v as tf.Tensor3D, w as tf.Tensor1D, u as tf.Tensor1D),
            tf.tensor3d(weights, [B, T, D]),
          ),
        );
      return tf
        .grads(f)([tf.tensor3d(x.k, [B, T, D]), tf.tensor3d(x.v, [B, T, D]), tf.tensor1d(x.w), tf.tensor1d(x.u)])
        .map((g) => g.dataSync());
    });
    const h = 1e-5;
    (['k', 'v', 'w', 'u'] as const).forEach((key, n) => {
      const numeric = Array.from(x[key], (_, i) => {
        const plus = { ...x, [key]: Float64Array.from(x[key]) };
        const minus = { ...x, [key]: Float64Array.from(x[key]) };
        plus[key][i] += h;
        minus[key][i] -= h;
        return (
          (lossHost(wkvHost(plus.k, plus.v, plus.w, plus.u)) - lossHost(wkvHost(minus.k, minus.v, minus.w, minus.u))) /
          (2 * h)
        );
      });
      const scale = Math.max(...numeric.map(Math.abs));
      expect(maxAbsDiff(grads[n], numeric) / scale, `d/d${key}`).toBeLessThan(1e-4);
    });
  });
});

describe('RWKV-4 pieces', () => {
  it('shifts tokens by one position, zeros first', () => {
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 3, 2]);
    expect(Array.from(tokenShift(x).dataSync())).toEqual([0, 0, 1, 2, 3, 4]);
  });

  it('starts from the original time_decay, time_first and time_mix schedules', () => {
    const first = rwkvSchedules(0, 4, 5);
    const last = rwkvSchedules(3, 4, 5);
    expect(first.decay[0]).toBeCloseTo(-5, 6);
    expect(first.decay[4]).toBeCloseTo(3, 6);
    expect(last.decay[2]).toBeCloseTo(-5 + 8 * 0.5 ** 2, 6); // exponent 0.7 + 1.3 at the last layer
    expect(Array.from(first.first, (x) => x - Math.log(0.3))).toEqual(
      Array.from([0, 0.5, -0.5, 0, 0.5], (x) => expect.closeTo(x, 6)),
    );
    expect(first.mixK[3]).toBeCloseTo(3 / 5, 6); // (h/d)^1 at layer 0
    expect(last.mixK[3]).toBeCloseTo((3 / 5) ** 0.25, 6);
    expect(last.mixV[3]).toBeCloseTo((3 / 5) ** 0.25 + 0.3, 6);
    expect(last.mixR[3]).toBeCloseTo((3 / 5) ** 0.125, 6);
    expect(rwkvSchedules(0, 1, 5).decay.every(Number.isFinite)).toBe(true); // one layer: no 0/0
  });
});

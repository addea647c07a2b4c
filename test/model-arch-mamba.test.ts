/**
 * Mamba's selective scan equals a step-by-step recurrence on random inputs, forward and gradient
 * (against float64 central differences); the causal depthwise convolution equals PyTorch's
 * `Conv1d(groups=E, padding=K−1)`; and the initial Δ and A are the original's.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import {
  DT_MAX,
  DT_MIN,
  causalDepthwiseConv,
  dtBias,
  selectiveScan,
  selectiveScanHost,
} from '../src/models/arch/mamba-model.js';
import { createModel } from '../src/models/arch/factories.js';
import { fillNormal, fillUniform, makeRng } from '../src/models/train-rng.js';
import { maxAbsDiff, tinyConfig } from './model-arch-helpers.js';

const [T, B, E, N] = [10, 3, 6, 4];

beforeAll(async () => {
  await initBackend('wasm');
});

/** Random scan inputs: Δ in (0, 2], A = −exp(·) in [−e, −e^-1]. */
function inputs(seed: number) {
  const normal = (n: number, s: number) => fillNormal(makeRng(seed + s), new Float32Array(n));
  return {
    u: normal(T * B * E, 0),
    delta: fillUniform(makeRng(seed + 1), new Float32Array(T * B * E), 0.01, 2),
    a: fillUniform(makeRng(seed + 2), new Float32Array(E * N), -1, 1).map((x) => -Math.exp(x)),
    b: normal(T * B * N, 3),
    c: normal(T * B * N, 4),
    d: normal(E, 5),
  };
}
type Inputs = ReturnType<typeof inputs>;

const tensors = (x: Inputs) =>
  [
    tf.tensor3d(x.u, [T, B, E]),
    tf.tensor3d(x.delta, [T, B, E]),
    tf.tensor2d(x.a, [E, N]),
    tf.tensor3d(x.b, [T, B, N]),
    tf.tensor3d(x.c, [T, B, N]),
    tf.tensor1d(x.d),
  ] as const;
const host = (x: { [K in keyof Inputs]: ArrayLike<number> }) =>
  selectiveScanHost(x.u, x.delta, x.a, x.b, x.c, x.d, T, B, E, N);

describe('selective scan', () => {
  it('equals the step-by-step recurrence on random inputs', () => {
    for (const seed of [1, 2, 3]) {
      const x = inputs(seed * 10);
      const got = tf.tidy(() => selectiveScan(...tensors(x)).dataSync());
      const want = host(x);
      const scale = Math.max(...want.map(Math.abs));
      expect(maxAbsDiff(got, want) / scale, `seed ${seed}`).toBeLessThan(1e-5);
    }
  });

  it('has the gradient of the recurrence (float64 central differences)', () => {
    const x = inputs(40);
    const weights = fillNormal(makeRng(99), new Float32Array(T * B * E));
    const grads = tf.tidy(() => {
      const f = (...args: tf.Tensor[]) =>
        tf.sum(
          tf.mul(
            selectiveScan(...(args as unknown as Parameters<typeof selectiveScan>)),
            tf.tensor3d(weights, [T, B, E]),
          ),
        );
      return tf
        .grads(f)([...tensors(x)])
        .map((g) => g.dataSync());
    });
    const h = 1e-5;
    (['u', 'delta', 'a', 'b', 'c', 'd'] as const).forEach((key, n) => {
      const loss = (y: Float64Array) => y.reduce((acc, yi, i) => acc + yi * weights[i], 0);
      const numeric = Array.from(x[key], (_, i) => {
        const at = (delta: number) => {
          const v = Float64Array.from(x[key]);
          v[i] += delta;
          return loss(host({ ...x, [key]: v }));
        };
        return (at(h) - at(-h)) / (2 * h);
      });
      const scale = Math.max(...numeric.map(Math.abs));
      expect(maxAbsDiff(grads[n], numeric) / scale, `d/d${key}`).toBeLessThan(1e-4);
    });
  });
});

describe('Mamba pieces', () => {
  it('convolves causally, as Conv1d(groups=E, padding=K−1) cut to the first seq outputs', () => {
    const K = 4;
    const x = fillNormal(makeRng(7), new Float32Array(T * B * E));
    const w = fillNormal(makeRng(8), new Float32Array(E * K)); // [E, 1, K]
    const got = tf.tidy(() => causalDepthwiseConv(tf.tensor3d(x, [T, B, E]), tf.tensor3d(w, [E, 1, K])).dataSync());
    const want = new Float64Array(T * B * E);
    for (let t = 0; t < T; t++)
      for (let b = 0; b < B; b++)
        for (let e = 0; e < E; e++)
          for (let j = 0; j < K; j++) {
            const src = t - (K - 1) + j; // PyTorch: out[t] = Σ_j w[j] · x_padded[t + j], K − 1 zeros in front
            if (src >= 0) want[(t * B + b) * E + e] += w[e * K + j] * x[(src * B + b) * E + e];
          }
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
  });

  it('starts with Δ in [dt_min, dt_max], A_log = log(1..N) and D = 1', () => {
    const bias = dtBias(makeRng(1), 1000);
    const dt = Array.from(bias, (x) => Math.log1p(Math.exp(x))); // softplus
    expect(Math.min(...dt)).toBeGreaterThanOrEqual(DT_MIN * (1 - 1e-5));
    expect(Math.max(...dt)).toBeLessThanOrEqual(DT_MAX * (1 + 1e-5));
    const m = createModel(tinyConfig('mamba'), makeRng(0));
    const aLog = m.params.get('backbone.layers.0.mixer.A_log') as tf.Variable;
    expect(aLog.shape).toEqual([32, 16]);
    const row = Array.from(aLog.dataSync().slice(16, 32));
    row.forEach((v, n) => expect(v).toBeCloseTo(Math.log(n + 1), 6));
    expect(
      Array.from((m.params.get('backbone.layers.1.mixer.D') as tf.Variable).dataSync()).every((v) => v === 1),
    ).toBe(true);
    m.dispose();
  });
});

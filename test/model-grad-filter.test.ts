/**
 * The Grokfast-EMA gradient filter (Lee et al. 2024, `gradfilter_ema`) against a hand computation:
 * the first step starts the average at the gradient, later steps follow
 * `ema = α·ema + (1 − α)·g, g = g + λ·ema`; per-member α and λ broadcast (an ensemble's use);
 * the stateful filter keeps its averages across steps, never leaks a tensor, and λ = 0 is no filter;
 * the train param `optimizer.grad_filter` is absent unless set, with the paper's defaults when set.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ParamsValidator } from '../src/engine/pipeline/validate.js';
import { initBackend } from '../src/models/backend.js';
import { EmaGradFilter, createGradFilter, emaFilter } from '../src/models/grad-filter.js';
import { trainerConfig, trainStage } from '../src/stages/train.js';
import type { TrainParams } from '../src/stages/train.js';
import { fillParams } from './data-context.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const values = (ts: tf.Tensor[]) => ts.map((t) => Array.from(t.dataSync()));

describe('emaFilter', () => {
  it('matches a hand computation over two steps (α 0.5, λ 2: exact in float32)', () => {
    const g1 = [tf.tensor1d([1, -2]), tf.tensor2d([[0.5]])];
    // Step 1: ema = 0.5·g + 0.5·g = g; g' = g + 2·g = 3g.
    const s1 = emaFilter(g1, null, 0.5, 2);
    expect(values(s1.ema)).toEqual([[1, -2], [0.5]]);
    expect(values(s1.grads)).toEqual([[3, -6], [1.5]]);
    expect(s1.grads[1].shape).toEqual([1, 1]);
    // Step 2, g = [3, 2], [[-1.5]]: ema = 0.5·[1, -2] + 0.5·[3, 2] = [2, 0]; g' = [3 + 4, 2 + 0] = [7, 2];
    // ema = 0.5·0.5 + 0.5·(−1.5) = −0.5; g' = −1.5 + 2·(−0.5) = −2.5.
    const g2 = [tf.tensor1d([3, 2]), tf.tensor2d([[-1.5]])];
    const s2 = emaFilter(g2, s1.ema, 0.5, 2);
    expect(values(s2.ema)).toEqual([[2, 0], [-0.5]]);
    expect(values(s2.grads)).toEqual([[7, 2], [-2.5]]);
    tf.dispose([...g1, ...g2, ...s1.ema, ...s1.grads, ...s2.ema, ...s2.grads]);
  });

  it('takes per-member α and λ as tensors that broadcast (two members, [2, 1])', () => {
    const g = [
      tf.tensor2d([
        [1, 2],
        [4, 8],
      ]),
    ];
    const prev = [
      tf.tensor2d([
        [0, 0],
        [2, 2],
      ]),
    ];
    const alpha = tf.tensor2d([[0.5], [0.75]]);
    const lambda = tf.tensor2d([[1], [4]]);
    const out = emaFilter(g, prev, alpha, lambda);
    // Member 0: ema = 0.5·0 + 0.5·[1, 2] = [0.5, 1]; g' = [1, 2] + 1·ema = [1.5, 3].
    // Member 1: ema = 0.75·2 + 0.25·[4, 8] = [2.5, 3.5]; g' = [4, 8] + 4·ema = [14, 22].
    expect(values(out.ema)).toEqual([[0.5, 1, 2.5, 3.5]]);
    expect(values(out.grads)).toEqual([[1.5, 3, 14, 22]]);
    tf.dispose([...g, ...prev, alpha, lambda, ...out.ema, ...out.grads]);
  });

  it('rejects averages that do not match the gradients', () => {
    const g = [tf.tensor1d([1, 2])];
    const bad = [tf.tensor1d([1, 2, 3])];
    expect(() => emaFilter(g, bad, 0.9, 1)).toThrow(/average 0 is \[3\], its gradient \[2\]/);
    expect(() => emaFilter(g, [], 0.9, 1)).toThrow(/0 averages for 1 gradients/);
    tf.dispose([...g, ...bad]);
  });
});

describe('EmaGradFilter', () => {
  it('follows the recurrence over steps at the paper defaults (α 0.98, λ 2), without leaking', () => {
    const params = new Map([
      ['w', tf.variable(tf.zeros([2, 2]))],
      ['b', tf.variable(tf.zeros([3]))],
    ]);
    const filter = new EmaGradFilter(params, { kind: 'ema', alpha: 0.98, lambda: 2 });
    const f = Math.fround;
    const ema = { w: [0, 0, 0, 0], b: [0, 0, 0] };
    const before = tf.memory().numTensors;
    for (let t = 0; t < 4; t++) {
      const raw = { w: [t + 1, -t, 0.25 * t, 2], b: [1 - t, 0.5, -3 * t] };
      const out = new Map<string, number[]>();
      tf.tidy(() => {
        const grads = new Map(Object.entries(raw).map(([n, v]) => [n, tf.tensor(v, params.get(n)!.shape)]));
        for (const [n, g] of filter.apply(grads)) out.set(n, Array.from(g.dataSync()));
      });
      expect(tf.memory().numTensors).toBe(before);
      for (const n of ['w', 'b'] as const) {
        const want = raw[n].map((g, i) => {
          const prev = t === 0 ? g : ema[n][i];
          ema[n][i] = f(f(prev * f(0.98)) + f(g * f(1 - 0.98)));
          return f(g + f(ema[n][i] * 2));
        });
        out.get(n)!.forEach((x, i) => expect(x, `${n}[${i}] at step ${t + 1}`).toBeCloseTo(want[i], 5));
        Array.from(filter.ema.get(n)!.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(ema[n][i], 5));
      }
    }
    expect(filter.steps).toBe(4);
    expect(() => tf.tidy(() => void filter.apply(new Map([['w', tf.zeros([2, 2])]])))).toThrow('no gradient for b');
    filter.dispose();
    tf.dispose([...params.values()]);
  });

  it('is created only for a gain above 0', () => {
    const params = new Map([['w', tf.variable(tf.zeros([2]))]]);
    expect(createGradFilter(params, undefined)).toBeUndefined();
    expect(createGradFilter(params, { kind: 'ema', alpha: 0.98, lambda: 0 })).toBeUndefined();
    const f = createGradFilter(params, { kind: 'ema', alpha: 0.98, lambda: 2 });
    expect(f?.ema.get('w')?.shape).toEqual([2]);
    f?.dispose();
    tf.dispose([...params.values()]);
  });
});

describe('train params: optimizer.grad_filter', () => {
  it('is absent unless set (other runs keep their cache keys); set, it gets the paper defaults', () => {
    const p = fillParams(trainStage, {});
    expect(p.optimizer).not.toHaveProperty('grad_filter');
    expect(trainerConfig(p, 24, 3)).not.toHaveProperty('gradFilter');
    const set = fillParams<TrainParams>(trainStage, { optimizer: { grad_filter: { kind: 'ema' } } });
    expect(set.optimizer.grad_filter).toEqual({ kind: 'ema', alpha: 0.98, lambda: 2 });
    const c = trainerConfig(set, 24, 3);
    expect(c.gradFilter).toEqual({ kind: 'ema', alpha: 0.98, lambda: 2 });
    expect(c.optimizer).not.toHaveProperty('grad_filter');
  });

  it('rejects an unknown kind, α outside [0, 1), a negative λ and unknown fields', () => {
    const problems = (f: unknown) =>
      new ParamsValidator()
        .validate(trainStage as never, { optimizer: { grad_filter: f } } as never)
        .problems.map((x) => x.path.join('.'));
    expect(problems({ kind: 'ma' })).toEqual(['optimizer.grad_filter.kind']);
    expect(problems({ alpha: 0.9 })).toEqual(['optimizer.grad_filter']);
    expect(problems({ kind: 'ema', alpha: 1 })).toEqual(['optimizer.grad_filter.alpha']);
    expect(problems({ kind: 'ema', lambda: -1 })).toEqual(['optimizer.grad_filter.lambda']);
    expect(problems({ kind: 'ema', window: 100 })).toEqual(['optimizer.grad_filter.window']);
    expect(problems({ kind: 'ema', alpha: 0.9, lambda: 5 })).toEqual([]);
  });
});

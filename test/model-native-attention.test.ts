/**
 * The fused native kernels of `wasm-blas` (native/src/attention.cc, native/src/adamw.cc) against
 * the TF.js forms they replace, on the same backend with the kernels switched off:
 *
 * - Attention (`native-attention.ts` against layers.ts `multiHeadAttention`'s ops): the output and
 *   dq, dk, dv of `Σ out ⊙ w` for a random `w`, under the causal mask and the per-example answer
 *   position mask, on odd shapes (d_head 1, 5; one key; n_q ≠ seq); and members folded into the
 *   batch get their solo values bit for bit. Tolerance 1e-5 (norm-wise relative; the products sum
 *   in another order than BLAS's).
 * - AdamW (`native-adamw.ts` against adamw.ts' ops): several updates with warmup, weight decay on
 *   some parameters, clipping that bites, one chunk and several; an ensemble with a learning rate
 *   and weight decay per member, each member equal bit for bit to its run alone; and a resume from
 *   the moments a checkpoint reads and writes, equal bit for bit to the run not interrupted. Bit
 *   for bit everywhere: the kernels run the ops' float32 operations in the ops' order.
 * - Grokfast-EMA (`native-grad-filter.ts` against grad-filter.ts' ops): four steps, the first
 *   starting the averages, bit for bit, one kernel a step.
 *
 * Skipped with the reason where the addon is not built or no BLAS library loads, unless
 * `GROKPIPE_REQUIRE_NATIVE` is set (as in CI): then they fail.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AdamW } from '../src/models/adamw.js';
import type { AdamWConfig } from '../src/models/adamw.js';
import { initBackend } from '../src/models/backend.js';
import { causalMask, multiHeadAttention, positionMask } from '../src/models/layers.js';
import { EmaGradFilter } from '../src/models/grad-filter.js';
import { EMA_FILTER_KERNEL } from '../src/models/native-grad-filter.js';
import {
  ATTENTION_GRAD_KERNEL,
  ATTENTION_KERNEL,
  fusedAttention,
  packedAttention,
  packedKvAttention,
} from '../src/models/native-attention.js';
import { useNativeKernels } from '../src/models/native-kernels.js';
import { randn, relL2Error } from './model-arch-helpers.js';
import { needNative, nativeUnavailable } from './native-helpers.js';

beforeAll(async () => {
  if (!nativeUnavailable) await initBackend('wasm-blas');
});

const bits = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

interface AttentionCase {
  name: string;
  batch: number;
  seq: number;
  dModel: number;
  heads: number;
  /** `causal`: n_q = seq under the causal mask; `position`: one query a example under `positionMask`. */
  mask: 'causal' | 'position';
}

const CASES: AttentionCase[] = [
  { name: 'GPT-2 2x64 block', batch: 16, seq: 10, dModel: 64, heads: 4, mask: 'causal' },
  { name: 'answer position', batch: 16, seq: 10, dModel: 64, heads: 4, mask: 'position' },
  { name: 'odd: d_head 5, seq 7', batch: 3, seq: 7, dModel: 15, heads: 3, mask: 'causal' },
  { name: 'odd: d_head 1, seq 9, position', batch: 5, seq: 9, dModel: 3, heads: 3, mask: 'position' },
  { name: 'one key', batch: 4, seq: 1, dModel: 8, heads: 2, mask: 'causal' },
  { name: 'seq 33, one head', batch: 2, seq: 33, dModel: 24, heads: 1, mask: 'causal' },
];

/** Operands of a case: q `[B, n_q, d]`, k and v `[B, S, d]`, the mask, and a weight `w` like the output. */
function operands(c: AttentionCase, batch: number, seed: number) {
  const nQ = c.mask === 'causal' ? c.seq : 1;
  const positions = Int32Array.from({ length: batch }, (_, b) => (b * 7 + seed) % c.seq);
  return {
    q: randn([batch, nQ, c.dModel], seed) as tf.Tensor3D,
    k: randn([batch, c.seq, c.dModel], seed + 1) as tf.Tensor3D,
    v: randn([batch, c.seq, c.dModel], seed + 2) as tf.Tensor3D,
    w: randn([batch, nQ, c.dModel], seed + 3),
    mask: c.mask === 'causal' ? causalMask(c.seq) : positionMask(tf.tensor1d(positions, 'int32'), c.seq),
  };
}

/** The output and dq, dk, dv of `Σ out ⊙ w`, on the native kernels (`on`) or the TF.js ops. */
function attention(c: AttentionCase, x: ReturnType<typeof operands>, on: boolean): Float32Array[] {
  useNativeKernels(on);
  try {
    return tf.tidy(() => {
      const f = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
        multiHeadAttention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, c.heads, x.mask);
      const out = f(x.q, x.k, x.v);
      const grads = tf.grads((q, k, v) => tf.sum(tf.mul(f(q, k, v), x.w)))([x.q, x.k, x.v]);
      return [out, ...grads].map((t) => t.dataSync() as Float32Array);
    });
  } finally {
    useNativeKernels(true);
  }
}

/**
 * The output and dq, dk, dv of `Σ out ⊙ w` in float64 from the operands' float32 values, by the
 * formulas of native/src/attention.cc's header (the exact values both float32 forms round), and
 * the same sums with every term's absolute value: the magnitudes float32 rounding is relative to.
 * @returns `[out, dq, dk, dv]` and their magnitudes.
 */
function exactAttention(c: AttentionCase, x: ReturnType<typeof operands>): [Float64Array[], Float64Array[]] {
  const [q, k, v, w] = [x.q, x.k, x.v, x.w].map((t) => t.dataSync() as Float32Array);
  const [B, nQ, D] = x.q.shape;
  const [S, H, dh] = [c.seq, c.heads, c.dModel / c.heads];
  const mask = tf.tidy(() => tf.broadcastTo(x.mask, [B, H, nQ, S]).dataSync() as Float32Array);
  const sizes = [q.length, q.length, k.length, k.length];
  const [exact, magnitude] = [sizes.map((n) => new Float64Array(n)), sizes.map((n) => new Float64Array(n))];
  const scale = 1 / Math.sqrt(dh);
  const dot = (a: Float32Array, ra: number, b: Float32Array, rb: number, h: number) => {
    let sum = 0;
    for (let e = 0; e < dh; e++) sum += a[ra * D + h * dh + e] * b[rb * D + h * dh + e];
    return sum;
  };
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < nQ; i++) {
        const [qi, kj] = [b * nQ + i, (j: number) => b * S + j];
        const s = Array.from(
          { length: S },
          (_, j) => dot(q, qi, k, kj(j), h) * scale + mask[((b * H + h) * nQ + i) * S + j],
        );
        const e = s.map((z) => Math.exp(z - Math.max(...s)));
        const p = e.map((z) => z / e.reduce((a, y) => a + y, 0));
        const dp = p.map((_, j) => dot(w, qi, v, kj(j), h));
        const sum = p.reduce((a, pj, j) => a + pj * dp[j], 0);
        const sumAbs = p.reduce((a, pj, j) => a + pj * Math.abs(dp[j]), 0);
        p.forEach((pj, j) => {
          const [ds, dsAbs] = [pj * (dp[j] - sum) * scale, pj * (Math.abs(dp[j]) + sumAbs) * scale];
          for (let col = 0; col < dh; col++) {
            const [at, kt] = [qi * D + h * dh + col, kj(j) * D + h * dh + col];
            const terms = [
              [0, at, pj, v[kt]],
              [1, at, ds, k[kt]],
              [2, kt, ds, q[at]],
              [3, kt, pj, w[at]],
            ];
            for (const [out, where, a, y] of terms) {
              exact[out][where] += a * y;
              magnitude[out][where] += Math.abs(a * y) + (out === 1 || out === 2 ? dsAbs * Math.abs(y) : 0);
            }
          }
        });
      }
  return [exact, magnitude];
}

/** `‖a − exact‖₂ / ‖magnitude‖₂`: float32 rounding error relative to the magnitude of the sums. */
function roundingError(a: Float32Array, exact: Float64Array, magnitude: Float64Array): number {
  let [err, norm] = [0, 0];
  a.forEach((x, i) => {
    err += (x - exact[i]) ** 2;
    norm += magnitude[i] ** 2;
  });
  return Math.sqrt(err) / Math.max(Math.sqrt(norm), 1e-30);
}

describe('fused attention against the TF.js ops', () => {
  beforeEach(needNative);

  it.each(CASES)('$name: output and dq, dk, dv', (c) => {
    const x = operands(c, c.batch, 5);
    const before = tf.memory().numTensors;
    const fused = attention(c, x, true);
    const reference = attention(c, x, false);
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
    const [exact, magnitude] = exactAttention(c, x);
    ['out', 'dq', 'dk', 'dv'].forEach((what, i) => {
      console.log(
        c.name,
        what,
        roundingError(fused[i], exact[i], magnitude[i]),
        roundingError(reference[i], exact[i], magnitude[i]),
      );
      expect(roundingError(fused[i], exact[i], magnitude[i]), `${what}, fused`).toBeLessThan(1e-5);
      expect(roundingError(reference[i], exact[i], magnitude[i]), `${what}, TF.js ops`).toBeLessThan(1e-5);
      if (what === 'out' || what === 'dv' || c.seq > 1)
        expect(
          reference[i].some((e) => e !== 0),
          what,
        ).toBe(true);
    });
    tf.dispose(Object.values(x));
  });

  it.each(CASES)('$name: three members folded into the batch equal their solo runs bit for bit', (c) => {
    const solo = [0, 1, 2].map((m) => operands(c, c.batch, 10 * m));
    const folded = tf.tidy(() => {
      const cat = (key: 'q' | 'k' | 'v' | 'w') => tf.concat(solo.map((s) => s[key]));
      const mask = c.mask === 'causal' ? solo[0].mask : tf.concat(solo.map((s) => s.mask));
      return { q: cat('q') as tf.Tensor3D, k: cat('k') as tf.Tensor3D, v: cat('v') as tf.Tensor3D, w: cat('w'), mask };
    });
    const all = attention(c, folded, true);
    solo.forEach((s, m) => {
      attention(c, s, true).forEach((values, i) => {
        const part = all[i].subarray(m * values.length, (m + 1) * values.length);
        expect(bits(part).equals(bits(values)), `member ${m}, output ${i}`).toBe(true);
      });
      tf.dispose(Object.values(s));
    });
    tf.dispose(Object.values(folded));
  });

  it.each(CASES)('$name: packed qkv (and q apart from a packed kv) equal separate operands bit for bit', (c) => {
    const x = operands(c, c.batch, 3);
    const run = (f: (q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D) => tf.Tensor) =>
      tf.tidy(() => {
        const grads = tf.grads((q, k, v) =>
          tf.sum(tf.mul(f(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D), x.w)),
        )([x.q, x.k, x.v]);
        return [f(x.q, x.k, x.v), ...grads].map((t) => t.dataSync() as Float32Array);
      });
    const separate = run((q, k, v) => fusedAttention(q, k, v, c.heads, x.mask));
    // Packed by TF.js' Concat, whose gradient only slices the kernel's packed gradient apart.
    const kv = run((q, k, v) => packedKvAttention(q, tf.concat([k, v], 2), c.heads, x.mask));
    separate.forEach((values, i) => expect(bits(kv[i]).equals(bits(values)), `q, kv: output ${i}`).toBe(true));
    if (c.mask === 'causal') {
      const qkv = run((q, k, v) => packedAttention(tf.concat([q, k, v], 2), c.heads, x.mask));
      separate.forEach((values, i) => expect(bits(qkv[i]).equals(bits(values)), `qkv: output ${i}`).toBe(true));
    }
    tf.dispose(Object.values(x));
  });

  it('is one kernel forward and one backward', async () => {
    const x = operands(CASES[0], 4, 1);
    const f = (q: tf.Tensor) => multiHeadAttention(q as tf.Tensor3D, x.k, x.v, 4, x.mask);
    const profile = await tf.profile(() => void tf.tidy(() => tf.grad((q) => tf.sum(f(q)))(x.q)));
    expect(profile.kernelNames.filter((k) => k.startsWith('Grokpipe'))).toEqual([
      ATTENTION_KERNEL,
      ATTENTION_GRAD_KERNEL,
    ]);
    expect(profile.kernelNames).not.toContain('Softmax');
    tf.dispose(Object.values(x));
  });
});

const CONFIG: AdamWConfig = {
  lr: 3e-3,
  weight_decay: 0.5,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-8,
  warmup_steps: 3,
  grad_clip: 1,
};

/** Parameter shapes: matrices (decayed) and vectors (not), some with odd sizes. */
const SHAPES: [string, number[]][] = [
  ['wte', [11, 8]],
  ['ln.g', [8]],
  ['attn.w', [8, 24]],
  ['attn.b', [24]],
  ['head', [7, 3]],
];

/** Seeded parameters of `members` members (stacked `[members, ...]` when `stacked`). */
function makeParams(members: number, stacked: boolean, seed: number): Map<string, tf.Variable> {
  return new Map(
    SHAPES.map(([name, shape], i) => {
      const init = randn(stacked ? [members, ...shape] : shape, seed + i, 0.5);
      const v = tf.variable(init, true);
      init.dispose();
      return [name, v];
    }),
  );
}

/** `steps` updates with seeded gradients of scale `gradStd` (large enough that clipping bites). */
function train(
  opt: AdamW,
  steps: number,
  seed: number,
  gradStd: number,
  from = 0,
  norms: number[] = [],
): Float32Array[] {
  for (let s = from; s < from + steps; s++) {
    tf.tidy(() => {
      const grads = new Map([...opt.params].map(([n, p], i) => [n, randn(p.shape, seed + 100 * s + i, gradStd)]));
      norms.push(...opt.apply(grads).dataSync());
    });
  }
  return [...opt.params.values()].map((p) => p.dataSync() as Float32Array);
}

async function moments(opt: AdamW, member = 0): Promise<Float32Array[]> {
  const names = [...opt.params.keys()];
  return [
    ...(await Promise.all(names.map((n) => opt.readMoment('m', n, member)))),
    ...(await Promise.all(names.map((n) => opt.readMoment('v', n, member)))),
  ];
}

/** Parameters, moments and the norms of 6 updates, natively (`on`) or as TF.js ops. */
async function adamwRun(on: boolean, config: AdamWConfig, chunk: number, gradStd: number) {
  useNativeKernels(on);
  try {
    const params = makeParams(1, false, 1);
    const opt = new AdamW(params, config, (n) => n !== 'ln.g' && n !== 'attn.b', chunk);
    const norms: number[] = [];
    const weights = train(opt, 6, 7, gradStd, 0, norms);
    const result = [...weights, ...(await moments(opt)), Float32Array.from(norms)];
    opt.dispose();
    tf.dispose([...params.values()]);
    return result;
  } finally {
    useNativeKernels(true);
  }
}

describe('fused AdamW against the TF.js ops', () => {
  beforeEach(needNative);

  it.each([
    ['one chunk, clipping bites', 1 << 20, 1],
    ['a chunk a parameter or two', 100, 1],
    ['no clipping', 1 << 20, 0],
  ])('%s: bit for bit', async (_name, chunk, clip) => {
    const config = { ...CONFIG, grad_clip: clip };
    const before = tf.memory().numTensors;
    const fused = await adamwRun(true, config, chunk, 3);
    const reference = await adamwRun(false, config, chunk, 3);
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
    fused.forEach((values, i) => expect(bits(values).equals(bits(reference[i])), `tensor ${i}`).toBe(true));
    // The gradients' norms (the last tensor) exceed the clip, and the run really moved the weights.
    expect(Math.min(...fused[fused.length - 1])).toBeGreaterThan(1);
    const start = makeParams(1, false, 1);
    expect(relL2Error(fused[0], start.get('wte')!.dataSync() as Float32Array)).toBeGreaterThan(1e-3);
    tf.dispose([...start.values()]);
  });

  it('an ensemble with its own lr and weight decay a member equals each member alone, bit for bit', async () => {
    const configs = [CONFIG, { ...CONFIG, lr: 1e-3, weight_decay: 0 }, { ...CONFIG, lr: 5e-3, weight_decay: 2 }];
    const decays = (n: string) => n !== 'ln.g';
    const stacked = makeParams(3, true, 20);
    const ens = new AdamW(stacked, configs, decays, 200);
    const grads = (s: number, member?: number) =>
      new Map(
        [...stacked].map(([n, p], i) => {
          const all = randn(p.shape, 1000 * s + i, 3);
          if (member === undefined) return [n, all];
          const one = tf.squeeze(tf.slice(all, member, 1), [0]);
          all.dispose();
          return [n, one];
        }),
      );
    const solos = configs.map((c, m) => {
      const params = new Map([...stacked].map(([n, p]) => [n, tf.variable(tf.squeeze(tf.slice(p, m, 1), [0]))]));
      return new AdamW(params, c, decays, 200);
    });
    for (let s = 0; s < 5; s++) {
      tf.tidy(() => void ens.apply(grads(s)));
      solos.forEach((opt, m) => tf.tidy(() => void opt.apply(grads(s, m))));
    }
    for (let m = 0; m < 3; m++) {
      const solo = [...solos[m].params.values()].map((p) => p.dataSync() as Float32Array);
      [...stacked.values()].forEach((p, i) => {
        const all = p.dataSync() as Float32Array;
        const part = all.subarray(m * solo[i].length, (m + 1) * solo[i].length);
        expect(bits(part).equals(bits(solo[i])), `member ${m}, parameter ${i}`).toBe(true);
      });
      const [ensMoments, soloMoments] = [await moments(ens, m), await moments(solos[m])];
      ensMoments.forEach((x, i) => expect(bits(x).equals(bits(soloMoments[i])), `member ${m}, moment ${i}`).toBe(true));
    }
    // And each is the TF.js ops' ensemble update.
    useNativeKernels(false);
    const ref = makeParams(3, true, 20);
    const refOpt = new AdamW(ref, configs, decays, 200);
    for (let s = 0; s < 5; s++) tf.tidy(() => void refOpt.apply(grads(s)));
    useNativeKernels(true);
    [...ref.values()].forEach((p, i) =>
      expect(bits([...stacked.values()][i].dataSync() as Float32Array).equals(bits(p.dataSync() as Float32Array))).toBe(
        true,
      ),
    );
    for (const opt of [ens, refOpt, ...solos]) {
      opt.dispose();
      tf.dispose([...opt.params.values()]);
    }
  });

  it('resumes from the moments a checkpoint reads and writes, bit for bit', async () => {
    const decays = (n: string) => n.startsWith('w') || n === 'head';
    const whole = new AdamW(makeParams(1, false, 3), CONFIG, decays);
    const straight = train(whole, 5, 9, 3);
    const first = new AdamW(makeParams(1, false, 3), CONFIG, decays);
    train(first, 2, 9, 3);
    const saved = await moments(first);
    const names = [...first.params.keys()];
    const resumed = new AdamW(
      new Map(names.map((n) => [n, tf.variable(first.params.get(n)!.clone())])),
      CONFIG,
      decays,
    );
    names.forEach((n, i) => {
      resumed.writeMoment('m', n, saved[i]);
      resumed.writeMoment('v', n, saved[names.length + i]);
    });
    resumed.step = first.step;
    const after = train(resumed, 3, 9, 3, 2);
    after.forEach((w, i) => expect(bits(w).equals(bits(straight[i])), `parameter ${i}`).toBe(true));
    for (const opt of [whole, first, resumed]) {
      opt.dispose();
      tf.dispose([...opt.params.values()]);
    }
  });

  it('is two kernels an update', async () => {
    const opt = new AdamW(makeParams(1, false, 4), CONFIG, () => true);
    const profile = await tf.profile(() => {
      tf.tidy(() => void opt.apply(new Map([...opt.params].map(([n, p], i) => [n, randn(p.shape, i)]))));
    });
    const update = profile.kernelNames.filter((k) => k.startsWith('Grokpipe'));
    expect(update).toEqual(['GrokpipeGradNorm', 'GrokpipeAdamW']);
    opt.dispose();
    tf.dispose([...opt.params.values()]);
  });
});

describe('fused Grokfast-EMA filter against the TF.js ops', () => {
  beforeEach(needNative);

  /** Filtered gradients and averages of 4 steps (the first starts the averages), natively (`on`) or as ops. */
  function filterRun(on: boolean): Float32Array[] {
    useNativeKernels(on);
    try {
      const params = makeParams(1, false, 5);
      const filter = new EmaGradFilter(params, { kind: 'ema', alpha: 0.98, lambda: 2 });
      const out: Float32Array[] = [];
      for (let s = 0; s < 4; s++)
        tf.tidy(() => {
          const grads = new Map([...params].map(([n, p], i) => [n, randn(p.shape, 50 * s + i)]));
          for (const g of filter.apply(grads).values()) out.push(g.dataSync() as Float32Array);
        });
      out.push(...[...filter.ema.values()].map((e) => e.dataSync() as Float32Array));
      filter.dispose();
      tf.dispose([...params.values()]);
      return out;
    } finally {
      useNativeKernels(true);
    }
  }

  it('gradients and averages over four steps, bit for bit, in one kernel a step', async () => {
    const before = tf.memory().numTensors;
    const [fused, reference] = [filterRun(true), filterRun(false)];
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
    expect(fused.length).toBe(5 * SHAPES.length);
    fused.forEach((values, i) => expect(bits(values).equals(bits(reference[i])), `tensor ${i}`).toBe(true));
    const params = makeParams(1, false, 5);
    const filter = new EmaGradFilter(params, { kind: 'ema', alpha: 0.9, lambda: 1 });
    const grads = new Map([...params].map(([n, p], i) => [n, randn(p.shape, i)]));
    const profile = await tf.profile(() => void tf.tidy(() => void filter.apply(grads)));
    expect(profile.kernelNames).toEqual([EMA_FILTER_KERNEL]);
    filter.dispose();
    tf.dispose([...params.values(), ...grads.values()]);
  });
});

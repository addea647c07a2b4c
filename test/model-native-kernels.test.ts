/**
 * The fused native kernels of `wasm-blas` (src/models/native-*.ts, native/src/kernels.cc,
 * activations.cc, embedding.cc) against the TF.js forms they replace, on the same backend with the
 * native kernels switched off (`useNativeKernels(false)`): `crossEntropy` (logSoftmax and a
 * one-hot product) and its hits (TF.js' argMax), `layerNorm`, `rmsNorm`, `gelu` (fused.ts' TF.js
 * custom gradients), `silu`, `swiglu` and `tokenPositionEmbedding` (layers.ts' op chains). For
 * each: values and the gradient of `Σ y ⊙ w` (random `w`) with respect to every input, to 1e-5
 * relative to the largest entry, on odd shapes, for one model and for the `[members, ...]` shapes
 * of an ensemble; that each output row is the same bits whatever else is in the batch, and an
 * ensemble member's values and parameter gradients the bits of its solo run; that the native
 * kernels actually ran (`tf.profile`), and only on `wasm-blas`; and the accuracy of the addon's exp.
 *
 * Where the addon is not built or no BLAS library loads, the tests are skipped with the reason,
 * unless `GROKPIPE_REQUIRE_NATIVE` is set (as in CI): then they fail.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { gelu, layerNorm, rmsNorm, silu, swiglu, tokenPositionEmbedding } from '../src/models/layers.js';
import { loadNativeBlas } from '../src/models/native-blas.js';
import { kernelsAddon, nativeKernelsOn, useNativeKernels } from '../src/models/native-kernels.js';
import { nativeCrossEntropyRows } from '../src/models/native-loss.js';
import { fillNormal, makeRng } from '../src/models/train-rng.js';
import { crossEntropy } from '../src/models/train/loss.js';
import { maxRelDiff, randomTokens } from './model-arch-helpers.js';

const REQUIRE_NATIVE = Boolean(process.env.GROKPIPE_REQUIRE_NATIVE);
const native = loadNativeBlas();
const unavailable =
  'error' in native
    ? `native BLAS unavailable: ${native.error}`
    : kernelsAddon()
      ? undefined
      : 'the addon has no fused kernels (rebuild it: npm run build:native)';
if (unavailable && !REQUIRE_NATIVE)
  console.warn(`native kernel tests skipped (set GROKPIPE_REQUIRE_NATIVE to fail instead): ${unavailable}`);
if (unavailable && REQUIRE_NATIVE) throw new Error(`GROKPIPE_REQUIRE_NATIVE is set but ${unavailable}`);
const suite = unavailable ? describe.skip : describe;

const TOL = 1e-5;
let seed = 1;
const normal = (shape: number[], std = 1): tf.Tensor =>
  tf.tensor(fillNormal(makeRng(seed++), new Float32Array(shape.reduce((p, d) => p * d, 1)), 0, std), shape);

interface Run {
  value: Float32Array;
  grads: Float32Array[];
  kernels: string[];
}

/**
 * `f(...xs)` and the gradient of `Σ f(xs) ⊙ w` with respect to each of `xs`, with the native
 * kernels on or off, and the names of the kernels that ran.
 */
async function run(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], w: tf.Tensor, on: boolean): Promise<Run> {
  useNativeKernels(on);
  try {
    let out: Tensors | undefined;
    const profile = await tf.profile(() => {
      out = tf.tidy(() => {
        const { value, grads } = tf.valueAndGrads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
        value.dispose();
        return [f(...xs), ...grads];
      });
    });
    const [value, ...grads] = out!.map((t) => t.dataSync() as Float32Array);
    tf.dispose(out);
    return { value, grads, kernels: profile.kernelNames };
  } finally {
    useNativeKernels(true);
  }
}
type Tensors = tf.Tensor[];

/** Native against TF.js: values and gradients to TOL, and the native kernels `names` ran (only) when on. */
async function compare(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], names: string[]): Promise<Run> {
  const w = normal(f(...xs).shape);
  const got = await run(f, xs, w, true);
  const want = await run(f, xs, w, false);
  expect(maxRelDiff(got.value, want.value)).toBeLessThan(TOL);
  want.grads.forEach((g, i) => {
    expect(g.some((v) => v !== 0)).toBe(true);
    expect(maxRelDiff(got.grads[i], g), `gradient ${i}`).toBeLessThan(TOL);
  });
  for (const n of names) {
    expect(got.kernels).toContain(`Grokpipe${n}`);
    expect(got.kernels).toContain(`Grokpipe${n}Grad`);
  }
  expect(want.kernels.filter((k) => k.startsWith('Grokpipe'))).toEqual([]);
  tf.dispose([w, ...xs]);
  return got;
}

const targetsOf = (shape: number[], vocab: number, s: number): tf.Tensor =>
  tf.tensor(
    randomTokens(
      shape.reduce((p, d) => p * d, 1),
      1,
      vocab,
      s,
    ),
    shape,
    'int32',
  );

suite('fused native kernels on wasm-blas', () => {
  beforeAll(async () => {
    await initBackend('wasm-blas', { threads: 1 });
  });
  afterAll(() => useNativeKernels(true));

  it('cross-entropy: values and gradients, solo and members, odd and training shapes', async () => {
    for (const [shape, scale] of [
      [[7, 13], 1],
      [[3, 5, 13], 3],
      [[128, 1200], 0.5],
      [[2, 9, 37], 30],
    ] as [number[], number][]) {
      const targets = targetsOf(shape.slice(0, -1), shape[shape.length - 1], seed++);
      await compare((x) => crossEntropy(x, targets), [normal(shape, scale)], ['CrossEntropy']);
      targets.dispose();
    }
  });

  it('cross-entropy: correct = first argmax is the target; out-of-range targets give loss and gradient 0', async () => {
    const logits = tf.tensor2d([
      [1, 3, 3, 0],
      [5, 1, 2, 0],
      [0, 0, 1, 9],
      [0, 2, 1, 0],
    ]);
    const targets = tf.tensor1d([1, 1, 3, 7], 'int32');
    const { loss, correct } = nativeCrossEntropyRows(logits, targets);
    expect(Array.from(correct.dataSync())).toEqual([1, 0, 1, 0]);
    expect(loss.dataSync()[3]).toBe(0);
    const g = tf.grad((x: tf.Tensor) => tf.sum(nativeCrossEntropyRows(x, targets).loss))(logits);
    expect(Array.from(g.dataSync().slice(12))).toEqual([0, 0, 0, 0]);
    expect(() => nativeCrossEntropyRows(logits, tf.tensor1d([1, 2, 3, 0]))).toThrow(/int32/);
    tf.dispose([logits, targets, loss, correct, g]);
    // Against TF.js' argMax on [members, b, vocab] logits, where about half the answers are right.
    const x = normal([3, 40, 11]);
    const argmax = tf.argMax(x, -1);
    const t = tf.tensor(
      Int32Array.from(argmax.dataSync(), (a, i) => (i % 2 ? a : (a + 1) % 11)),
      [3, 40],
      'int32',
    );
    const hits = nativeCrossEntropyRows(x, t);
    const want = tf.cast(tf.equal(argmax, t), 'float32');
    expect(Array.from(hits.correct.dataSync())).toEqual(Array.from(want.dataSync()));
    tf.dispose([x, argmax, t, hits.loss, hits.correct, want]);
  });

  it('LayerNorm and RMSNorm: values and gradients, solo and members, odd shapes', async () => {
    const cases: [number[], number[]][] = [
      [[5, 37], [37]],
      [[1, 4, 3, 37], [37]],
      [
        [3, 4, 3, 37],
        [3, 1, 1, 37],
      ],
      [
        [2, 768, 64],
        [2, 1, 64],
      ],
    ];
    for (const [xs, ps] of cases) {
      const shift = (x: tf.Tensor) => tf.add(x, 0.7);
      await compare(
        (x, g, b) => layerNorm(x, g, b, 1e-5),
        [shift(normal(xs, 2)), normal(ps), normal(ps)],
        ['LayerNorm'],
      );
      await compare((x, g) => rmsNorm(x, g, 1e-6), [shift(normal(xs, 2)), normal(ps)], ['RmsNorm']);
    }
  });

  it('GELU, SiLU and SwiGLU: values and gradients over a wide range', async () => {
    for (const shape of [
      [5, 37],
      [3, 2, 71],
      [768, 256],
    ]) {
      await compare((x) => gelu(x), [normal(shape, 4)], ['Gelu']);
      await compare((x) => silu(x), [normal(shape, 4)], ['Silu']);
      await compare((g, u) => swiglu(g, u), [normal(shape, 4), normal(shape)], ['Swiglu']);
    }
  });

  it('token + position embedding: values and gradients, solo and members, sequences shorter than the table', async () => {
    for (const [members, stacked, batch, seq, vocab, positions, d] of [
      [1, false, 7, 5, 23, 5, 13],
      [1, false, 128, 6, 1200, 10, 64],
      [3, true, 4, 3, 11, 5, 37],
    ] as [number, boolean, number, number, number, number, number][]) {
      const lead = stacked ? [members] : [];
      const tokens = targetsOf([members, batch, seq], vocab, seed++) as tf.Tensor3D;
      await compare(
        (wte, wpe) => tokenPositionEmbedding(wte, wpe, tokens),
        [normal([...lead, vocab, d]), normal([...lead, positions, d])],
        ['Embedding'],
      );
      tokens.dispose();
    }
    const bad = tf.tensor3d([[[0, 5]]], [1, 1, 2], 'int32');
    expect(() => tokenPositionEmbedding(tf.zeros([5, 3]), tf.zeros([4, 3]), bad)).toThrow(/id 5 outside \[0, 5\)/);
    bad.dispose();
  });

  it('each row is the same bits whatever else is in the batch; a member is its solo run', () => {
    const d = 37;
    const x = normal([3, 4, 3, d]);
    const [g, b] = [normal([3, 1, 1, d]), normal([3, 1, 1, d])];
    const logits = normal([3, 12, 29]);
    const targets = targetsOf([3, 12], 29, 5);
    const all = (xs: tf.Tensor, gs: tf.Tensor, bs: tf.Tensor, ls: tf.Tensor, ts: tf.Tensor) =>
      tf.tidy(() => {
        const f = (a: tf.Tensor, c: tf.Tensor, e: tf.Tensor, l: tf.Tensor) =>
          [layerNorm(a, c, e, 1e-5), rmsNorm(a, c, 1e-6), gelu(a), silu(a), crossEntropy(l, ts)]
            .map((y) => tf.sum(tf.square(y)))
            .reduce((p, q) => tf.add(p, q));
        const { grads } = tf.valueAndGrads(f)([xs, gs, bs, ls]);
        const y = [layerNorm(xs, gs, bs, 1e-5), rmsNorm(xs, gs, 1e-6), gelu(xs), silu(xs), crossEntropy(ls, ts)];
        return [...y, ...grads].map((t) => Array.from(t.dataSync()));
      });
    const ensemble = all(x, g, b, logits, targets);
    const m = 1;
    const pick = (t: tf.Tensor, shape: number[]) => tf.reshape(tf.slice(t, m, 1), shape);
    const solo = all(pick(x, [1, 4, 3, d]), pick(g, [d]), pick(b, [d]), pick(logits, [12, 29]), pick(targets, [12]));
    const part = (a: number[], n: number) => a.slice((m * a.length) / n, ((m + 1) * a.length) / n);
    ensemble.forEach((a, i) => expect(solo[i], `output ${i}`).toEqual(part(a, 3)));
    // The first two rows of member 1 alone: the same bits as within the whole batch.
    const rows = all(
      tf.slice(pick(x, [4, 3, d]), 0, 2),
      pick(g, [d]),
      pick(b, [d]),
      tf.slice(pick(logits, [12, 29]), 0, 2),
      tf.slice(pick(targets, [12]), 0, 2),
    );
    for (const i of [0, 1, 2, 3, 4, 5, 8]) expect(rows[i], `output ${i}`).toEqual(solo[i].slice(0, rows[i].length));
    tf.dispose([x, g, b, logits, targets]);
  });

  it('on exactly when the backend is wasm-blas', async () => {
    const kernelsOf = async () =>
      (await tf.profile(() => tf.tidy(() => gelu(tf.ones([2, 3]))))).kernelNames.filter((k) =>
        k.startsWith('Grokpipe'),
      );
    expect(nativeKernelsOn()).toBe(true);
    expect(await kernelsOf()).toEqual(['GrokpipeGelu']);
    await initBackend('wasm');
    expect(nativeKernelsOn()).toBe(false);
    expect(await kernelsOf()).toEqual([]);
    await initBackend('wasm-blas', { threads: 1 });
    expect(nativeKernelsOn()).toBe(true);
  });

  it("the addon's exp: relative error ≤ 2.5e-7 on [-87, 88], 0 below, NaN through", () => {
    const addon = kernelsAddon()!;
    const n = 200001;
    const x = Float32Array.from({ length: n }, (_, i) => -87 + (175 * i) / (n - 1));
    const y = new Float32Array(n);
    addon.exp(x, y, n);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[i] / Math.exp(x[i]) - 1));
    expect(worst).toBeLessThan(2.5e-7);
    const edge = Float32Array.from([-88, -Infinity, NaN, 0]);
    const out = new Float32Array(4);
    addon.exp(edge, out, 4);
    expect(Array.from(out)).toEqual([0, 0, NaN, 1]);
    expect(() => addon.exp(edge, new Float32Array(2), 4)).toThrow(/y has 2 elements, the shapes need 4/);
    expect(() => addon.exp(Array.from(edge) as unknown as Float32Array, out, 4)).toThrow(/x must be a Float32Array/);
  });
});

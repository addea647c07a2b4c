/**
 * The optimised training path against a straightforward reference, for every architecture: the
 * mean cross-entropy loss at the answer positions and the gradient of every parameter, on the
 * same seeded model and the same random batch.
 *
 * - Optimised: `initBackend('wasm')` and, where the native addon and a BLAS library load,
 *   `initBackend('wasm-blas')` (required when `GROKPIPE_REQUIRE_NATIVE` is set, as in CI), each
 *   with whatever kernels and matmul policy it sets (the host UnsortedSegmentSum, row GatherV2,
 *   buffer-sharing Identity, explicit transposes on wasm, OpenBLAS products with transpose flags on
 *   wasm-blas; nothing here depends on which), and the fused GELU/LayerNorm/RMSNorm of fused.ts.
 * - Reference: TF.js' pure-JavaScript cpu backend with its stock kernels (this file never calls
 *   `initBackend('cpu')`, and checks that no grokpipe kernel is registered for cpu) and `matMul`
 *   as TF.js' products with transpose flags and their stock gradient
 *   (`useExplicitTransposeGradient(false)`), and GELU/LayerNorm/RMSNorm as plain op chains
 *   (`useFusedLayers(false)`). The other gradient formulas are those of `gradients.ts` on both
 *   paths (tfjs-core's Node bundle registers none); test/model-layers.test.ts and
 *   test/model-arch-common.test.ts check them against finite differences.
 *
 * Inputs: 2 layers, d_model 64, vocab 50, seq 5, batch 32; random tokens, random targets, answer
 * positions 0..4 (prompt lengths 1 to 5, each about equally often, shuffled). Each architecture
 * runs twice: at its seeded initialisation (what training starts from) and with every weight
 * perturbed by seeded noise (`perturbParams`), because at initialisation RWKV-4's zero output
 * projections make 32 of its 42 gradients exactly zero, which would compare nothing.
 *
 * Tolerance: the loss to 1e-4 relative; each parameter's gradient to a norm-wise relative error
 * `‖g_opt − g_ref‖₂ / ‖g_ref‖₂ ≤ 1e-4` (`relL2Error`), not an element-wise one. The backends sum
 * float32 products in different orders (XNNPACK's blocked kernels, the cpu backend's loops), so
 * each entry carries a rounding error of order ε times the magnitudes summed into it; relative to
 * an entry that happens to be near zero that error is arbitrarily large, although the gradient as
 * a vector agrees to ~1e-6. Measured: loss ≤ 1.2e-7 relative, worst gradient ≤ 1.2e-6 (Mamba's
 * dt_proj), so 1e-4 leaves a wide margin for another summation order and still catches a kernel
 * off by 1e-3 (checked by scaling the wasm segment sum by 1.001: every architecture fails). Every reference gradient must be non-zero (with
 * perturbed weights; at initialisation, not all of them zero), so the comparison cannot pass
 * vacuously, and the optimised path must leave no tensor (nor wasm buffer) behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { AdamW, CHUNK_ELEMENTS, globalNorm, learningRate } from '../src/models/adamw.js';
import type { AdamWConfig } from '../src/models/adamw.js';
import { initBackend } from '../src/models/backend.js';
import type { BackendName } from '../src/models/backend.js';
import { useExplicitTransposeGradient, useFusedLayers, useFusedLinear } from '../src/models/layers.js';
import { loadNativeBlas } from '../src/models/native-blas.js';
import { createModel } from '../src/models/arch/factories.js';
import type { Arch } from '../src/models/arch/registry.js';
import type { LanguageModel } from '../src/models/model.js';
import { makeRng, permutation } from '../src/models/train-rng.js';
import { crossEntropy } from '../src/models/train/loss.js';
import { ARCHS, perturbParams, randn, randomTokens, relL2Error, tinyConfig } from './model-arch-helpers.js';

const VOCAB = 50;
const SEQ = 5;
const D_MODEL = 64;
const BATCH = 32;
const MODEL_SEED = 11;
const NOISE_SEED = 12;
const DATA_SEED = 13;
/** Relative tolerance of the loss and norm-wise relative tolerance of each gradient. */
const TOL = 1e-4;

type Weights = 'initial' | 'perturbed';

interface Batch {
  tokens: Int32Array;
  positions: Int32Array;
  targets: Int32Array;
}

/** Random tokens and targets; answer positions cycling through 0..SEQ-1 in a random order. */
function randomBatch(seed: number): Batch {
  const order = permutation(makeRng(seed), BATCH);
  return {
    tokens: randomTokens(BATCH, SEQ, VOCAB, seed + 1),
    positions: Int32Array.from(order, (i) => i % SEQ),
    targets: randomTokens(BATCH, 1, VOCAB, seed + 2),
  };
}

/** The same seeded model on whichever backend is active. */
function buildModel(arch: Arch, weights: Weights): LanguageModel {
  const model = createModel(tinyConfig(arch, VOCAB, SEQ, D_MODEL), makeRng(MODEL_SEED));
  if (weights === 'perturbed') perturbParams(model, NOISE_SEED);
  return model;
}

interface LossAndGrads {
  /** The model's parameter names, in creation order. */
  params: string[];
  loss: number;
  /** Gradient by parameter name; a parameter without a gradient is absent. */
  grads: Map<string, Float32Array>;
}

/** Mean cross-entropy of `model` on `batch` and its gradient for every parameter, copied to the host; frees every tensor it makes. */
function lossAndGrads(model: LanguageModel, batch: Batch): LossAndGrads {
  const result: LossAndGrads = { params: [...model.params.keys()], loss: NaN, grads: new Map() };
  const nameOf = new Map([...model.params].map(([name, v]) => [v.name, name]));
  tf.tidy(() => {
    const tokens = tf.tensor2d(batch.tokens, [BATCH, SEQ], 'int32');
    const positions = tf.tensor1d(batch.positions, 'int32');
    const targets = tf.tensor1d(batch.targets, 'int32');
    const { value, grads } = tf.variableGrads(
      () => tf.mean(crossEntropy(model.answerLogits(tokens, positions), targets)) as tf.Scalar,
      [...model.params.values()],
    );
    result.loss = value.dataSync()[0];
    for (const [varName, g] of Object.entries(grads)) {
      result.grads.set(nameOf.get(varName) ?? varName, (g.dataSync() as Float32Array).slice());
    }
  });
  return result;
}

/** Loss and gradients on TF.js' own cpu kernels with the stock matmul gradient. */
async function reference(arch: Arch, weights: Weights, batch: Batch): Promise<LossAndGrads> {
  await tf.setBackend('cpu');
  const ours = tf.getKernelsForBackend('cpu').filter((k) => 'grokpipe' in k);
  expect(
    ours.map((k) => k.kernelName),
    'grokpipe kernels registered for cpu',
  ).toEqual([]);
  useExplicitTransposeGradient(false);
  useFusedLayers(false);
  useFusedLinear(false);
  const model = buildModel(arch, weights);
  try {
    return lossAndGrads(model, batch);
  } finally {
    model.dispose();
    useFusedLayers(true); // the module's defaults
    useFusedLinear(true);
  }
}

/** Loss and gradients on the training path; asserts that it leaks no tensor and no wasm buffer. */
async function optimised(backend: BackendName, arch: Arch, weights: Weights, batch: Batch): Promise<LossAndGrads> {
  await initBackend(backend);
  const count = () => ({ tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() });
  const before = count();
  const model = buildModel(arch, weights);
  let withModel: ReturnType<typeof count>;
  let afterGrads: ReturnType<typeof count>;
  let result: LossAndGrads;
  try {
    withModel = count();
    result = lossAndGrads(model, batch);
    afterGrads = count();
  } finally {
    model.dispose();
  }
  expect(afterGrads, 'tensors and buffers after loss + gradients').toEqual(withModel);
  expect(count(), 'tensors and buffers after disposing the model').toEqual(before);
  return result;
}

const native = loadNativeBlas();
const OPTIMISED: BackendName[] = 'error' in native ? ['wasm'] : ['wasm-blas', 'wasm'];

it('the native BLAS path is tested where CI requires it', () => {
  if (process.env.GROKPIPE_REQUIRE_NATIVE) expect('error' in native ? native.error : 'loaded').toBe('loaded');
  else if ('error' in native) console.log(`wasm-blas not checked: ${native.error}`);
});

describe.each(ARCHS)('%s: optimised training path equals the cpu reference', (arch) => {
  it.each(OPTIMISED.flatMap((b) => (['initial', 'perturbed'] as Weights[]).map((w) => [b, w] as const)))(
    '%s: loss and every gradient to 1e-4, %s weights',
    async (backend, weights) => {
      const batch = randomBatch(DATA_SEED);
      const ref = await reference(arch, weights, batch);
      const opt = await optimised(backend, arch, weights, batch);

      expect(Number.isFinite(ref.loss), `reference loss ${ref.loss}`).toBe(true);
      expect(
        Math.abs(opt.loss - ref.loss) / Math.abs(ref.loss),
        `loss: optimised ${opt.loss}, reference ${ref.loss}`,
      ).toBeLessThanOrEqual(TOL);

      const names = ref.params;
      expect(opt.params, 'parameter names').toEqual(names);
      expect([...ref.grads.keys()].sort(), 'parameters with a reference gradient').toEqual([...names].sort());
      expect([...opt.grads.keys()].sort(), 'parameters with an optimised gradient').toEqual([...names].sort());

      const nonZero = names.filter((name) => ref.grads.get(name)?.some((x) => x !== 0));
      if (weights === 'perturbed') expect(nonZero, 'parameters with a non-zero reference gradient').toEqual(names);
      else expect(nonZero.length, 'parameters with a non-zero reference gradient').toBeGreaterThan(0);

      for (const name of names) {
        const g = ref.grads.get(name) as Float32Array;
        const err = relL2Error(opt.grads.get(name) as Float32Array, g);
        expect(err, `${name} [${g.length}]: ‖g_opt − g_ref‖ / ‖g_ref‖`).toBeLessThanOrEqual(TOL);
      }
    },
  );
});

/**
 * The update before flat chunks, one op chain per parameter: the reference of `AdamW`'s flat one,
 * which must give the same parameters and moments bit for bit (same float32 operations, in the
 * same order, element by element).
 */
class PerParameterAdamW {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly params: ReadonlyMap<string, tf.Variable>,
    readonly config: AdamWConfig,
    readonly decays: (name: string) => boolean,
  ) {
    tf.tidy(() => {
      for (const [name, p] of params) {
        this.m.set(name, tf.variable(tf.zerosLike(p), false));
        this.v.set(name, tf.variable(tf.zerosLike(p), false));
      }
    });
  }

  apply(grads: ReadonlyMap<string, tf.Tensor>): tf.Scalar {
    const t = ++this.step;
    const { beta1, beta2, eps, weight_decay: wd, grad_clip: clip } = this.config;
    const lr = learningRate(this.config, t);
    return tf.tidy(() => {
      const total = globalNorm([...this.params.keys()].map((n) => grads.get(n) as tf.Tensor));
      const c = (x: number) => tf.scalar(x);
      const coef = clip > 0 ? tf.minimum(tf.div(c(clip), tf.add(total, c(1e-6))), c(1)) : null;
      const [b1, b1c, b2, b2c, eps_] = [beta1, 1 - beta1, beta2, 1 - beta2, eps].map(c);
      const [decay, invBc2Sqrt, stepSize] = [1 - lr * wd, 1 / Math.sqrt(1 - beta2 ** t), lr / (1 - beta1 ** t)].map(c);
      for (const [n, p] of this.params) {
        tf.tidy(() => {
          const [m, v, g0] = [this.m.get(n), this.v.get(n), grads.get(n)] as [tf.Variable, tf.Variable, tf.Tensor];
          const g = coef ? tf.mul(g0, coef) : g0;
          const mNew = tf.add(tf.mul(m, b1), tf.mul(g, b1c));
          const vNew = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), b2c));
          const decayed = wd > 0 && this.decays(n) ? tf.mul(p, decay) : p;
          const denom = tf.add(tf.mul(tf.sqrt(vNew), invBc2Sqrt), eps_);
          p.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), stepSize)));
          m.assign(mNew);
          v.assign(vNew);
        });
      }
      return total;
    });
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
  }
}

/** Index of the first element whose bits differ, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  if (x.length !== y.length) return 0;
  return x.findIndex((bits, i) => bits !== y[i]);
}

const ADAMW: AdamWConfig = {
  lr: 1e-3,
  weight_decay: 0.1,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-8,
  warmup_steps: 3,
  grad_clip: 1,
};

/**
 * Flat AdamW against the per-parameter update, bit for bit: parameters, both moments and the
 * gradient norm after each of 6 updates of seeded random gradients, alternately large (clipped:
 * norm ≫ 1) and small (unclipped), through the warmup; in one chunk (the default size holds each
 * tiny model) and in chunks of at most 1,000 elements (parameters packed several to a chunk and
 * parameters alone, chunks that decay all, none or some of theirs); with clipping and decay, and
 * with neither. On the training backends and TF.js' cpu backend.
 */
describe.each(ARCHS)('%s: flat AdamW equals the per-parameter update bit for bit', (arch) => {
  const backends: BackendName[] = [...OPTIMISED, 'cpu'];
  const cases = backends.flatMap((b) =>
    [CHUNK_ELEMENTS, 1000].flatMap((chunk) => [
      [b, chunk, ADAMW] as const,
      [b, chunk, { ...ADAMW, weight_decay: 0, grad_clip: 0 }] as const,
    ]),
  );
  it.each(cases)('%s, chunks of %i elements, %o', async (backend, chunk, config) => {
    if (backend === 'cpu') await tf.setBackend('cpu');
    else await initBackend(backend);
    const flat = buildModel(arch, 'perturbed');
    const ref = buildModel(arch, 'perturbed');
    const opt = new AdamW(flat.params, config, (n) => flat.decays(n), chunk);
    const refOpt = new PerParameterAdamW(ref.params, config, (n) => ref.decays(n));
    const decayed = [...flat.params.keys()].filter((n) => flat.decays(n)).length;
    expect(decayed, 'parameters that decay').toBeGreaterThan(0);
    expect(decayed, 'parameters that decay').toBeLessThan(flat.params.size);
    try {
      for (let step = 1; step <= 6; step++) {
        const scale = step % 2 === 1 ? 1 : 1e-4;
        const grads = new Map([...flat.params].map(([n, p], i) => [n, randn(p.shape, 100 * step + i, scale)]));
        const [norm, refNorm] = [opt.apply(grads), refOpt.apply(grads)];
        expect(norm.dataSync()[0], `norm at step ${step}`).toBe(refNorm.dataSync()[0]);
        if (config.grad_clip > 0) expect(norm.dataSync()[0] > 1, 'clipped').toBe(step % 2 === 1);
        tf.dispose([norm, refNorm, ...grads.values()]);
        for (const [n, p] of flat.params) {
          const want = ref.params.get(n) as tf.Variable;
          const at = `${n} at step ${step}`;
          expect(firstBitDifference(p.dataSync() as Float32Array, want.dataSync() as Float32Array), at).toBe(-1);
          for (const which of ['m', 'v'] as const) {
            const refMoment = refOpt[which].get(n)?.dataSync() as Float32Array;
            expect(firstBitDifference(await opt.readMoment(which, n), refMoment), `${which} of ${at}`).toBe(-1);
          }
        }
      }
      // The parameters moved (a comparison of two frozen models would pass vacuously).
      const start = buildModel(arch, 'perturbed');
      const moved = [...flat.params].filter(
        ([n, p]) =>
          firstBitDifference(p.dataSync() as Float32Array, start.params.get(n)?.dataSync() as Float32Array) >= 0,
      );
      start.dispose();
      expect(moved.length, 'parameters changed by the updates').toBe(flat.params.size);
    } finally {
      opt.dispose();
      refOpt.dispose();
      flat.dispose();
      ref.dispose();
    }
  });
});

/**
 * `linear` as one tape node (`fusedLinear`) against its op chain on the same backend, bit for
 * bit: the loss and every gradient of GPT-2 (the architecture whose affine maps have biases), at
 * its initialisation and perturbed, on the training backends and TF.js' cpu backend (there with
 * TF.js' products with transpose flags, the other matmul policy).
 */
describe('gpt2: fused linear equals the op chain bit for bit', () => {
  const backends: BackendName[] = [...OPTIMISED, 'cpu'];
  it.each(backends.flatMap((b) => (['initial', 'perturbed'] as Weights[]).map((w) => [b, w] as const)))(
    '%s, %s weights',
    async (backend, weights) => {
      if (backend === 'cpu') {
        await tf.setBackend('cpu');
        useExplicitTransposeGradient(false);
      } else await initBackend(backend);
      const batch = randomBatch(DATA_SEED);
      const run = (fusedLinear: boolean) => {
        useFusedLinear(fusedLinear);
        const model = buildModel('gpt2', weights);
        try {
          return lossAndGrads(model, batch);
        } finally {
          model.dispose();
          useFusedLinear(true);
        }
      };
      const [fused, chain] = [run(true), run(false)];
      expect(fused.loss, 'loss').toBe(chain.loss);
      expect([...fused.grads.keys()], 'parameters with a gradient').toEqual(chain.params);
      for (const name of chain.params) {
        const g = chain.grads.get(name) as Float32Array;
        expect(g.some((x) => x !== 0) || weights === 'initial', `${name}: non-zero gradient`).toBe(true);
        expect(firstBitDifference(fused.grads.get(name) as Float32Array, g), name).toBe(-1);
      }
    },
  );
});

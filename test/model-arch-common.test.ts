/**
 * What every architecture must hold, on the wasm backend (issue 3): causality, `answerLogits`
 * equal to `logits` at the answer positions, finite non-zero gradients of every parameter after
 * one step (and equal to central differences), a tiny data set learned to 100 %, identical logits
 * after a safetensors round trip, the shared parameter count, and weight decay as the original.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from '../src/models/adamw.js';
import { initBackend } from '../src/models/backend.js';
import { countModel } from '../src/models/arch/registry.js';
import { CONFIG_METADATA_KEY, modelFromSafetensors, modelToSafetensors } from '../src/models/weights.js';
import { createModel } from '../src/models/arch/factories.js';
import type { Arch } from '../src/models/arch/registry.js';
import type { LanguageModel } from '../src/models/model.js';
import type { LlamaConfig } from '../src/models/arch/llama.js';
import type { MambaConfig } from '../src/models/arch/mamba.js';
import { makeRng } from '../src/models/train-rng.js';
import { decodeSafetensors } from '../src/models/safetensors.js';
import { crossEntropy } from '../src/models/train/loss.js';
import { trainModel } from '../src/models/train/trainer.js';
import { ARCHS, maxRelDiff, randomTokens, tinyConfig, tinyFacts } from './model-arch-helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Mean cross-entropy at `positions` of a fixed random batch. */
function batchLoss(model: LanguageModel, seed: number): () => tf.Scalar {
  const V = model.config.vocab_size;
  const toks = tf.tensor2d(randomTokens(6, 5, V, seed), [6, 5], 'int32');
  const pos = tf.tensor1d([4, 1, 4, 2, 0, 3], 'int32');
  const tgt = tf.tensor1d(randomTokens(1, 6, V, seed + 1), 'int32');
  return () => tf.mean(crossEntropy(model.answerLogits(toks, pos), tgt)) as tf.Scalar;
}

/** Gradients of `loss` by parameter name (host arrays). */
function gradients(model: LanguageModel, loss: () => tf.Scalar): Map<string, Float32Array> {
  const { value, grads } = tf.variableGrads(loss, [...model.params.values()]);
  const out = new Map([...model.params].map(([name, v]) => [name, grads[v.name].dataSync() as Float32Array]));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

/** Applies `steps` AdamW updates on `loss` (no warmup). @returns the optimizer, to dispose. */
function train(model: LanguageModel, loss: () => tf.Scalar, steps: number, lr: number): AdamW {
  const opt = new AdamW(
    model.params,
    { lr, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 0, grad_clip: 1 },
    (n) => model.decays(n),
  );
  for (let step = 0; step < steps; step++) {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(loss, [...model.params.values()]);
      opt.apply(new Map([...model.params].map(([name, v]) => [name, grads[v.name]]))).dispose();
    });
  }
  return opt;
}

/** Parameters that never decay, by architecture (everything else of rank ≥ 2 does). */
const NO_DECAY: Record<Arch, RegExp> = {
  gpt2: /\.bias$|ln_/,
  llama: /norm/,
  rwkv: /\.ln\d|ln0|ln_out|time_/,
  mamba: /norm|\.bias$|A_log|\.D$/,
};

describe.each(ARCHS)('%s', (arch) => {
  const config = tinyConfig(arch);
  let model: LanguageModel;
  beforeAll(() => {
    model = createModel(config, makeRng(5));
  });

  it('is causal: logits at position t do not depend on later tokens', () => {
    const a = randomTokens(3, 5, 23, 1);
    const b = a.slice();
    for (let i = 0; i < 3; i++) b[i * 5 + 3] = (b[i * 5 + 3] + 1) % 23; // change position 3
    const [la, lb] = [a, b].map((t) => tf.tidy(() => model.logits(tf.tensor2d(t, [3, 5], 'int32')).arraySync()));
    for (let i = 0; i < 3; i++) {
      for (let t = 0; t < 3; t++) expect(lb[i][t], `example ${i}, position ${t}`).toEqual(la[i][t]);
      expect(lb[i][3]).not.toEqual(la[i][3]);
    }
  });

  it('answerLogits equals logits at the answer positions', () => {
    const toks = randomTokens(6, 5, 23, 2);
    const pos = [4, 1, 0, 3, 2, 4];
    const [full, ans] = tf.tidy(() => {
      const t = tf.tensor2d(toks, [6, 5], 'int32');
      return [model.logits(t).arraySync(), model.answerLogits(t, tf.tensor1d(pos, 'int32')).arraySync()];
    });
    pos.forEach((p, i) => expect(maxRelDiff(ans[i], full[i][p])).toBeLessThan(1e-5));
  });

  // RWKV's original initialisation zeroes att.key/receptance/output and ffn.receptance/value: a
  // zero weight's own gradient is zero until the weight after it has moved, and the time_mix
  // vector in front of it gets a gradient only once it is non-zero, so RWKV needs three updates.
  const steps = arch === 'rwkv' ? 3 : 1;
  it(`has finite, non-zero gradients for every parameter after ${steps === 1 ? 'one step' : `${steps} steps`}`, () => {
    const m = createModel(config, makeRng(6));
    const loss = batchLoss(m, 3);
    const opt = train(m, loss, steps, 1e-3);
    for (const [name, g] of gradients(m, loss)) {
      expect(g.every(Number.isFinite), `${name} finite`).toBe(true);
      expect(
        g.some((x) => x !== 0),
        `${name} non-zero`,
      ).toBe(true);
    }
    opt.dispose();
    m.dispose();
  });

  it('has gradients that match central differences (directional, along sign(gradient))', () => {
    const m = createModel(config, makeRng(7));
    const loss = batchLoss(m, 4);
    train(m, loss, 3, 2e-2).dispose(); // no zero-initialised weights left
    // Mamba's initial Δ ≤ 0.1 barely drives the scan: Δ ≈ 0.7 gives A_log, dt_proj and B/C gradients weight.
    for (const [name, v] of m.params) if (name.endsWith('dt_proj.bias')) v.assign(tf.zerosLike(v));
    const grads = gradients(m, loss);
    const base = tf.tidy(() => loss().dataSync()[0]);
    for (const [name, v] of m.params) {
      // Along d = sign(g), the derivative is Σ|g|: every coordinate's gradient contributes to one
      // float32 difference, well above its rounding noise (~1e-7 · loss / h).
      const g = grads.get(name) as Float32Array;
      const dir = g.map(Math.sign);
      const analytic = g.reduce((a, x) => a + Math.abs(x), 0);
      const orig = (v.dataSync() as Float32Array).slice();
      const rms = Math.sqrt(orig.reduce((a, x) => a + x * x, 0) / orig.length);
      const h = rms > 0 ? Math.min(1e-2, 0.02 * rms) : 1e-2; // RWKV's embedding is ~1e-4
      const at = (delta: number) => {
        v.assign(
          tf.tensor(
            orig.map((x, i) => x + delta * dir[i]),
            v.shape,
          ),
        );
        return tf.tidy(() => loss().dataSync()[0]);
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(orig, v.shape));
      expect(Math.abs(analytic - numeric), `${name}: analytic ${analytic}, numeric ${numeric} (h ${h})`).toBeLessThan(
        2e-2 * analytic + (2e-6 * base) / h,
      );
    }
    m.dispose();
  });

  it('learns 50 facts to 100 % training accuracy', async () => {
    const train = tinyFacts(50, 1);
    const r = await trainModel(
      {
        model: tinyConfig(arch, 24, 3, 32),
        optimizer: { lr: 1e-2, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 5, grad_clip: 1 },
        batchSize: 50,
        maxSteps: 100,
        evalEvery: 50,
        evalSize: 50,
        seed: 3,
        checkpointEvery: 0,
      },
      train,
      new Map([['train_inferred', train]]),
    );
    expect(r.curve.filter((x) => x.type === 'train_inferred').at(-1)?.accuracy).toBe(1);
    r.model.dispose();
  });

  it('gives identical logits after a safetensors round trip', async () => {
    const bytes = await modelToSafetensors(model);
    expect(JSON.parse(decodeSafetensors(bytes).metadata[CONFIG_METADATA_KEY])).toEqual(config);
    const loaded = modelFromSafetensors(bytes);
    expect([...loaded.params.keys()]).toEqual([...model.params.keys()]);
    const tokens = tf.tensor2d(randomTokens(3, 5, 23, 7), [3, 5], 'int32');
    const a = tf.tidy(() => Array.from(model.logits(tokens).dataSync()));
    const b = tf.tidy(() => Array.from(loaded.logits(tokens).dataSync()));
    expect(b).toEqual(a);
    loaded.dispose();
    tokens.dispose();
  });

  it('is counted the same way as its parameters', () => {
    const count = countModel(config);
    expect(count.parameters).toBe([...model.params.values()].reduce((n, p) => n + p.size, 0));
    expect(count.flops_per_token).toBeGreaterThan(2 * (count.parameters - count.embedding_parameters));
  });

  it('decays weight matrices and embeddings only, as the original', () => {
    for (const name of model.params.keys()) expect(model.decays(name), name).toBe(!NO_DECAY[arch].test(name));
  });
});

describe('parameter names', () => {
  it('follow the reference checkpoints', () => {
    const names = (arch: Arch) => [...createModel(tinyConfig(arch), makeRng(0)).params.keys()];
    expect(names('llama')).toEqual(
      expect.arrayContaining([
        'model.embed_tokens.weight',
        'model.layers.1.self_attn.q_proj.weight',
        'model.layers.0.mlp.gate_proj.weight',
        'model.norm.weight',
        'lm_head.weight',
      ]),
    );
    expect(names('rwkv')).toEqual(
      expect.arrayContaining([
        'emb.weight',
        'blocks.0.ln0.weight',
        'blocks.1.att.time_decay',
        'blocks.1.att.time_first',
        'blocks.0.ffn.key.weight',
        'ln_out.bias',
        'head.weight',
      ]),
    );
    expect(names('mamba')).toEqual(
      expect.arrayContaining([
        'backbone.embedding.weight',
        'backbone.layers.1.mixer.A_log',
        'backbone.layers.0.mixer.conv1d.weight',
        'backbone.norm_f.weight',
      ]),
    );
    expect(names('mamba')).not.toContain('lm_head.weight'); // tied by default
    const untied = createModel({ ...(tinyConfig('mamba') as MambaConfig), tie_embeddings: false }, makeRng(0));
    expect(untied.params.get('lm_head.weight')?.shape).toEqual([23, 16]);
    const tied = createModel({ ...(tinyConfig('llama') as LlamaConfig), tie_embeddings: true }, makeRng(0));
    expect(tied.params.has('lm_head.weight')).toBe(false);
    expect(countModel(tied.config).parameters).toBe([...tied.params.values()].reduce((n, p) => n + p.size, 0));
  });
});

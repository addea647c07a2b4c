/**
 * The layer kit on the cpu backend: the custom matmul gradient against TF's formulas and finite
 * differences, the hand-registered gradients through a whole GPT-2, causality, parameter names.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { registerGradients } from '../src/models/gradients.js';
import { matMul } from '../src/models/layers.js';
import type { LanguageModel } from '../src/models/model.js';
import type { ModelConfig } from '../src/models/arch/registry.js';
import { createModel } from '../src/models/arch/factories.js';
import { makeRng } from '../src/models/train-rng.js';
import { crossEntropy } from '../src/models/train/loss.js';
import { maxRelDiff, randn, randomTokens } from './model-arch-helpers.js';

const tiny: ModelConfig = { arch: 'gpt2', n_layers: 2, d_model: 16, n_heads: 4, d_mlp: 32, vocab_size: 23, seq_len: 5 };

beforeAll(async () => {
  await initBackend('cpu');
});

describe('matMul with explicit-transpose gradient', () => {
  it.each([
    ['2-D', [7, 5], [5, 3]],
    ['batched 3-D', [4, 6, 5], [4, 5, 3]],
  ])('equals tf.matMul and its stock gradient on cpu (%s)', (_name, sa, sb) => {
    registerGradients();
    const a = randn(sa, 1);
    const b = randn(sb, 2);
    const w = randn([...sa.slice(0, -1), sb[sb.length - 1]], 3); // weights a scalar loss
    const loss = (f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(f(x, y), w));
    const ours = tf.grads(loss((x, y) => matMul(x as tf.Tensor2D, y as tf.Tensor2D)))([a, b]);
    const stock = tf.grads(loss((x, y) => tf.matMul(x, y)))([a, b]);
    expect(maxRelDiff(matMul(a as tf.Tensor2D, b as tf.Tensor2D).dataSync(), tf.matMul(a, b).dataSync())).toBe(0);
    for (let i = 0; i < 2; i++) expect(maxRelDiff(ours[i].dataSync(), stock[i].dataSync())).toBeLessThan(1e-4);
    // And both are the true derivative: d/da sum(w ⊙ ab) = w bᵀ, checked by central differences.
    const av = Float32Array.from(a.dataSync());
    const f = (vals: Float32Array) => tf.tidy(() => loss(tf.matMul)(tf.tensor(vals, sa), b).dataSync()[0]);
    const h = 1e-2;
    const numeric = av.map((_, i) => {
      const p = av.slice();
      const m = av.slice();
      p[i] += h;
      m[i] -= h;
      return (f(p) - f(m)) / (2 * h);
    });
    expect(maxRelDiff(ours[0].dataSync(), numeric)).toBeLessThan(1e-2);
  });
});

describe('GPT-2', () => {
  let model: LanguageModel;
  beforeAll(() => {
    model = createModel(tiny, makeRng(0));
  });

  it('names its parameters as Hugging Face GPT-2 and decays only matrices', () => {
    const names = [...model.params.keys()];
    expect(names.slice(0, 2)).toEqual(['transformer.wte.weight', 'transformer.wpe.weight']);
    expect(names).toContain('transformer.h.1.attn.c_attn.weight');
    expect(model.params.get('transformer.h.0.attn.c_attn.weight')?.shape).toEqual([16, 48]);
    expect(model.params.get('transformer.h.0.mlp.c_proj.weight')?.shape).toEqual([32, 16]);
    expect(names.at(-1)).toBe('transformer.ln_f.bias');
    const decayed = names.filter((n) => model.decays(n));
    expect(decayed.every((n) => n.endsWith('.weight') && !n.includes('ln_'))).toBe(true);
    expect(names.filter((n) => !model.decays(n)).every((n) => n.endsWith('.bias') || n.includes('ln_'))).toBe(true);
  });

  it('is causal: logits at position t do not depend on later tokens', () => {
    const a = randomTokens(3, 5, tiny.vocab_size, 1);
    const b = a.slice();
    for (let i = 0; i < 3; i++) b[i * 5 + 3] = (b[i * 5 + 3] + 1) % tiny.vocab_size; // change position 3
    const [la, lb] = [a, b].map((t) => tf.tidy(() => model.logits(tf.tensor2d(t, [3, 5], 'int32')).arraySync()));
    for (let i = 0; i < 3; i++) {
      for (let t = 0; t < 3; t++) expect(lb[i][t]).toEqual(la[i][t]);
      expect(lb[i][3]).not.toEqual(la[i][3]);
    }
  });

  it('answerLogits equals logits at the answer positions', () => {
    const toks = randomTokens(6, 5, tiny.vocab_size, 2);
    const pos = [4, 1, 0, 3, 2, 4];
    const [full, ans] = tf.tidy(() => {
      const t = tf.tensor2d(toks, [6, 5], 'int32');
      return [model.logits(t).arraySync(), model.answerLogits(t, tf.tensor1d(pos, 'int32')).arraySync()];
    });
    pos.forEach((p, i) => expect(maxRelDiff(ans[i], full[i][p])).toBeLessThan(1e-5));
  });

  it('has gradients that match central differences through the whole model', () => {
    const toks = tf.tensor2d(randomTokens(4, 5, tiny.vocab_size, 3), [4, 5], 'int32');
    const pos = tf.tensor1d([4, 1, 4, 2], 'int32');
    const tgt = tf.tensor1d([1, 2, 3, 4], 'int32');
    const lossOf = () => tf.mean(crossEntropy(model.answerLogits(toks, pos), tgt)) as tf.Scalar;
    const { grads } = tf.variableGrads(lossOf, [...model.params.values()]);
    const h = 1e-2;
    // A few coordinates of parameters of every kind (embeddings, attention, MLP, norms, biases).
    const probes: [string, number][] = [
      ['transformer.wte.weight', 16 * 2 + 3],
      ['transformer.wpe.weight', 16 * 1 + 5],
      ['transformer.h.0.ln_1.weight', 7],
      ['transformer.h.0.attn.c_attn.weight', 48 * 3 + 20],
      ['transformer.h.0.attn.c_attn.bias', 40],
      ['transformer.h.1.attn.c_proj.weight', 16 * 4 + 9],
      ['transformer.h.1.mlp.c_fc.weight', 32 * 5 + 11],
      ['transformer.h.1.mlp.c_proj.bias', 3],
      ['transformer.ln_f.bias', 2],
    ];
    for (const [name, index] of probes) {
      const v = model.params.get(name) as tf.Variable;
      const g = grads[v.name].dataSync()[index];
      const orig = v.dataSync().slice();
      const at = (delta: number) => {
        const vals = orig.slice();
        vals[index] += delta;
        v.assign(tf.tensor(vals, v.shape));
        return tf.tidy(() => lossOf().dataSync()[0]);
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(orig, v.shape));
      expect(Math.abs(g - numeric), `${name}[${index}]: analytic ${g}, numeric ${numeric}`).toBeLessThan(
        2e-3 + 2e-2 * Math.abs(numeric),
      );
    }
    tf.dispose(Object.values(grads));
  });
});

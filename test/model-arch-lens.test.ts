/**
 * Model introspection for the logit lens (`residualStream`, `decode`; docs/design.md §5), on every
 * architecture: the last entry decoded equals `answerLogits`, and entry k decoded equals the
 * answer logits of the same network cut after its first k blocks (its parameters copied by
 * name), so that every layer of the stream, the embedding included, is the one the probe means.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { createModel } from '../src/models/arch/factories.js';
import type { LanguageModel } from '../src/models/model.js';
import { makeRng } from '../src/models/train-rng.js';
import { ARCHS, maxRelDiff, perturbParams, randomTokens, tinyConfig } from './model-arch-helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const BATCH = 6;
const SEQ = 5;
const POSITIONS = [4, 1, 4, 2, 0, 3];

/** `decode` of each entry of the residual stream, and `answerLogits`, on a fixed random batch. */
function lens(model: LanguageModel): { layers: number[][][]; answer: number[][]; shapes: number[][] } {
  return tf.tidy(() => {
    const toks = tf.tensor2d(randomTokens(BATCH, SEQ, model.config.vocab_size, 7), [BATCH, SEQ], 'int32');
    const pos = tf.tensor1d(POSITIONS, 'int32');
    const stream = model.residualStream(toks, pos);
    return {
      layers: stream.map((h) => model.decode(h).arraySync()),
      answer: model.answerLogits(toks, pos).arraySync(),
      shapes: stream.map((h) => h.shape),
    };
  });
}

describe.each(ARCHS)('%s: residualStream and decode', (arch) => {
  it('has n_layers + 1 entries [batch, d_model], the last decoded equal to answerLogits', () => {
    const config = tinyConfig(arch);
    const model = createModel(config, makeRng(1));
    perturbParams(model, 2);
    const { layers, answer, shapes } = lens(model);
    model.dispose();
    expect(shapes).toEqual(Array.from({ length: config.n_layers + 1 }, () => [BATCH, config.d_model]));
    expect(maxRelDiff(layers[config.n_layers].flat(), answer.flat())).toBeLessThan(1e-5);
    // The embedding is not the last layer: the lens must see something different there.
    expect(maxRelDiff(layers[0].flat(), answer.flat())).toBeGreaterThan(1e-2);
  });

  it('entry k decoded equals the answer logits of the network cut after k blocks', () => {
    const config = { ...tinyConfig(arch), n_layers: 3 };
    const full = createModel(config, makeRng(3));
    perturbParams(full, 4);
    const { layers } = lens(full);
    for (let k = 1; k < config.n_layers; k++) {
      const cut = createModel({ ...config, n_layers: k }, makeRng(5));
      tf.tidy(() => {
        for (const [name, p] of cut.params) p.assign(full.params.get(name)!);
      });
      const { answer } = lens(cut);
      cut.dispose();
      expect(maxRelDiff(layers[k].flat(), answer.flat()), `layer ${k}`).toBeLessThan(1e-5);
    }
    full.dispose();
  });
});

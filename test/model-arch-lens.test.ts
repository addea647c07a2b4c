/**
 * Model introspection for the logit lens (`residualStream`, `decode`; docs/design.md §5), on every
 * architecture: the last entry decoded equals `answerLogits`, and entry k decoded equals the
 * answer logits of the same network cut after its first k blocks (its parameters copied by
 * name), so that every layer of the stream, the embedding included, is the one the probe means;
 * and `logitLens` (`models/lens.ts`) leaks no tensor and scores the top layer as the model does.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { createModel } from '../src/models/arch/factories.js';
import type { LanguageModel } from '../src/models/model.js';
import { logitLens } from '../src/models/lens.js';
import { makeRng } from '../src/models/train-rng.js';
import { ARCHS, maxRelDiff, perturbParams, randomTokens, tinyConfig, tinyFacts } from './model-arch-helpers.js';

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

  it('logitLens reads every layer in batches, frees what it allocates, and its top layer is the model', async () => {
    const config = tinyConfig(arch, 24, 3);
    const model = createModel(config, makeRng(6));
    perturbParams(model, 7);
    const data = tinyFacts(20, 8);
    const before = tf.memory().numTensors;
    const readings = await logitLens(model, data, 6);
    expect(tf.memory().numTensors).toBe(before);
    expect(readings.map((r) => [r.layer, r.n])).toEqual([
      [0, 20],
      [1, 20],
      [2, 20],
    ]);
    const [top, correct] = tf.tidy(() => {
      const logits = model.answerLogits(
        tf.tensor2d(data.tokens, [20, 3], 'int32'),
        tf.tensor1d(data.positions, 'int32'),
      );
      const hits = tf.equal(tf.argMax(logits, -1), tf.tensor1d(data.targets, 'int32'));
      return [logits.arraySync(), tf.sum(tf.cast(hits, 'float32')).arraySync() as number];
    });
    model.dispose();
    expect(readings[2].accuracy).toBe(correct / 20);
    // rank: how many logits exceed the target's, averaged
    const ranks = top.map((row, i) => row.filter((v) => v > row[data.targets[i]]).length);
    expect(readings[2].rank).toBeCloseTo(ranks.reduce((a, b) => a + b, 0) / 20, 10);
  });
});

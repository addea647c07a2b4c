/**
 * The logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens"): the residual stream
 * at the answer position, after the embedding and after each block (`LanguageModel.residualStream`),
 * decoded through the final norm and the unembedding (`LanguageModel.decode`) as if the network
 * ended there. Wang et al. 2024 (§4–5) read this task's grokked circuits with it. Per layer: how
 * often the early decoding's argmax is the target, its cross-entropy, and the target's rank.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LanguageModel } from './model.js';
import { batchTensors } from './train/examples.js';
import type { Examples } from './train/examples.js';
import { crossEntropy } from './train/loss.js';

/** What the lens reads at one layer, over a set of examples. */
export interface LayerReading {
  /** 0 = the embedding, k = after block k (`n_layers` = the model's own output). */
  layer: number;
  /** Examples read. */
  n: number;
  /** Fraction whose decoded argmax is the target (NaN when `n` is 0). */
  accuracy: number;
  /** Mean cross-entropy of the target (nats). */
  loss: number;
  /** Mean rank of the target among the vocabulary: tokens with a strictly higher logit (0 = argmax). */
  rank: number;
}

/**
 * Per layer and example of one batch: `[3, n_layers + 1, batch]` = 1 where the decoded argmax is
 * the target (else 0), the target's cross-entropy (nats) and its rank. Call inside `tf.tidy`.
 */
function batchReadings(model: LanguageModel, data: Examples, indices: number[]): tf.Tensor3D {
  const b = batchTensors(data, indices);
  const stream = model.residualStream(b.tokens, b.positions);
  const layers = stream.length;
  const logits = model.decode(tf.concat(stream, 0)); // [layers · batch, vocab], layer-major
  const targets = tf.tile(b.targets, [layers]) as tf.Tensor1D;
  const targetLogit = tf.sum(tf.mul(logits, tf.oneHot(targets, logits.shape[1])), -1, true);
  const perExample = [
    tf.cast(tf.equal(tf.argMax(logits, -1), targets), 'float32'),
    crossEntropy(logits, targets),
    tf.sum(tf.cast(tf.greater(logits, targetLogit), 'float32'), -1),
  ];
  return tf.reshape(tf.stack(perExample), [3, layers, indices.length]);
}

/**
 * The logit lens of `model` on every example of `data`, in batches of `batchSize`.
 * @returns one reading per layer, `n_layers + 1` of them, layer 0 (the embedding) first.
 */
export async function logitLens(model: LanguageModel, data: Examples, batchSize = 1024): Promise<LayerReading[]> {
  const layers = model.config.n_layers + 1;
  // summed on the host in float64, example by example (no float32 sum over a batch)
  const sums = new Float64Array(3 * layers);
  for (let start = 0; start < data.n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, data.n - start) }, (_, i) => start + i);
    const t = tf.tidy(() => batchReadings(model, data, idx));
    const values = await t.data();
    t.dispose();
    values.forEach((v, i) => (sums[Math.floor(i / idx.length)] += v));
  }
  const n = data.n;
  return Array.from({ length: layers }, (_, layer) => ({
    layer,
    n,
    accuracy: sums[layer] / n,
    loss: sums[layers + layer] / n,
    rank: sums[2 * layers + layer] / n,
  }));
}

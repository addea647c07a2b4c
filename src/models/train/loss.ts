/**
 * The training objective and its gradient: cross-entropy of the target at the answer position
 * only, averaged over a batch, whose gradient may be accumulated over micro-batches (a memory
 * knob: the sum equals the full batch's up to float rounding).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LanguageModel } from '../model.js';
import { batchTensors } from './examples.js';
import type { Examples } from './examples.js';

/** Per-example cross-entropy `-log softmax(logits)[target]`. @param logits `[b, vocab]` → `[b]` */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.oneHot(targets, logits.shape[1]), logp), -1)) as tf.Tensor1D;
}

/** Gradient, loss and accuracy of (a share of) a training batch. */
export interface BatchGradients {
  /** Gradient of the loss by parameter name (`LanguageModel.params` keys), shaped like the parameters. */
  grads: Map<string, tf.Tensor>;
  /** Mean cross-entropy (nats), scalar. */
  loss: tf.Scalar;
  /** Fraction of answers whose argmax is the target, scalar. */
  accuracy: tf.Scalar;
}

/**
 * One forward/backward pass over the rows `indices` of `data`: the gradient of the mean loss and
 * the mean loss and accuracy, each times `weight` (the pass's share of its batch,
 * `indices.length / batchSize`), so that the passes of a batch sum to the batch's.
 * The activations are freed on return; the caller disposes the result's tensors (`accuracy` is
 * `tf.keep`'d, so an enclosing tidy does not free it).
 */
function weightedPass(model: LanguageModel, data: Examples, indices: Int32Array, weight: number): BatchGradients {
  // weight 1 (a batch in one pass) is skipped, which keeps the one-pass step's arithmetic as it was.
  const share = (x: tf.Tensor): tf.Scalar => (weight === 1 ? x : tf.mul(x, weight)) as tf.Scalar;
  const b = batchTensors(data, indices);
  let accuracy: tf.Scalar | undefined;
  try {
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.answerLogits(b.tokens, b.positions);
      accuracy = tf.keep(share(tf.mean(tf.cast(tf.equal(tf.argMax(logits, -1), b.targets), 'float32'))));
      return share(tf.mean(crossEntropy(logits, b.targets)));
    }, [...model.params.values()]);
    // A parameter without a gradient stays absent: AdamW then names it.
    const named = [...model.params].flatMap(([name, p]) => (grads[p.name] ? [[name, grads[p.name]] as const] : []));
    return { grads: new Map(named), loss: value, accuracy: accuracy as tf.Scalar };
  } finally {
    tf.dispose([b.tokens, b.positions, b.targets]);
  }
}

/**
 * Gradient of the mean loss of the batch `indices` of `data`, with its mean loss and accuracy,
 * accumulated over consecutive micro-batches of at most `microBatch` examples (same rows, same
 * order). Each micro-batch's tensors are freed once added, so the peak is one micro-batch's
 * activations plus two sets of gradients (the running sum and the micro-batch's).
 * The caller disposes the result's tensors.
 */
export function batchGradients(
  model: LanguageModel,
  data: Examples,
  indices: Int32Array,
  microBatch: number,
): BatchGradients {
  const n = indices.length;
  let sum: BatchGradients | undefined;
  for (let start = 0; start < n; start += microBatch) {
    const chunk = indices.subarray(start, Math.min(n, start + microBatch));
    const pass = weightedPass(model, data, chunk, chunk.length / n);
    sum = sum ? addGradients(sum, pass) : pass;
  }
  return sum as BatchGradients;
}

/** `a + b`, field by field and parameter by parameter; disposes `a` and `b` as it goes. */
function addGradients(a: BatchGradients, b: BatchGradients): BatchGradients {
  const add = <T extends tf.Tensor>(x: T, y: T | undefined): T => {
    if (!y) throw new Error('micro-batches with different sets of gradients');
    const s = tf.add(x, y) as T;
    tf.dispose([x, y]);
    return s;
  };
  const grads = new Map([...a.grads].map(([name, g]) => [name, add(g, b.grads.get(name))]));
  return { grads, loss: add(a.loss, b.loss), accuracy: add(a.accuracy, b.accuracy) };
}

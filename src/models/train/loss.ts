/**
 * The training objective and its gradient: cross-entropy of the target at the answer position
 * only, averaged over a batch, whose gradient may be accumulated over micro-batches (a memory
 * knob: the sum equals the full batch's up to float rounding).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EnsembleModel } from '../members.js';
import type { LanguageModel } from '../model.js';
import { nativeKernelsOn } from '../native-kernels.js';
import { nativeCrossEntropyRows } from '../native-loss.js';
import { batchTensors, membersBatchTensors } from './examples.js';
import type { Examples } from './examples.js';

/**
 * Per-example cross-entropy `-log softmax(logits)[target]`. On `wasm-blas` one native kernel
 * each way (`native-loss.ts`), otherwise TF.js' logSoftmax and a one-hot product.
 * @param logits `[b, vocab]` (or `[members, b, vocab]`); @param targets int32 `[b]` (`[members, b]`).
 * @returns `[b]` (`[members, b]`)
 */
export function crossEntropy<T extends tf.Tensor = tf.Tensor1D>(logits: tf.Tensor, targets: tf.Tensor): T {
  if (nativeKernelsOn()) {
    const { loss, correct } = nativeCrossEntropyRows(logits, targets);
    correct.dispose();
    return loss as T;
  }
  return tfjsCrossEntropy(logits, targets) as T;
}

/** `crossEntropy` as TF.js ops (every backend but `wasm-blas`). */
function tfjsCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.oneHot(targets as tf.Tensor1D, logits.shape[logits.rank - 1]), logp), -1));
}

/**
 * `crossEntropy` and the hits of the same rows: 1 where the argmax of the logits is the target,
 * else 0 (float32, not differentiable). On `wasm-blas` both come out of one native pass.
 * @param logits `[b, vocab]` (`[members, b, vocab]`); @param targets int32 `[b]` (`[members, b]`).
 * @returns `[loss, hits]`, each `[b]` (`[members, b]`)
 */
function crossEntropyAndHits(logits: tf.Tensor, targets: tf.Tensor): [tf.Tensor, tf.Tensor] {
  if (nativeKernelsOn()) {
    const { loss, correct } = nativeCrossEntropyRows(logits, targets);
    return [loss, correct];
  }
  return [tfjsCrossEntropy(logits, targets), tf.cast(tf.equal(tf.argMax(logits, -1), targets), 'float32')];
}

/** Gradient, loss and accuracy of (a share of) a training batch. */
export interface BatchGradients {
  /** Gradient of the loss by parameter name (`LanguageModel.params` keys), shaped like the parameters. */
  grads: Map<string, tf.Tensor>;
  /** Mean cross-entropy (nats), scalar (`[members]` for an ensemble: each member's own). */
  loss: tf.Tensor;
  /** Fraction of answers whose argmax is the target, scalar (`[members]` for an ensemble). */
  accuracy: tf.Tensor;
}

/** A batch's tensors: tokens `[batch, seq]`, positions and targets `[batch]` (with a leading member axis for an ensemble). */
interface Batch {
  tokens: tf.Tensor;
  positions: tf.Tensor;
  targets: tf.Tensor;
}

/** What a pass trains: named parameters and the logits at the answer positions of a batch. */
interface Trainee {
  params: ReadonlyMap<string, tf.Variable>;
  /** `[batch, vocab]`, or `[members, batch, vocab]` for an ensemble. */
  answerLogits(b: Batch): tf.Tensor;
}

/**
 * One forward/backward pass over a batch: the gradient of the mean loss and the mean loss and
 * accuracy, each times `weight` (the pass's share of its batch, `rows / batchSize`), so that the
 * passes of a batch sum to the batch's. For an ensemble the means are per member (`[members]`)
 * and the gradient is that of their sum, so each member gets the gradient of its own mean loss.
 * The activations are freed on return; the caller disposes the result's tensors (`accuracy` and
 * an ensemble's `loss` are `tf.keep`'d, so an enclosing tidy does not free them).
 */
function weightedPass(model: Trainee, b: Batch, weight: number): BatchGradients {
  // weight 1 (a batch in one pass) is skipped, which keeps the one-pass step's arithmetic as it was.
  const share = (x: tf.Tensor): tf.Tensor => (weight === 1 ? x : tf.mul(x, weight));
  let accuracy: tf.Tensor | undefined;
  let perMember: tf.Tensor | undefined;
  try {
    const { value, grads } = tf.variableGrads(() => {
      const [rows, hits] = crossEntropyAndHits(model.answerLogits(b), b.targets);
      accuracy = tf.keep(share(tf.mean(hits, -1)));
      const loss = share(tf.mean(rows, -1));
      if (loss.rank === 0) return loss as tf.Scalar;
      perMember = tf.keep(loss);
      return tf.sum(loss);
    }, [...model.params.values()]);
    // A parameter without a gradient stays absent: AdamW then names it.
    const named = [...model.params].flatMap(([name, p]) => (grads[p.name] ? [[name, grads[p.name]] as const] : []));
    if (perMember) value.dispose();
    return { grads: new Map(named), loss: perMember ?? value, accuracy: accuracy as tf.Tensor };
  } finally {
    tf.dispose([b.tokens, b.positions, b.targets]);
  }
}

/**
 * Sums the passes over consecutive row ranges of at most `microBatch` of `n` rows
 * (`pass(start, end, weight)`), freeing each pass's tensors once added.
 */
function accumulate(
  n: number,
  microBatch: number,
  pass: (start: number, end: number, weight: number) => BatchGradients,
): BatchGradients {
  let sum: BatchGradients | undefined;
  for (let start = 0; start < n; start += microBatch) {
    const end = Math.min(n, start + microBatch);
    const next = pass(start, end, (end - start) / n);
    sum = sum ? addGradients(sum, next) : next;
  }
  return sum as BatchGradients;
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
  const trainee: Trainee = {
    params: model.params,
    answerLogits: (b) => model.answerLogits(b.tokens as tf.Tensor2D, b.positions as tf.Tensor1D),
  };
  return accumulate(indices.length, microBatch, (start, end, weight) =>
    weightedPass(trainee, batchTensors(data, indices.subarray(start, end)), weight),
  );
}

/**
 * `batchGradients` of an ensemble: member m's batch is the rows `indices[m]` of `data[m]` (all of
 * one size); gradients stacked `[members, ...]`, loss and accuracy `[members]`, each member's
 * equal to its own `batchGradients` up to float rounding.
 */
export function membersBatchGradients(
  model: EnsembleModel,
  data: readonly Examples[],
  indices: readonly Int32Array[],
  microBatch: number,
): BatchGradients {
  const trainee: Trainee = {
    params: model.params,
    answerLogits: (b) => model.membersAnswerLogits(b.tokens as tf.Tensor3D, b.positions as tf.Tensor2D),
  };
  return accumulate(indices[0].length, microBatch, (start, end, weight) =>
    weightedPass(
      trainee,
      membersBatchTensors(
        data,
        indices.map((ix) => ix.subarray(start, end)),
      ),
      weight,
    ),
  );
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

/**
 * Measuring a model: predictions and mean loss on a set of examples, and the grokking curve as
 * training records it (`CurveRecorder`): at each evaluation, the mean training-batch loss and
 * accuracy since the previous one, then every test type on at most `evalSize` of its examples,
 * evenly spaced over the test set (`evenlySpaced`), so that every attribute is represented, each
 * row with the weight norms of that step (`weight-norms.ts`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LanguageModel } from '../model.js';
import { batchTensors, selectRows } from './examples.js';
import type { Examples } from './examples.js';
import { crossEntropy } from './loss.js';
import { weightNorms } from './weight-norms.js';
import type { WeightNorms } from './weight-norms.js';

/** One point of the grokking curve (a row of `curve.parquet`). */
export interface CurveRow {
  /** Optimizer steps done. */
  step: number;
  /** Epochs done, `step · batchSize / n_train` (fractional). */
  epoch: number;
  /** `train_batch` or a test type. */
  type: string;
  /** Fraction of answers whose argmax is the target. */
  accuracy: number;
  /** Mean cross-entropy (nats) at the answer position. */
  loss: number;
  /** The model's weight norms at `step` (the same on every row of a step). */
  norms: WeightNorms;
}

/** Per-example outputs of `predict`. */
export interface Predictions {
  /** Argmax token id at the answer position, `[n]`. */
  prediction: Int32Array;
  /** Cross-entropy of the target (nats), `[n]`. */
  loss: Float32Array;
}

/**
 * Predictions and losses of `model` at the answer position of the first `limit` examples,
 * in batches of `batchSize`.
 */
export async function predict(
  model: LanguageModel,
  data: Examples,
  batchSize = 1024,
  limit = data.n,
): Promise<Predictions> {
  const n = Math.min(limit, data.n);
  const prediction = new Int32Array(n);
  const loss = new Float32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const [pred, nll] = tf.tidy(() => {
      const b = batchTensors(data, idx);
      const logits = model.answerLogits(b.tokens, b.positions);
      return [tf.argMax(logits, -1), crossEntropy(logits, b.targets)];
    });
    prediction.set((await pred.data()) as Int32Array, start);
    loss.set((await nll.data()) as Float32Array, start);
    pred.dispose();
    nll.dispose();
  }
  return { prediction, loss };
}

/** Accuracy and mean loss of `model` on the first `limit` examples. */
export async function evaluateExamples(
  model: LanguageModel,
  data: Examples,
  batchSize = 1024,
  limit = data.n,
): Promise<{ accuracy: number; loss: number; n: number }> {
  const { prediction, loss } = await predict(model, data, batchSize, limit);
  const n = prediction.length;
  let correct = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (prediction[i] === data.targets[i]) correct++;
    total += loss[i];
  }
  return { accuracy: n ? correct / n : NaN, loss: n ? total / n : NaN, n };
}

/**
 * At most `k` rows of `data`, evenly spaced over it (rows `floor(i * n / k)`), so that a test set
 * stored in sorted order (by attribute, then entities) is subsampled across every attribute rather
 * than cut to its first attributes. Returns `data` itself when `n <= k`.
 */
export function evenlySpaced(data: Examples, k: number): Examples {
  if (data.n <= k) return data;
  return selectRows(
    data,
    Array.from({ length: k }, (_, i) => Math.floor((i * data.n) / k)),
  );
}

/**
 * The grokking curve of a training run as it is measured. Training adds each batch's mean loss and
 * accuracy to sums kept on the device (`addBatch`); `evaluate` turns them into the `train_batch`
 * row (their mean since the previous evaluation) and measures every test type.
 */
export class CurveRecorder {
  /** Every row so far, in step order. */
  rows: CurveRow[] = [];
  /** Accuracy by curve type at the latest evaluation (also after a resume); empty before the first. */
  readonly latest: Record<string, number> = {};
  /** Mean train-batch loss and accuracy since the last evaluation, as last read from the device. */
  running: { loss?: number; accuracy?: number } = {};
  /** Training batches summed since the last evaluation. */
  batches = 0;
  /** Sum of the batches' mean losses since the last evaluation (scalar). */
  readonly lossSum: tf.Variable;
  /** Sum of the batches' accuracies since the last evaluation (scalar). */
  readonly accuracySum: tf.Variable;
  private lastRead = 0;

  /**
   * @param tests the test subsets by type, evaluated in this order.
   * @param batchSize examples per forward pass when evaluating.
   */
  constructor(
    private readonly model: LanguageModel,
    private readonly tests: ReadonlyMap<string, Examples>,
    private readonly batchSize: number,
  ) {
    [this.lossSum, this.accuracySum] = tf.tidy(() => [
      tf.variable(tf.scalar(0), false),
      tf.variable(tf.scalar(0), false),
    ]);
  }

  /** Adds one training batch's mean loss and accuracy (scalars); call inside `tf.tidy`. */
  addBatch(loss: tf.Scalar, accuracy: tf.Scalar): void {
    this.lossSum.assign(tf.add(this.lossSum, loss));
    this.accuracySum.assign(tf.add(this.accuracySum, accuracy));
    this.batches++;
  }

  /** Reads the running means from the device (nothing before the first batch). */
  async readRunning(): Promise<void> {
    if (this.batches === 0) return;
    const [l, a] = await Promise.all([this.lossSum.data(), this.accuracySum.data()]);
    this.running = { loss: l[0] / this.batches, accuracy: a[0] / this.batches };
    this.lastRead = performance.now();
  }

  /** `readRunning` when the last read is over a second old (progress display; reading syncs the device). */
  async refreshRunning(): Promise<void> {
    if (performance.now() - this.lastRead > 1000) await this.readRunning();
  }

  /**
   * The curve rows of `step`: `train_batch` (the running means; before any batch, the model on
   * `firstBatch()`, the batch training will start with), then every test type, each with the
   * weight norms. Resets the sums.
   */
  async evaluate(step: number, epoch: number, firstBatch: () => Examples): Promise<CurveRow[]> {
    const rows: CurveRow[] = [];
    const norms = await weightNorms(this.model.params);
    const row = (type: string, m: { accuracy: number; loss: number }): CurveRow => ({
      step,
      epoch,
      type,
      accuracy: m.accuracy,
      loss: m.loss,
      norms: { ...norms, blocks: [...norms.blocks] },
    });
    if (this.batches > 0) {
      await this.readRunning();
      rows.push(row('train_batch', this.running as { accuracy: number; loss: number }));
    } else rows.push(row('train_batch', await evaluateExamples(this.model, firstBatch(), this.batchSize)));
    for (const [type, data] of this.tests)
      rows.push(row(type, await evaluateExamples(this.model, data, this.batchSize)));
    tf.tidy(() => {
      // assign() keeps the value's buffer; the tidy frees the tensor object itself.
      this.lossSum.assign(tf.scalar(0));
      this.accuracySum.assign(tf.scalar(0));
    });
    this.batches = 0;
    this.rows.push(...rows);
    for (const r of rows) this.latest[r.type] = r.accuracy;
    return rows;
  }

  /** Continues from a checkpoint's rows and batch count (the sums are restored with the tensors). */
  restore(rows: CurveRow[], batches: number): void {
    this.rows = rows;
    this.batches = batches;
    for (const r of rows) this.latest[r.type] = r.accuracy;
  }

  /** Frees the sums. */
  dispose(): void {
    this.lossSum.dispose();
    this.accuracySum.dispose();
  }
}

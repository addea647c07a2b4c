/**
 * Measuring a model: predictions and mean loss on a set of examples (of one model, or of every
 * member of an ensemble at once), and the grokking curve as training records it (`CurveRecorder`): at each evaluation, the mean training-batch loss and
 * accuracy since the previous one, then every test type on at most `evalSize` of its examples,
 * evenly spaced over the test set (`evenlySpaced`), so that every attribute is represented, each
 * row with the weight norms of that step (`weight-norms.ts`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EnsembleModel } from '../members.js';
import type { LanguageModel } from '../model.js';
import { batchTensors, membersBatchTensors, selectRows } from './examples.js';
import type { Examples } from './examples.js';
import { crossEntropy } from './loss.js';
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

/** Accuracy and mean loss of a set of examples, as `evaluateExamples` gives them. */
export interface Measured {
  accuracy: number;
  loss: number;
}

/**
 * Measures one set of examples per member (`undefined`: that member has none of this type) and
 * resolves to one result per member (`undefined` where it had none). For one model, one set.
 */
export type Measure = (sets: readonly (Examples | undefined)[]) => Promise<(Measured | undefined)[]>;

/** `Measure` of one model: `evaluateExamples` on its set in passes of `batchSize`. */
export function modelMeasure(model: LanguageModel, batchSize: number): Measure {
  return (sets) => Promise.all(sets.map((d) => (d ? evaluateExamples(model, d, batchSize) : undefined)));
}

/**
 * `Measure` of an ensemble: every member's set in one batched pass of at most `batchSize` rows a
 * member (`EnsembleModel.membersAnswerLogits`); a member with fewer rows is padded with copies of
 * its first row (a member without a set, with the first set's), whose results are dropped. Each
 * member's accuracy and mean loss are summed in row order, as `evaluateExamples`.
 */
export function membersMeasure(model: EnsembleModel, batchSize: number): Measure {
  return async (sets) => {
    const filler = sets.find((d) => d !== undefined && d.n > 0);
    if (!filler) return sets.map((d) => (d ? evaluateExamples0() : undefined));
    const data = sets.map((d) => (d && d.n > 0 ? d : filler));
    const ns = sets.map((d) => d?.n ?? 0);
    const most = Math.max(...ns);
    const sums = ns.map(() => ({ correct: 0, loss: 0 }));
    for (let start = 0; start < most; start += batchSize) {
      const b = Math.min(batchSize, most - start);
      const rows = ns.map((n) => Int32Array.from({ length: b }, (_, i) => (start + i < n ? start + i : 0)));
      const [pred, nll] = tf.tidy(() => {
        const t = membersBatchTensors(data, rows);
        const logits = model.membersAnswerLogits(t.tokens, t.positions);
        return [tf.argMax(logits, -1), crossEntropy(logits, t.targets)];
      });
      const [p, l] = [(await pred.data()) as Int32Array, (await nll.data()) as Float32Array];
      tf.dispose([pred, nll]);
      ns.forEach((n, m) => {
        for (let i = 0; i < b && start + i < n; i++) {
          if (p[m * b + i] === data[m].targets[start + i]) sums[m].correct++;
          sums[m].loss += l[m * b + i];
        }
      });
    }
    return sets.map((d, m) =>
      d ? { accuracy: d.n ? sums[m].correct / d.n : NaN, loss: d.n ? sums[m].loss / d.n : NaN } : undefined,
    );
  };
}

/** What `evaluateExamples` gives for no examples. */
const evaluateExamples0 = (): Measured => ({ accuracy: NaN, loss: NaN });

/**
 * The grokking curves of one training run, or of the members of an ensemble, as they are
 * measured. Training adds each batch's mean loss and accuracy to sums kept on the device
 * (`addBatch`; one value a member); `evaluate` turns them into the `train_batch` row (their mean
 * since the previous evaluation) and measures every test type, every member at once.
 */
export class CurveRecorder {
  /** Number of runs recorded (members). */
  readonly members: number;
  /** Every row so far of each member, in step order. */
  rows: CurveRow[][];
  /** Accuracy by curve type at the latest evaluation of each member (also after a resume); empty before the first. */
  readonly latest: Record<string, number>[];
  /** Mean train-batch loss and accuracy of each member since the last evaluation, as last read from the device. */
  running: { loss?: number; accuracy?: number }[];
  /** Training batches summed since the last evaluation. */
  batches = 0;
  /** Sum of the batches' mean losses since the last evaluation (scalar; `[members]` when stacked). */
  readonly lossSum: tf.Variable;
  /** Sum of the batches' accuracies since the last evaluation (scalar; `[members]` when stacked). */
  readonly accuracySum: tf.Variable;
  private lastRead = 0;

  /**
   * @param measure measures the members' test sets (`modelMeasure`, `membersMeasure`).
   * @param norms each member's weight norms now (`weightNorms`).
   * @param tests each member's test subsets by type, evaluated in this order.
   * @param stacked the sums are `[members]` (an ensemble) rather than scalars (one model).
   */
  constructor(
    private readonly measure: Measure,
    private readonly norms: () => Promise<WeightNorms[]>,
    private readonly tests: readonly ReadonlyMap<string, Examples>[],
    stacked = false,
  ) {
    this.members = tests.length;
    this.rows = tests.map(() => []);
    this.latest = tests.map(() => ({}));
    this.running = tests.map(() => ({}));
    const zero = () => (stacked ? tf.zeros([this.members]) : tf.scalar(0));
    [this.lossSum, this.accuracySum] = tf.tidy(() => [tf.variable(zero(), false), tf.variable(zero(), false)]);
  }

  /** Adds one training batch's mean loss and accuracy (scalars, or `[members]`); call inside `tf.tidy`. */
  addBatch(loss: tf.Tensor, accuracy: tf.Tensor): void {
    this.lossSum.assign(tf.add(this.lossSum, loss));
    this.accuracySum.assign(tf.add(this.accuracySum, accuracy));
    this.batches++;
  }

  /** Reads the running means from the device (nothing before the first batch). */
  async readRunning(): Promise<void> {
    if (this.batches === 0) return;
    const [l, a] = await Promise.all([this.lossSum.data(), this.accuracySum.data()]);
    this.running = this.running.map((_, m) => ({ loss: l[m] / this.batches, accuracy: a[m] / this.batches }));
    this.lastRead = performance.now();
  }

  /** `readRunning` when the last read is over a second old (progress display; reading syncs the device). */
  async refreshRunning(): Promise<void> {
    if (performance.now() - this.lastRead > 1000) await this.readRunning();
  }

  /**
   * Each member's curve rows of `step`: `train_batch` (the running means; before any batch, the
   * model on `firstBatches()[m]`, the batch training will start with), then every test type, each
   * with the member's weight norms. Resets the sums. @param epochs each member's epoch at `step`.
   */
  async evaluate(step: number, epochs: readonly number[], firstBatches: () => Examples[]): Promise<CurveRow[][]> {
    const rows: CurveRow[][] = this.rows.map(() => []);
    const norms = await this.norms();
    const add = (type: string, results: (Measured | undefined)[]) =>
      results.forEach(
        (r, m) =>
          r &&
          rows[m].push({
            step,
            epoch: epochs[m],
            type,
            accuracy: r.accuracy,
            loss: r.loss,
            norms: { ...norms[m], blocks: [...norms[m].blocks] },
          }),
      );
    if (this.batches > 0) {
      await this.readRunning();
      add(
        'train_batch',
        this.running.map((r) => ({ accuracy: r.accuracy as number, loss: r.loss as number })),
      );
    } else add('train_batch', await this.measure(firstBatches()));
    const types = [...new Set(this.tests.flatMap((t) => [...t.keys()]))];
    for (const type of types) add(type, await this.measure(this.tests.map((t) => t.get(type))));
    tf.tidy(() => {
      // assign() keeps the value's buffer; the tidy frees the tensor object itself.
      this.lossSum.assign(tf.zerosLike(this.lossSum));
      this.accuracySum.assign(tf.zerosLike(this.accuracySum));
    });
    this.batches = 0;
    rows.forEach((r, m) => {
      this.rows[m].push(...r);
      for (const row of r) this.latest[m][row.type] = row.accuracy;
    });
    return rows;
  }

  /** Continues member `member` from a checkpoint's rows and batch count (the sums are restored with the tensors). */
  restore(member: number, rows: CurveRow[], batches: number): void {
    this.rows[member] = rows;
    this.batches = batches;
    for (const r of rows) this.latest[member][r.type] = r.accuracy;
  }

  /** Frees the sums. */
  dispose(): void {
    this.lossSum.dispose();
    this.accuracySum.dispose();
  }
}

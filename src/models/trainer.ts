/**
 * The training loop, independent of the pipeline engine (DESIGN.md §4 "train").
 *
 * Seeded initialisation and data order; batches of `batchSize` drawn from a stream of epoch
 * permutations (an epoch is one pass over the training facts; a batch may straddle two epochs so
 * every batch has the same size); loss = cross-entropy at the answer position only; AdamW. A batch
 * may be computed in micro-batches whose gradients are summed (`microBatchSize`, a memory knob: the
 * step equals the full batch's up to float rounding). At step 0, every `evalEvery` steps and at
 * the last step it evaluates every test type and reports the mean training-batch loss/accuracy
 * since the previous evaluation: the grokking curve.
 *
 * With a checkpoint folder it saves weights, optimizer moments, step, data-order RNG state and the
 * curve so far every `checkpointEvery` steps and on abort, and resumes from the newest checkpoint
 * there; a resumed run ends with the same weights, bit for bit, as an uninterrupted one on the same
 * backend (training is a pure function of params, data and step).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from './adamw.js';
import type { AdamWConfig } from './adamw.js';
import { createModel } from './model.js';
import type { LanguageModel, ModelConfig } from './model.js';
import { makeRng, permutation, rngFromState, rngState } from './random.js';
import type { Rng } from './random.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import type { NamedTensor } from './safetensors.js';

/** A set of examples as flat host arrays (the tokenize tables' rows). */
export interface Examples {
  /** Input token ids, row-major `[n, seqLen]`, right-padded. */
  tokens: Int32Array;
  /** Answer position of each example, `length - 1`, `[n]`. */
  positions: Int32Array;
  /** Target token id of each example, `[n]`. */
  targets: Int32Array;
  /** Number of examples. */
  n: number;
  /** Columns of `tokens`. */
  seqLen: number;
}

/** What the trainer needs besides the data. */
export interface TrainerConfig {
  /** Architecture (vocab_size and seq_len included). */
  model: ModelConfig;
  /** AdamW hyperparameters. */
  optimizer: AdamWConfig;
  /** Training examples per step. */
  batchSize: number;
  /**
   * Examples per forward/backward pass: a step's batch is cut into consecutive micro-batches of at
   * most this many examples whose gradients are accumulated. Undefined or ≥ `batchSize`: one pass.
   */
  microBatchSize?: number;
  /** Optimizer steps to run in all. */
  maxSteps: number;
  /** Steps between evaluations (curve points). */
  evalEvery: number;
  /** At most this many examples of each test type per evaluation (the first ones). */
  evalSize: number;
  /** Seed of initialisation (RNG stream 0) and data order (stream 1). */
  seed: number;
  /** Steps between checkpoints; 0 for none. */
  checkpointEvery: number;
  /** Examples per forward pass when evaluating (default: 1024, or `microBatchSize` when smaller). */
  evalBatchSize?: number;
}

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
}

/** Live information after each step. */
export interface StepInfo {
  step: number;
  total: number;
  epoch: number;
  /** Mean train-batch loss since the last evaluation, refreshed at most about once a second. */
  loss?: number;
  /** Mean train-batch accuracy since the last evaluation, refreshed likewise. */
  accuracy?: number;
  /** Accuracy by curve type at the latest evaluation (also after a resume); empty before the first. */
  evaluated: Readonly<Record<string, number>>;
}

/** Callbacks; all optional and synchronous. */
export interface TrainEvents {
  /** After every step (and once at the start with the starting step). */
  onStep?(info: StepInfo): void;
  /** After each evaluation, with its rows (`train_batch` first, then the test types in order). */
  onEval?(step: number, rows: CurveRow[]): void;
  /** Human-readable notes (resume, checkpoint). */
  onLog?(message: string): void;
}

/** Options of `trainModel`. */
export interface TrainOptions {
  /** Folder for checkpoints (created if missing); none when absent. */
  checkpointDir?: string;
  /** Stops the run between steps, after saving a checkpoint; `trainModel` then rejects with the abort reason. */
  signal?: AbortSignal;
  events?: TrainEvents;
}

/** The trained model and what happened. */
export interface TrainResult {
  /** The final model; the caller disposes it. */
  model: LanguageModel;
  /** Every curve row, in step order. */
  curve: CurveRow[];
  /** Step the run resumed from (0 for a fresh start). */
  resumedFrom: number;
  /** Steps run by this call. */
  stepsRun: number;
  /** Wall-clock seconds of this call's training loop, evaluations included. */
  seconds: number;
}

/** Per-example outputs of `predict`. */
export interface Predictions {
  /** Argmax token id at the answer position, `[n]`. */
  prediction: Int32Array;
  /** Cross-entropy of the target (nats), `[n]`. */
  loss: Float32Array;
}

/**
 * Draws training example indices from a stream of seeded epoch permutations. Its state (epoch,
 * offset in it, RNG state before that epoch's permutation) fits in a checkpoint.
 */
export class BatchSampler {
  private perm: Int32Array;
  private rngAtEpoch: number[];

  /** @param rng consumed, one permutation per epoch. */
  constructor(
    readonly n: number,
    private rng: Rng,
    /** Epochs started (0-based index of the current one). */
    public epoch = 0,
    /** Examples of the current epoch already drawn. */
    public offset = 0,
  ) {
    if (n < 1) throw new Error('no training examples');
    this.rngAtEpoch = rngState(rng);
    this.perm = permutation(rng, n);
  }

  /** The next `size` indices (crossing into the next epoch as needed). */
  next(size: number): Int32Array {
    const out = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      if (this.offset === this.n) {
        this.epoch++;
        this.offset = 0;
        this.rngAtEpoch = rngState(this.rng);
        this.perm = permutation(this.rng, this.n);
      }
      out[i] = this.perm[this.offset++];
    }
    return out;
  }

  /** The next `size` indices without consuming them. */
  peek(size: number): Int32Array {
    return this.clone().next(size);
  }

  /** An independent copy. */
  clone(): BatchSampler {
    return BatchSampler.fromState(this.n, this.state());
  }

  /** Serialisable state. */
  state(): { epoch: number; offset: number; rng: number[] } {
    return { epoch: this.epoch, offset: this.offset, rng: [...this.rngAtEpoch] };
  }

  /** A sampler continuing from `state`. */
  static fromState(n: number, state: { epoch: number; offset: number; rng: number[] }): BatchSampler {
    return new BatchSampler(n, rngFromState(state.rng), state.epoch, state.offset);
  }
}

/** Rows `indices` of `data` as tensors: tokens `[b, seqLen]`, positions `[b]`, targets `[b]` (int32). */
function batchTensors(data: Examples, indices: ArrayLike<number>): { tokens: tf.Tensor2D; positions: tf.Tensor1D; targets: tf.Tensor1D } {
  const rows = selectRows(data, indices);
  return {
    tokens: tf.tensor2d(rows.tokens, [rows.n, rows.seqLen], 'int32'),
    positions: tf.tensor1d(rows.positions, 'int32'),
    targets: tf.tensor1d(rows.targets, 'int32'),
  };
}

/** Per-example cross-entropy `-log softmax(logits)[target]`. @param logits `[b, vocab]` → `[b]` */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.oneHot(targets, logits.shape[1]), logp), -1)) as tf.Tensor1D;
}

/**
 * Predictions and losses of `model` at the answer position of the first `limit` examples,
 * in batches of `batchSize`.
 */
export async function predict(model: LanguageModel, data: Examples, batchSize = 1024, limit = data.n): Promise<Predictions> {
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
export async function evaluateExamples(model: LanguageModel, data: Examples, batchSize = 1024, limit = data.n): Promise<{ accuracy: number; loss: number; n: number }> {
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

/** Gradient, loss and accuracy of (a share of) a training batch. */
interface BatchGradients {
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
function batchGradients(model: LanguageModel, data: Examples, indices: Int32Array, microBatch: number): BatchGradients {
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

const CHECKPOINT_VERSION = 1;

interface CheckpointState {
  version: number;
  step: number;
  fingerprint: string;
  sampler: { epoch: number; offset: number; rng: number[] };
  /** Training batches summed in the accumulators since the last evaluation. */
  batches: number;
  curve: CurveRow[];
}

/** Identity of a run: a checkpoint from another config or data set is never resumed. */
function fingerprint(config: TrainerConfig, train: Examples): string {
  const h = createHash('sha256');
  const { evalBatchSize: _e, checkpointEvery: _c, ...rest } = config;
  h.update(JSON.stringify(rest));
  for (const a of [train.tokens, train.positions, train.targets]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}

const pad = (step: number) => String(step).padStart(9, '0');

/**
 * Writes `bytes` to `path` through a temporary file `<path>.tmp-<pid>` and a rename (atomic on
 * POSIX). A failed write (ENOSPC) removes its temporary, so a full disk is not kept full; one left
 * by a killed process is removed by the engine's next run or `gc` (the checkpoint folder's naming).
 * @throws the file system error.
 */
function writeAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Steps of the complete checkpoints in `dir`, newest first. */
function checkpointSteps(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const set = new Set(names);
  return names
    .map((f) => /^checkpoint-(\d+)\.json$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && set.has(`checkpoint-${m[1]}.safetensors`))
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
}

/**
 * Trains a model from scratch, or resumes from `options.checkpointDir`.
 * @param tests test sets by type, evaluated in this order.
 * @throws the abort reason when `options.signal` fires; Error on inconsistent data/config.
 */
export async function trainModel(
  config: TrainerConfig,
  train: Examples,
  tests: ReadonlyMap<string, Examples>,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const { batchSize, maxSteps, evalEvery, evalSize, checkpointEvery } = config;
  // Evaluation passes are no larger than training's: a micro-batch set for memory bounds them too.
  const evalBatch = config.evalBatchSize ?? Math.min(1024, config.microBatchSize ?? 1024);
  const events = options.events ?? {};
  if (train.seqLen > config.model.seq_len) throw new Error(`training sequences of ${train.seqLen} exceed seq_len ${config.model.seq_len}`);
  if (!(batchSize >= 1 && maxSteps >= 0 && evalEvery >= 1)) throw new Error('batchSize and evalEvery must be ≥ 1, maxSteps ≥ 0');
  const microBatch = Math.min(config.microBatchSize ?? batchSize, batchSize);
  if (!(Number.isInteger(microBatch) && microBatch >= 1)) throw new Error(`microBatchSize must be an integer ≥ 1, not ${config.microBatchSize}`);

  const model = createModel(config.model, makeRng(config.seed, 0));
  const opt = new AdamW(model.params, config.optimizer, (n) => model.decays(n));
  let sampler = new BatchSampler(train.n, makeRng(config.seed, 1));
  const [lossSum, accSum] = tf.tidy(() => [tf.variable(tf.scalar(0), false), tf.variable(tf.scalar(0), false)]);
  let batches = 0;
  let curve: CurveRow[] = [];
  const evaluated: Record<string, number> = {};
  const print = fingerprint(config, train);
  const dir = options.checkpointDir;
  const evalSets = new Map([...tests].map(([type, data]) => [type, evenlySpaced(data, evalSize)] as const));

  const cleanup = () => {
    opt.dispose();
    lossSum.dispose();
    accSum.dispose();
  };

  try {
    // ---- resume ----
    let start = 0;
    let resumed = false;
    if (dir) {
      for (const step of checkpointSteps(dir)) {
        try {
          const state = JSON.parse(readFileSync(join(dir, `checkpoint-${pad(step)}.json`), 'utf8')) as CheckpointState;
          if (state.version !== CHECKPOINT_VERSION || state.fingerprint !== print || state.step !== step || step > maxSteps) {
            events.onLog?.(`ignoring checkpoint at step ${step}: made by another run configuration`);
            continue;
          }
          const st = decodeSafetensors(readFileSync(join(dir, `checkpoint-${pad(step)}.safetensors`)));
          const put = (v: tf.Variable, key: string) => {
            const t = st.tensors.get(key);
            if (!t || t.dtype !== 'F32' || t.shape.join() !== v.shape.join()) throw new Error(`checkpoint lacks ${key} ${JSON.stringify(v.shape)}`);
            v.assign(tf.tensor(t.data as Float32Array, v.shape, 'float32'));
          };
          tf.tidy(() => {
            for (const [name, p] of model.params) {
              put(p, `param.${name}`);
              put(opt.m.get(name) as tf.Variable, `adam.m.${name}`);
              put(opt.v.get(name) as tf.Variable, `adam.v.${name}`);
            }
            put(lossSum, 'train.loss_sum');
            put(accSum, 'train.accuracy_sum');
          });
          opt.step = step;
          sampler = BatchSampler.fromState(train.n, state.sampler);
          batches = state.batches;
          curve = state.curve;
          for (const r of curve) evaluated[r.type] = r.accuracy;
          start = step;
          resumed = true;
          events.onLog?.(`resumed from the checkpoint at step ${step}`);
          break;
        } catch (err) {
          events.onLog?.(`ignoring unreadable checkpoint at step ${step}: ${(err as Error).message}`);
        }
      }
    }

    const epochAt = (step: number) => (step * batchSize) / train.n;

    const saveCheckpoint = async (step: number) => {
      if (!dir) return;
      mkdirSync(dir, { recursive: true });
      const tensors: [string, NamedTensor][] = [];
      const add = async (key: string, v: tf.Tensor) => {
        tensors.push([key, { dtype: 'F32', shape: v.shape, data: (await v.data()) as Float32Array }]);
      };
      for (const [name, p] of model.params) {
        await add(`param.${name}`, p);
        await add(`adam.m.${name}`, opt.m.get(name) as tf.Variable);
        await add(`adam.v.${name}`, opt.v.get(name) as tf.Variable);
      }
      await add('train.loss_sum', lossSum);
      await add('train.accuracy_sum', accSum);
      const state: CheckpointState = { version: CHECKPOINT_VERSION, step, fingerprint: print, sampler: sampler.state(), batches, curve };
      // The JSON is written last: its presence marks a complete checkpoint.
      writeAtomic(join(dir, `checkpoint-${pad(step)}.safetensors`), encodeSafetensors(tensors, { step: String(step) }));
      writeAtomic(join(dir, `checkpoint-${pad(step)}.json`), JSON.stringify(state));
      for (const old of checkpointSteps(dir)) {
        if (old === step) continue;
        rmSync(join(dir, `checkpoint-${pad(old)}.json`), { force: true });
        rmSync(join(dir, `checkpoint-${pad(old)}.safetensors`), { force: true });
      }
    };

    let lastRead = 0;
    let shown: { loss?: number; accuracy?: number } = {};
    const readRunning = async () => {
      if (batches === 0) return;
      const [l, a] = await Promise.all([lossSum.data(), accSum.data()]);
      shown = { loss: l[0] / batches, accuracy: a[0] / batches };
      lastRead = performance.now();
    };

    const evaluate = async (step: number) => {
      const epoch = epochAt(step);
      const rows: CurveRow[] = [];
      if (batches > 0) {
        await readRunning();
        rows.push({ step, epoch, type: 'train_batch', accuracy: shown.accuracy as number, loss: shown.loss as number });
      } else {
        // Step 0: no batch trained yet; report the initial model on the first batch.
        const m = await evaluateExamples(model, selectRows(train, sampler.peek(batchSize)), evalBatch);
        rows.push({ step, epoch, type: 'train_batch', accuracy: m.accuracy, loss: m.loss });
      }
      for (const [type, data] of evalSets) {
        const m = await evaluateExamples(model, data, evalBatch);
        rows.push({ step, epoch, type, accuracy: m.accuracy, loss: m.loss });
      }
      tf.tidy(() => {
        // assign() keeps the value's buffer; the tidy frees the tensor object itself.
        lossSum.assign(tf.scalar(0));
        accSum.assign(tf.scalar(0));
      });
      batches = 0;
      curve.push(...rows);
      for (const r of rows) evaluated[r.type] = r.accuracy;
      events.onEval?.(step, rows);
    };

    const t0 = performance.now();
    // A checkpoint (even one of step 0, left by an interrupt before step 1 ended) holds the step-0 rows.
    if (!resumed) await evaluate(0);
    events.onStep?.({ step: start, total: maxSteps, epoch: epochAt(start), ...shown, evaluated });

    for (let step = start + 1; step <= maxSteps; step++) {
      if (options.signal?.aborted) {
        await saveCheckpoint(step - 1);
        options.signal.throwIfAborted();
      }
      const indices = sampler.next(batchSize);
      tf.tidy(() => {
        const { grads, loss, accuracy } = batchGradients(model, train, indices, microBatch);
        opt.apply(grads);
        lossSum.assign(tf.add(lossSum, loss));
        accSum.assign(tf.add(accSum, accuracy));
        accuracy.dispose(); // tf.keep'd by a one-pass batch: not the tidy's to free
      });
      batches++;

      if (step % evalEvery === 0 || step === maxSteps) await evaluate(step);
      else if (performance.now() - lastRead > 1000) await readRunning();
      if (checkpointEvery > 0 && step % checkpointEvery === 0 && step < maxSteps) await saveCheckpoint(step);
      events.onStep?.({ step, total: maxSteps, epoch: epochAt(step), ...shown, evaluated });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const seconds = (performance.now() - t0) / 1000;
    cleanup();
    return { model, curve, resumedFrom: start, stepsRun: maxSteps - start, seconds };
  } catch (err) {
    cleanup();
    model.dispose();
    throw err;
  }
}

/**
 * At most `k` rows of `data`, evenly spaced over it (rows `floor(i * n / k)`), so that a test set
 * stored in sorted order (by attribute, then entities) is subsampled across every attribute rather
 * than cut to its first attributes. Returns `data` itself when `n <= k`.
 */
export function evenlySpaced(data: Examples, k: number): Examples {
  if (data.n <= k) return data;
  return selectRows(data, Array.from({ length: k }, (_, i) => Math.floor((i * data.n) / k)));
}

/** The rows `indices` of `data`, as a new `Examples`. */
export function selectRows(data: Examples, indices: ArrayLike<number>): Examples {
  const L = data.seqLen;
  const n = indices.length;
  const out: Examples = { tokens: new Int32Array(n * L), positions: new Int32Array(n), targets: new Int32Array(n), n, seqLen: L };
  for (let i = 0; i < n; i++) {
    const r = indices[i];
    out.tokens.set(data.tokens.subarray(r * L, r * L + L), i * L);
    out.positions[i] = data.positions[r];
    out.targets[i] = data.targets[r];
  }
  return out;
}

/**
 * The training loop, independent of the pipeline engine (docs/design.md §4 "train").
 *
 * Seeded initialisation (RNG stream 0) and data order (stream 1, `BatchSampler`); loss =
 * cross-entropy at the answer position only (`loss.ts`), possibly over micro-batches whose
 * gradients are summed; AdamW. At step 0, every `evalEvery` steps and at the last step it records
 * the grokking curve (`evaluation.ts`): the mean training-batch loss and accuracy since the
 * previous evaluation, and every test type on at most `evalSize` examples, evenly spaced over its
 * test set.
 *
 * With a checkpoint folder it saves weights, optimizer moments, step, data-order RNG state and the
 * curve so far every `checkpointEvery` steps and on abort, and resumes from the newest checkpoint
 * there (`checkpoint.ts`); a resumed run ends with the same weights, bit for bit, as an
 * uninterrupted one on the same backend (training is a pure function of params, data and step).
 *
 * `trainEnsemble` trains several runs whose models have the same shapes as one batched network
 * (`members.ts`, `network.ts`): each member with its own seed (initialisation, data order), data,
 * learning rate and weight decay, its curve and checkpoints its own, in the format of one run's,
 * all evaluated together. One loop serves both: a run alone is an ensemble of one whose network
 * keeps the plain shapes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../adamw.js';
import type { AdamWConfig } from '../adamw.js';
import type { ModelConfig } from '../arch/registry.js';
import type { LanguageModel } from '../model.js';
import { makeRng } from '../train-rng.js';
import { checkpointVariables, findCheckpoint, fingerprint, isCheckpointStep, saveCheckpoint } from './checkpoint.js';
import type { CheckpointState, StateSlot } from './checkpoint.js';
import { CurveRecorder, evenlySpaced } from './evaluation.js';
import type { CurveRow } from './evaluation.js';
import { BatchSampler, selectRows } from './examples.js';
import type { Examples } from './examples.js';
import { ensembleNetwork, modelNetwork } from './network.js';
import type { Network } from './network.js';

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
  /** At most this many examples of each test type per evaluation, evenly spaced over its test set (`evenlySpaced`). */
  evalSize: number;
  /** Seed of initialisation (RNG stream 0) and data order (stream 1). */
  seed: number;
  /** Steps between checkpoints; 0 for none. */
  checkpointEvery: number;
  /** Examples per forward pass when evaluating (default: 1024, or `microBatchSize` when smaller). */
  evalBatchSize?: number;
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

/** One run to train: what `trainModel` takes, as one member of `trainEnsemble`. */
export interface TrainRequest {
  config: TrainerConfig;
  train: Examples;
  /** Test sets by type, evaluated in this order. */
  tests: ReadonlyMap<string, Examples>;
  options?: TrainOptions;
}

/**
 * What must be equal for runs to train as one ensemble: the config but the seed and the
 * optimizer's `lr` and `weight_decay` (per member). The model config holds the shapes (vocab_size
 * and seq_len from the data), so equal strings mean equal shapes and schedules.
 */
export function ensembleKey(config: TrainerConfig): string {
  const { seed: _seed, optimizer, ...shared } = config;
  const { lr: _lr, weight_decay: _wd, ...optimizerShared } = optimizer;
  // Keys sorted at every level: configs built in another key order are the same.
  const sorted = (_: string, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v;
  return JSON.stringify({ ...shared, optimizer: optimizerShared }, sorted);
}

/**
 * Examples per training pass: `microBatchSize`, at most the batch.
 * @throws Error on inconsistent sizes.
 */
function passSize(config: TrainerConfig, train: Examples): number {
  const { batchSize, maxSteps, evalEvery } = config;
  if (train.seqLen > config.model.seq_len)
    throw new Error(`training sequences of ${train.seqLen} exceed seq_len ${config.model.seq_len}`);
  if (!(batchSize >= 1 && maxSteps >= 0 && evalEvery >= 1))
    throw new Error('batchSize and evalEvery must be ≥ 1, maxSteps ≥ 0');
  const microBatch = Math.min(config.microBatchSize ?? batchSize, batchSize);
  if (!(Number.isInteger(microBatch) && microBatch >= 1))
    throw new Error(`microBatchSize must be an integer ≥ 1, not ${config.microBatchSize}`);
  return microBatch;
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
  const [result] = await trainRuns([{ config, train, tests, options }], false);
  return result;
}

/**
 * Trains the runs `requests` as one ensemble (`members.ts`): one result per request, each what
 * `trainModel` gives for it alone up to float rounding (the same initial weights, data order,
 * curve and checkpoints). Each request's `options` give its checkpoint folder and events; the
 * ensemble stops when any request's signal fires (after saving every member's checkpoint).
 * A member resumes only with the others: when their newest checkpoints are not all of one step,
 * every member starts again from step 0.
 * @throws Error when the requests differ in more than seed, lr and weight decay (`ensembleKey`),
 *   or their architecture has no ensemble network; the abort reason when a signal fires.
 */
export async function trainEnsemble(requests: readonly TrainRequest[]): Promise<TrainResult[]> {
  if (requests.length === 0) throw new Error('trainEnsemble: no runs');
  const key = ensembleKey(requests[0].config);
  requests.forEach((r, i) => {
    if (ensembleKey(r.config) !== key)
      throw new Error(`trainEnsemble: run ${i} differs from run 0 in more than seed, lr and weight_decay`);
  });
  return trainRuns(requests, true);
}

/** The runs' newest checkpoints loaded, when all of one step; else none (logged). */
function resume(
  requests: readonly TrainRequest[],
  run: { fingerprints: string[]; maxSteps: number },
  saved: Map<string, StateSlot>[],
): CheckpointState[] | undefined {
  const log = (m: number, message: string) => requests[m].options?.events?.onLog?.(message);
  const found = requests.map((r, m) => {
    const dir = r.options?.checkpointDir;
    const print = { fingerprint: run.fingerprints[m], maxSteps: run.maxSteps };
    return dir ? findCheckpoint(dir, print, saved[m], (message) => log(m, message)) : undefined;
  });
  if (found.every((f) => f === undefined)) return undefined;
  const steps = found.map((f) => f?.state.step ?? 0);
  if (found.some((f) => f === undefined) || steps.some((s) => s !== steps[0])) {
    requests.forEach((_, m) =>
      log(m, `the ensemble's checkpoints are at steps ${steps.join(', ')}: every member starts from step 0`),
    );
    return undefined;
  }
  return found.map((f, m) => {
    f!.load();
    log(m, `resumed from the checkpoint at step ${f!.state.step}`);
    return f!.state;
  });
}

/** What the loop of `trainRuns` works on: the network, its optimizer and curves, and each run's data order. */
interface Training {
  net: Network;
  opt: AdamW;
  curve: CurveRecorder;
  trains: Examples[];
  samplers: BatchSampler[];
  /** Each run's checkpoint tensors. */
  saved: Map<string, StateSlot>[];
  fingerprints: string[];
  microBatch: number;
}

/** Builds the network (initialised from each run's seed), optimizer, curves and data order of `requests`. */
function prepare(requests: readonly TrainRequest[], stacked: boolean): Training {
  const first = requests[0].config;
  const microBatch = Math.min(...requests.map((r) => passSize(r.config, r.train)));
  // Evaluation passes are no larger than training's: a micro-batch set for memory bounds them too.
  const evalBatch = first.evalBatchSize ?? Math.min(1024, first.microBatchSize ?? 1024);
  const evalSets = requests.map(
    (r) => new Map([...r.tests].map(([type, data]) => [type, evenlySpaced(data, r.config.evalSize)] as const)),
  );
  const rngs = requests.map((r) => makeRng(r.config.seed, 0));
  const net: Network = stacked
    ? ensembleNetwork(first.model, rngs, evalBatch)
    : modelNetwork(first.model, rngs[0], evalBatch);
  const optimizer = stacked ? requests.map((r) => r.config.optimizer) : first.optimizer;
  const opt = new AdamW(net.params, optimizer, (n) => net.decays(n));
  const curve = new CurveRecorder(net.measure, evalSets, stacked);
  const sums = { 'train.loss_sum': curve.lossSum, 'train.accuracy_sum': curve.accuracySum };
  return {
    net,
    opt,
    curve,
    trains: requests.map((r) => r.train),
    samplers: requests.map((r) => new BatchSampler(r.train.n, makeRng(r.config.seed, 1))),
    saved: requests.map((_, m) => checkpointVariables(net.params, opt, sums, stacked ? m : undefined)),
    fingerprints: requests.map((r) => fingerprint(r.config, r.train)),
    microBatch,
  };
}

/** The loop of `trainModel` (one request, plain shapes) and `trainEnsemble` (`stacked`). */
async function trainRuns(requests: readonly TrainRequest[], stacked: boolean): Promise<TrainResult[]> {
  const { batchSize, maxSteps, evalEvery, checkpointEvery } = requests[0].config;
  const { net, opt, curve, trains, saved, fingerprints, microBatch, ...state } = prepare(requests, stacked);
  let samplers = state.samplers;
  const events = requests.map((r) => r.options?.events ?? {});
  const signals = requests.flatMap((r) => (r.options?.signal ? [r.options.signal] : []));

  try {
    const resumed = resume(requests, { fingerprints, maxSteps }, saved);
    const start = resumed?.[0].step ?? 0;
    if (resumed) {
      opt.step = start;
      samplers = resumed.map((state, m) => BatchSampler.fromState(trains[m].n, state.sampler));
      resumed.forEach((state, m) => curve.restore(m, state.curve, state.batches));
    }
    const epochs = (step: number) => trains.map((t) => (step * batchSize) / t.n);
    const save = async (step: number) => {
      for (const [m, r] of requests.entries())
        if (r.options?.checkpointDir)
          await saveCheckpoint(r.options.checkpointDir, saved[m], {
            step,
            fingerprint: fingerprints[m],
            sampler: samplers[m].state(),
            batches: curve.batches,
            curve: curve.rows[m],
          });
    };
    const evaluate = async (step: number) => {
      const firstBatches = () => samplers.map((s, m) => selectRows(trains[m], s.peek(batchSize)));
      const rows = await curve.evaluate(step, epochs(step), firstBatches);
      events.forEach((e, m) => e.onEval?.(step, rows[m]));
    };
    const report = (step: number) =>
      events.forEach((e, m) =>
        e.onStep?.({ step, total: maxSteps, epoch: epochs(step)[m], ...curve.running[m], evaluated: curve.latest[m] }),
      );

    const t0 = performance.now();
    // A checkpoint (even one of step 0, left by an interrupt before step 1 ended) holds the step-0 rows.
    if (!resumed) await evaluate(0);
    report(start);
    for (let step = start + 1; step <= maxSteps; step++) {
      const aborted = signals.find((s) => s.aborted);
      if (aborted) {
        await save(step - 1);
        aborted.throwIfAborted();
      }
      optimizerStep(
        net,
        opt,
        curve,
        trains,
        samplers.map((s) => s.next(batchSize)),
        microBatch,
      );
      if (step % evalEvery === 0 || step === maxSteps) await evaluate(step);
      else await curve.refreshRunning();
      if (isCheckpointStep(step, checkpointEvery, maxSteps)) await save(step);
      report(step);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const seconds = (performance.now() - t0) / 1000;
    const results = requests.map((_, m) => ({
      model: net.result(m),
      curve: curve.rows[m],
      resumedFrom: start,
      stepsRun: maxSteps - start,
      seconds,
    }));
    if (stacked) net.dispose();
    return results;
  } catch (err) {
    net.dispose();
    throw err;
  } finally {
    opt.dispose();
    curve.dispose();
  }
}

/**
 * One optimizer step on each run's batch `indices[m]` (`[batch]` row numbers of `trains[m]`):
 * gradients summed over passes of at most `microBatch` examples, AdamW, and each batch's loss and
 * accuracy into `curve`.
 */
function optimizerStep(
  net: Network,
  opt: AdamW,
  curve: CurveRecorder,
  trains: readonly Examples[],
  indices: Int32Array[],
  microBatch: number,
): void {
  tf.tidy(() => {
    const { grads, loss, accuracy } = net.gradients(trains, indices, microBatch);
    // The seam of gradient filters (Grokfast, models/grad-filter.ts): filter `grads` here, per
    // member for an ensemble (state stacked [members, ...], the filter's scalars `[members, 1]`).
    opt.apply(grads);
    curve.addBatch(loss, accuracy);
    // tf.keep'd by a one-pass batch: not the tidy's to free.
    tf.dispose([accuracy, ...(perMember(loss) ? [loss] : [])]);
  });
}

/** Whether a pass's loss is per member (`[members]`, kept like the accuracy) rather than a scalar. */
const perMember = (loss: tf.Tensor) => loss.rank > 0;

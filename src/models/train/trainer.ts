/**
 * The training loop, independent of the pipeline engine (docs/design.md §4 "train").
 *
 * Seeded initialisation (RNG stream 0) and data order (stream 1, `BatchSampler`); loss =
 * cross-entropy at the answer position only (`loss.ts`), possibly over micro-batches whose
 * gradients are summed; the Grokfast gradient filter when configured (`../grad-filter.ts`);
 * AdamW. At step 0, every `evalEvery` steps and at the last step it records the grokking curve
 * (`evaluation.ts`): the mean training-batch loss and accuracy since the previous evaluation,
 * every test type on at most `evalSize` examples, evenly spaced over its test set, and the
 * weight norms.
 *
 * With a checkpoint folder it saves weights, optimizer moments, the gradient filter's averages,
 * step, data-order RNG state and the curve so far every `checkpointEvery` steps and on abort, and
 * resumes from the newest checkpoint there (`checkpoint.ts`); a resumed run ends with the same
 * weights, bit for bit, as an uninterrupted one on the same backend (training is a pure function
 * of params, data and step). The learning rate does not depend on `maxSteps`, so neither does the
 * state after a step below it: a run hands its final state to `onFinalState`, and a longer run of
 * the same config continues from it (`continueFrom`) and ends as one trained from step 0, bit for
 * bit. `keep` receives the model at the steps the caller keeps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../adamw.js';
import type { AdamWConfig } from '../adamw.js';
import { createModel } from '../arch/factories.js';
import { createGradFilter } from '../grad-filter.js';
import type { EmaGradFilter, GradFilterConfig } from '../grad-filter.js';
import type { ModelConfig } from '../arch/registry.js';
import type { LanguageModel } from '../model.js';
import { makeRng } from '../train-rng.js';
import { checkpointVariables, encodeCheckpoint, fingerprint, isCheckpointStep, loadFurthest } from './checkpoint.js';
import { saveCheckpoint } from './checkpoint.js';
import type { CheckpointState, StateSlot } from './checkpoint.js';
import { CurveRecorder, evenlySpaced } from './evaluation.js';
import type { CurveRow } from './evaluation.js';
import { BatchSampler, selectRows } from './examples.js';
import type { Examples } from './examples.js';
import { batchGradients } from './loss.js';

/** What the trainer needs besides the data. */
export interface TrainerConfig {
  /** Architecture (vocab_size and seq_len included). */
  model: ModelConfig;
  /** AdamW hyperparameters. */
  optimizer: AdamWConfig;
  /** Grokfast gradient filter, applied before clipping and AdamW (`../grad-filter.ts`); none when absent. */
  gradFilter?: GradFilterConfig;
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
  /**
   * A folder holding the final state of a finished run of the same config but fewer `maxSteps`
   * (the files `onFinalState` received): training goes on from there, unless `checkpointDir` holds
   * a checkpoint further along. A state that does not fit is logged and ignored (step 0).
   */
  continueFrom?: string;
  /**
   * Receives the final state as a checkpoint's files (`encodeCheckpoint`): the state after step
   * `maxSteps` of a run that goes on, so taken before the last evaluation when that one is off the
   * `evalEvery` schedule (a longer run does not evaluate there).
   */
  onFinalState?(files: [name: string, bytes: Uint8Array | string][]): Promise<void>;
  /** Kept checkpoints: `save` gets the model after each of `steps` below `maxSteps`. */
  keep?: { steps: readonly number[]; save(step: number, model: LanguageModel): Promise<void> };
}

/** The trained model and what happened. */
export interface TrainResult {
  /** The final model; the caller disposes it. */
  model: LanguageModel;
  /** Every curve row, in step order. */
  curve: CurveRow[];
  /** Step the run resumed from (0 for a fresh start). */
  resumedFrom: number;
  /** Whether it resumed from `continueFrom` (a finished shorter run's final state). */
  continued: boolean;
  /** Steps run by this call. */
  stepsRun: number;
  /** Wall-clock seconds of this call's training loop, evaluations included. */
  seconds: number;
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
 * One optimizer step on the batch `indices` (`[batch]` row numbers of `train`): gradients summed over
 * passes of at most `microBatch` examples, the gradient filter if any, AdamW, and the batch's loss
 * and accuracy into `curve`.
 */
function optimizerStep(
  model: LanguageModel,
  opt: AdamW,
  filter: EmaGradFilter | undefined,
  curve: CurveRecorder,
  train: Examples,
  indices: Int32Array,
  microBatch: number,
): void {
  tf.tidy(() => {
    const { grads, loss, accuracy } = batchGradients(model, train, indices, microBatch);
    opt.apply(filter ? filter.apply(grads) : grads);
    curve.addBatch(loss, accuracy);
    accuracy.dispose(); // tf.keep'd by a one-pass batch: not the tidy's to free
  });
}

/** A gradient filter's averages as checkpoint variables, `grad_filter.ema.<parameter>` (none without a filter). */
function filterVariables(filter: EmaGradFilter | undefined): Record<string, tf.Variable> {
  return Object.fromEntries([...(filter?.ema ?? [])].map(([name, v]) => [`grad_filter.ema.${name}`, v]));
}

/**
 * What a run saves as it goes, given where the run stands (`now`): `save(step)`, a resumable
 * checkpoint into `checkpointDir`; `saveFinal(step)`, the final state for `onFinalState`;
 * `keepAt(step)`, the model to `keep.save` when `step` is a kept step below `maxSteps`.
 */
function savers(
  options: TrainOptions,
  run: { saved: ReadonlyMap<string, StateSlot>; print: string; model: LanguageModel; maxSteps: number },
  now: () => Omit<CheckpointState, 'version' | 'step' | 'fingerprint'>,
) {
  const stateAt = (step: number) => ({ step, fingerprint: run.print, ...now() });
  const keep = new Set(options.keep?.steps.filter((s) => s < run.maxSteps));
  return {
    save: async (step: number) => {
      if (options.checkpointDir) await saveCheckpoint(options.checkpointDir, run.saved, stateAt(step));
    },
    saveFinal: async (step: number) => {
      if (options.onFinalState) await options.onFinalState(await encodeCheckpoint(run.saved, stateAt(step)));
    },
    keepAt: async (step: number) => {
      if (keep.has(step)) await options.keep?.save(step, run.model);
    },
  };
}

/**
 * Sets the optimizer's and the gradient filter's step counts and the curve's running sums from a
 * loaded state (the variables themselves were loaded with it). @returns the state's data order.
 */
function restoreState(
  state: CheckpointState,
  run: { opt: AdamW; filter: EmaGradFilter | undefined; curve: CurveRecorder },
  trainSize: number,
): BatchSampler {
  run.opt.step = state.step;
  if (run.filter) run.filter.steps = state.step;
  run.curve.restore(state.curve, state.batches);
  return BatchSampler.fromState(trainSize, state.sampler);
}

/**
 * Trains a model from scratch, or resumes from `options.checkpointDir` or `options.continueFrom`.
 * @param tests test sets by type, evaluated in this order.
 * @throws the abort reason when `options.signal` fires; Error on inconsistent data/config.
 */
export async function trainModel(
  config: TrainerConfig,
  train: Examples,
  tests: ReadonlyMap<string, Examples>,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const { batchSize, maxSteps, evalEvery, checkpointEvery } = config;
  const events = options.events ?? {};
  const microBatch = passSize(config, train);
  // Evaluation passes are no larger than training's: a micro-batch set for memory bounds them too.
  const evalBatch = config.evalBatchSize ?? Math.min(1024, config.microBatchSize ?? 1024);
  const evalSets = new Map([...tests].map(([type, data]) => [type, evenlySpaced(data, config.evalSize)] as const));

  const model = createModel(config.model, makeRng(config.seed, 0));
  const opt = new AdamW(model.params, config.optimizer, (n) => model.decays(n));
  const filter = createGradFilter(model.params, config.gradFilter);
  let sampler = new BatchSampler(train.n, makeRng(config.seed, 1));
  const curve = new CurveRecorder(model, evalSets, evalBatch);
  const saved = checkpointVariables(model.params, opt, {
    'train.loss_sum': curve.lossSum,
    'train.accuracy_sum': curve.accuracySum,
    ...filterVariables(filter),
  });
  const free = () => [opt, filter, curve].forEach((x) => x?.dispose());
  const print = fingerprint(config, train);

  try {
    const sources = [
      { dir: options.checkpointDir, maxStep: maxSteps },
      { dir: options.continueFrom, maxStep: maxSteps - 1 }, // a run that ended at maxSteps is this run
    ];
    const found = loadFurthest(sources, print, saved, events.onLog);
    const resumed = found?.state;
    const start = resumed?.step ?? 0;
    if (resumed) sampler = restoreState(resumed, { opt, filter, curve }, train.n);
    const epochAt = (step: number) => (step * batchSize) / train.n;
    const now = () => ({ sampler: sampler.state(), batches: curve.batches, curve: curve.rows });
    const { save, saveFinal, keepAt } = savers(options, { saved, print, model, maxSteps }, now);
    const evaluate = async (step: number) => {
      const rows = await curve.evaluate(step, epochAt(step), () => selectRows(train, sampler.peek(batchSize)));
      events.onEval?.(step, rows);
    };
    const report = (step: number) =>
      events.onStep?.({ step, total: maxSteps, epoch: epochAt(step), ...curve.running, evaluated: curve.latest });

    const t0 = performance.now();
    // A checkpoint (even one of step 0, left by an interrupt before step 1 ended) holds the step-0 rows.
    if (!resumed) await evaluate(0);
    if (!resumed) await keepAt(0);
    report(start);
    for (let step = start + 1; step <= maxSteps; step++) {
      if (options.signal?.aborted) {
        await save(step - 1);
        options.signal.throwIfAborted();
      }
      optimizerStep(model, opt, filter, curve, train, sampler.next(batchSize), microBatch);
      const onSchedule = step % evalEvery === 0;
      if (step === maxSteps && !onSchedule) await saveFinal(step); // a longer run does not evaluate here
      if (onSchedule || step === maxSteps) await evaluate(step);
      else await curve.refreshRunning();
      await keepAt(step);
      if (isCheckpointStep(step, checkpointEvery, maxSteps)) await save(step);
      report(step);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const seconds = (performance.now() - t0) / 1000;
    if (maxSteps % evalEvery === 0) await saveFinal(maxSteps);
    free();
    const continued = resumed !== undefined && found?.dir === options.continueFrom;
    return { model, curve: curve.rows, resumedFrom: start, continued, stepsRun: maxSteps - start, seconds };
  } catch (err) {
    free();
    model.dispose();
    throw err;
  }
}

/**
 * What the training loop (`trainer.ts`) is asked and answers: the trainer config, the options and
 * events of a run, its result, and a run as one request of an ensemble. Apart from the loop so
 * that both stay short; `trainer.ts` re-exports every type.
 */
import type { AdamWConfig } from '../adamw.js';
import type { ModelConfig } from '../arch/registry.js';
import type { GradFilterConfig } from '../grad-filter.js';
import type { LanguageModel } from '../model.js';
import type { CurveRow } from './evaluation.js';
import type { Examples } from './examples.js';

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

/** One run to train: what `trainModel` takes, as one member of `trainEnsemble`. */
export interface TrainRequest {
  config: TrainerConfig;
  train: Examples;
  /** Test sets by type, evaluated in this order. */
  tests: ReadonlyMap<string, Examples>;
  options?: TrainOptions;
}

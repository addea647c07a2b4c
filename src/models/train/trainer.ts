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
 *
 * `trainEnsemble` trains several runs whose models have the same shapes as one batched network
 * (`members.ts`, `network.ts`): each member with its own seed (initialisation, data order), data,
 * learning rate and weight decay, its curve and checkpoints its own, in the format of one run's,
 * all evaluated together. One loop serves both: a run alone is an ensemble of one whose network
 * keeps the plain shapes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../adamw.js';
import { createGradFilter } from '../grad-filter.js';
import type { EmaGradFilter } from '../grad-filter.js';
import { makeRng } from '../train-rng.js';
import { checkpointVariables, encodeCheckpoint, findFurthest, fingerprint, isCheckpointStep } from './checkpoint.js';
import { saveCheckpoint } from './checkpoint.js';
import type { FoundCheckpoint, StateSlot } from './checkpoint.js';
import { CurveRecorder, evenlySpaced } from './evaluation.js';
import { BatchSampler, selectRows } from './examples.js';
import type { Examples } from './examples.js';
import { ensembleNetwork, modelNetwork } from './network.js';
import type { Network } from './network.js';

export type { StepInfo, TrainerConfig, TrainEvents, TrainOptions, TrainRequest, TrainResult } from './requests.js';
import type { TrainerConfig, TrainOptions, TrainRequest, TrainResult } from './requests.js';

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

/**
 * Each run's furthest checkpoint (its own checkpoint folder, else a finished shorter run's final
 * state, `continueFrom`), loaded when all are of one step; else none (logged).
 */
function resume(
  requests: readonly TrainRequest[],
  run: { fingerprints: string[]; maxSteps: number },
  saved: Map<string, StateSlot>[],
): (FoundCheckpoint & { dir: string })[] | undefined {
  const log = (m: number, message: string) => requests[m].options?.events?.onLog?.(message);
  const found = requests.map((r, m) => {
    const sources = [
      { dir: r.options?.checkpointDir, maxStep: run.maxSteps },
      { dir: r.options?.continueFrom, maxStep: run.maxSteps - 1 }, // a run that ended at maxSteps is this run
    ];
    return findFurthest(sources, run.fingerprints[m], saved[m], (message) => log(m, message));
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
    return f!;
  });
}

/** What the loop of `trainRuns` works on: the network, its optimizer, filter and curves, and each run's data order. */
interface Training {
  net: Network;
  opt: AdamW;
  filter: EmaGradFilter | undefined;
  curve: CurveRecorder;
  trains: Examples[];
  samplers: BatchSampler[];
  /** Each run's checkpoint tensors. */
  saved: Map<string, StateSlot>[];
  fingerprints: string[];
  microBatch: number;
}

/** Builds the network (initialised from each run's seed), optimizer, filter, curves and data order of `requests`. */
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
  // One filter config for all members (`ensembleKey`): its averages are stacked like the parameters.
  const filter = createGradFilter(net.params, first.gradFilter);
  const curve = new CurveRecorder(net.measure, net.norms, evalSets, stacked);
  const extra = {
    'train.loss_sum': curve.lossSum,
    'train.accuracy_sum': curve.accuracySum,
    ...Object.fromEntries([...(filter?.ema ?? [])].map(([name, v]) => [`grad_filter.ema.${name}`, v])),
  };
  return {
    net,
    opt,
    filter,
    curve,
    trains: requests.map((r) => r.train),
    samplers: requests.map((r) => new BatchSampler(r.train.n, makeRng(r.config.seed, 1))),
    saved: requests.map((_, m) => checkpointVariables(net.params, opt, extra, stacked ? m : undefined)),
    fingerprints: requests.map((r) => fingerprint(r.config, r.train)),
    microBatch,
  };
}

/**
 * What the runs save as they go: `save(step)`, each run's resumable checkpoint into its
 * `checkpointDir`; `saveFinal(step)`, its final state for `onFinalState`; `keepAt(step)`, its model
 * to `keep.save` when `step` is one of its kept steps below `maxSteps`.
 */
function savers(requests: readonly TrainRequest[], t: Training, maxSteps: number, stacked: boolean) {
  const stateAt = (m: number, step: number) => ({
    step,
    fingerprint: t.fingerprints[m],
    sampler: t.samplers[m].state(),
    batches: t.curve.batches,
    curve: t.curve.rows[m],
  });
  const keeps = requests.map((r) => new Set(r.options?.keep?.steps.filter((s) => s < maxSteps)));
  return {
    save: async (step: number) => {
      for (const [m, r] of requests.entries())
        if (r.options?.checkpointDir) await saveCheckpoint(r.options.checkpointDir, t.saved[m], stateAt(m, step));
    },
    saveFinal: async (step: number) => {
      for (const [m, r] of requests.entries())
        if (r.options?.onFinalState) await r.options.onFinalState(await encodeCheckpoint(t.saved[m], stateAt(m, step)));
    },
    keepAt: async (step: number) => {
      for (const [m, r] of requests.entries()) {
        if (!keeps[m].has(step)) continue;
        const model = t.net.result(m);
        await r.options?.keep?.save(step, model);
        if (stacked) model.dispose(); // a copy of member m; one model's is the trained model itself
      }
    },
  };
}

/** The loop of `trainModel` (one request, plain shapes) and `trainEnsemble` (`stacked`). */
async function trainRuns(requests: readonly TrainRequest[], stacked: boolean): Promise<TrainResult[]> {
  const { batchSize, maxSteps, evalEvery, checkpointEvery } = requests[0].config;
  const t = prepare(requests, stacked);
  const { net, opt, filter, curve, trains } = t;
  const events = requests.map((r) => r.options?.events ?? {});
  const signals = requests.flatMap((r) => (r.options?.signal ? [r.options.signal] : []));
  const free = () => [opt, filter, curve].forEach((x) => x?.dispose());

  try {
    const resumed = resume(requests, { fingerprints: t.fingerprints, maxSteps }, t.saved);
    const start = resumed?.[0].state.step ?? 0;
    if (resumed) {
      opt.step = start;
      if (filter) filter.steps = start;
      t.samplers = resumed.map((f, m) => BatchSampler.fromState(trains[m].n, f.state.sampler));
      resumed.forEach((f, m) => curve.restore(m, f.state.curve, f.state.batches));
    }
    const { save, saveFinal, keepAt } = savers(requests, t, maxSteps, stacked);
    const epochs = (step: number) => trains.map((x) => (step * batchSize) / x.n);
    const evaluate = async (step: number) => {
      const firstBatches = () => t.samplers.map((s, m) => selectRows(trains[m], s.peek(batchSize)));
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
    if (!resumed) await keepAt(0);
    report(start);
    for (let step = start + 1; step <= maxSteps; step++) {
      const aborted = signals.find((s) => s.aborted);
      if (aborted) {
        await save(step - 1);
        aborted.throwIfAborted();
      }
      optimizerStep(
        t,
        t.samplers.map((s) => s.next(batchSize)),
      );
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
    const results = requests.map((r, m) => ({
      model: net.result(m),
      curve: curve.rows[m],
      resumedFrom: start,
      continued: resumed !== undefined && resumed[m].dir === r.options?.continueFrom,
      stepsRun: maxSteps - start,
      seconds,
    }));
    if (stacked) net.dispose();
    return results;
  } catch (err) {
    net.dispose();
    throw err;
  } finally {
    free();
  }
}

/**
 * One optimizer step on each run's batch `indices[m]` (`[batch]` row numbers of its training
 * examples): gradients summed over passes of at most `microBatch` examples, the gradient filter if
 * any (per member for an ensemble: its averages are stacked), AdamW, and each batch's loss and
 * accuracy into the curves.
 */
function optimizerStep({ net, opt, filter, curve, trains, microBatch }: Training, indices: Int32Array[]): void {
  tf.tidy(() => {
    const { grads, loss, accuracy } = net.gradients(trains, indices, microBatch);
    opt.apply(filter ? filter.apply(grads) : grads);
    curve.addBatch(loss, accuracy);
    // tf.keep'd by a one-pass batch: not the tidy's to free.
    tf.dispose([accuracy, ...(perMember(loss) ? [loss] : [])]);
  });
}

/** Whether a pass's loss is per member (`[members]`, kept like the accuracy) rather than a scalar. */
const perMember = (loss: tf.Tensor) => loss.rank > 0;

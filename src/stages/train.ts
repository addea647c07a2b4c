/**
 * Stage `train`: a decoder-only model trained from scratch on the tokenized facts, with the
 * grokking curve (docs/design.md §4 "train"; outputs in docs/artifacts.md "train").
 *
 * Input: a `tokenize` artifact (`vocab.parquet`, `train.parquet`, `test.parquet`). Outputs:
 * `weights.safetensors` (float32, the architecture's reference parameter names, e.g. Hugging Face
 * GPT-2's; config in the metadata), `model.json`
 * (the architecture config with vocabulary size and sequence length) and `curve.parquet`
 * (`step INT32, epoch DOUBLE, type STRING, accuracy DOUBLE, loss DOUBLE`, then the weight norms:
 * `weight_norm DOUBLE`, `weight_norm_block_<i> DOUBLE` for each block, `weight_norm_other DOUBLE`).
 *
 * Version 2 (was 1): the weight norms in the curve. (The Grokfast filter, `optimizer.grad_filter`,
 * came with it; absent, it changes nothing.)
 *
 * Records the backend, speed, final accuracy and loss, and the model's size (`model_size`:
 * parameters and forward FLOPs per token, `models/arch/registry.ts`) in the manifest. The
 * architectures' declarations (`models/arch/`) give the config, checks and size of `model`.
 *
 * Also `checkpoints/step-<7 digits>.safetensors`, the weights kept at the steps `keep_checkpoints`
 * names (`keptSteps`), and `state/`, the final training state. Prefix reuse: a run whose
 * params differ from a cached run's only by a larger `max_steps` continues from that run's final
 * state (`continues`, `ctx.continueFrom`): the learning rate does not depend on `max_steps` and the
 * final state is taken as a longer run stands at that step, so every output comes out as from
 * step 0, bit for bit on the same backend.
 *
 * TF.js is imported lazily inside `run`, so planning a cached pipeline never loads it. With
 * `ctx.checkpointDir` the run checkpoints every `checkpoint_every` steps and resumes there; the
 * kept checkpoints are mirrored there (`kept-step-<7 digits>.safetensors`) for a resumed run.
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import canonicalizeModule from 'canonicalize';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import type { Column, Table } from '../table/table.js';
import { CURVE_FILE, WEIGHT_NORM, weightNormColumn } from '../analysis/files.js';
import type { AdamWConfig } from '../models/adamw.js';
import { checkModel, countModel, describeModel, modelConfig, trainsAsEnsemble } from '../models/arch/registry.js';
import type { ModelParams } from '../models/arch/registry.js';
import type { GradFilterConfig } from '../models/grad-filter.js';
import { stepHeapBytes, wasmMicroBatch } from '../models/memory.js';
import type { CurveRow } from '../models/train/evaluation.js';
import type { Examples } from '../models/train/examples.js';
import type { TrainerConfig, TrainOptions, TrainResult } from '../models/train/trainer.js';
import { groupByType, readExamples, readVocab } from './examples.js';
import { MODEL_FILE, WEIGHTS_FILE } from './files.js';
import { keptFiles } from './kept-files.js';

/** A run's kept checkpoints and final state (`keptFiles`). */
type Kept = ReturnType<typeof keptFiles>;

/** Validated params of `train` (`schemas/stages/train.schema.json`). */
export interface TrainParams {
  /** The architecture and its knobs (`models/arch/`). */
  model: ModelParams;
  optimizer: AdamWConfig & { batch_size: number; micro_batch_size?: number; grad_filter?: GradFilterConfig };
  max_steps: number;
  eval_every: number;
  eval_size: number;
  seed: number;
  checkpoint_every: number;
  /** Steps whose weights are kept (`keptSteps`). */
  keep_checkpoints: KeepCheckpoints;
}

/** RFC 8785 canonical JSON (the package's CommonJS default export, as Node's ESM loader presents it). */
const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (
  input: unknown,
) => string;

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/train.schema.json', import.meta.url), 'utf8'),
) as object;

/**
 * Kept checkpoints: the steps at which the run keeps a copy of the model's weights, so that the
 * model can be studied mid-grokking (`keep_checkpoints`). The default, `log`, keeps step 0 (the
 * initialisation) and every step of the 1-2-5 series (1, 2, 5, 10, 20, 50, 100, ...: three a
 * decade, evenly spaced on a log axis within a factor of 2.5) below `max_steps`: 10 checkpoints
 * for 1,000 steps, 12 for 3,000, 13 for 10,000. The series does not depend on `max_steps` beyond
 * where it stops, so a longer run keeps every step a shorter one kept, and can continue it (prefix
 * reuse). The final step is never among them: the final weights are kept anyway. (Here, not in
 * `models/`: planning checks the knob, and must not load the model modules.)
 */
/** Which steps to keep: `log` (the default rule above), `none`, or a list of steps (any order). */
export type KeepCheckpoints = 'log' | 'none' | readonly number[];

/**
 * The steps to keep for a run of `maxSteps` steps, ascending, each in `[0, maxSteps)`. Steps of a
 * list at or beyond `maxSteps` are left out, not refused: a list names steps of the one trajectory
 * that every run of these params follows, so the same list serves a short run and the longer run
 * that continues it.
 */
export function keptSteps(keep: KeepCheckpoints, maxSteps: number): number[] {
  if (keep === 'none') return [];
  if (keep !== 'log') return [...new Set(keep)].filter((s) => s >= 0 && s < maxSteps).sort((a, b) => a - b);
  const steps = maxSteps > 0 ? [0] : [];
  for (let decade = 1; decade < maxSteps; decade *= 10) {
    for (const d of [1, 2, 5]) if (d * decade < maxSteps) steps.push(d * decade);
  }
  return steps;
}

/** The trainer config of validated params for a vocabulary of `vocabSize` and inputs of `seqLen` tokens. */
export function trainerConfig(params: TrainParams, vocabSize: number, seqLen: number): TrainerConfig {
  const { batch_size, micro_batch_size, grad_filter, ...optimizer } = params.optimizer;
  return {
    model: modelConfig(params.model, vocabSize, seqLen),
    optimizer,
    // Absent unless set (as micro_batch_size below): the config and fingerprint of other runs are unchanged.
    ...(grad_filter !== undefined && { gradFilter: grad_filter }),
    batchSize: batch_size,
    // Absent unless set, as in the params: the config (and checkpoint fingerprint) of other runs is unchanged.
    ...(micro_batch_size !== undefined && { microBatchSize: micro_batch_size }),
    maxSteps: params.max_steps,
    evalEvery: params.eval_every,
    evalSize: params.eval_size,
    seed: params.seed,
    checkpointEvery: params.checkpoint_every,
  };
}

/**
 * The curve as the `curve.parquet` table: `step, epoch, type, accuracy, loss`, then the weight
 * norms of the step (`WEIGHT_NORM` for all parameters, `weightNormColumn(block i)`, then
 * `weightNormColumn('other')`; docs/artifacts.md).
 */
export function curveTable(curve: readonly CurveRow[]): Table {
  const blocks = curve[0]?.norms.blocks.length ?? 0;
  const norm = (name: string, f: (r: CurveRow) => number | undefined): Column => ({
    name,
    type: 'DOUBLE',
    data: Float64Array.from(curve, (r) => f(r) ?? Number.NaN),
  });
  return {
    columns: [
      { name: 'step', type: 'INT32', data: Int32Array.from(curve, (r) => r.step) },
      { name: 'epoch', type: 'DOUBLE', data: Float64Array.from(curve, (r) => r.epoch) },
      { name: 'type', type: 'STRING', data: curve.map((r) => r.type) },
      { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from(curve, (r) => r.accuracy) },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(curve, (r) => r.loss) },
      norm(WEIGHT_NORM, (r) => r.norms.total),
      ...Array.from({ length: blocks }, (_, i) => norm(weightNormColumn(i), (r) => r.norms.blocks[i])),
      norm(weightNormColumn('other'), (r) => r.norms.other),
    ],
  };
}

/** What a train run reads: its trainer config, training examples and test sets by type. */
interface RunData {
  config: TrainerConfig;
  train: Examples;
  tests: Map<string, Examples>;
}

/** Reads a run's `tokenize` input. @throws Error when its tables disagree. */
async function readRun(ctx: StageContext<TrainParams>): Promise<RunData> {
  const input = ctx.input('tokenize');
  const [vocab, train, test] = await Promise.all([
    readVocab(input),
    readExamples(input, 'train.parquet'),
    readExamples(input, 'test.parquet'),
  ]);
  if (test.seqLen !== train.seqLen)
    throw new Error(`train: train.parquet has ${train.seqLen} token columns, test.parquet ${test.seqLen}`);
  return { config: trainerConfig(ctx.params, vocab.length, train.seqLen), train, tests: groupByType(test) };
}

/** Starts the requested backend and records it in the manifest of every context. */
async function startBackend(ctxs: readonly StageContext<TrainParams>[]): Promise<string> {
  const { backendDescription, initBackend } = await import('../models/backend.js');
  const backend = await initBackend(ctxs[0].options.backend ?? 'auto', { threads: ctxs[0].options.threads });
  for (const ctx of ctxs) {
    ctx.record('backend', backend);
    // What ran the numbers (for wasm-blas: the BLAS library, its version, CPU kernels and threads).
    ctx.record('backend_detail', backendDescription() ?? backend);
  }
  return backend;
}

/** The run's first log line: model, data, batch, filter, steps, backend (and its place in an ensemble). */
function logStart(ctx: StageContext<TrainParams>, { config, train }: RunData, backend: string, note = ''): void {
  ctx.log(
    `train: ${describeModel(config.model)}; ` +
      `${train.n} facts, batch ${config.batchSize}` +
      (config.microBatchSize !== undefined && config.microBatchSize < config.batchSize
        ? ` in micro-batches of ${config.microBatchSize}`
        : '') +
      (config.gradFilter
        ? `, Grokfast ${config.gradFilter.kind} (alpha ${config.gradFilter.alpha}, lambda ${config.gradFilter.lambda})`
        : '') +
      `, ${config.maxSteps} steps on ${backend}${note}`,
  );
}

/** A run's kept checkpoints and final state (`keptFiles`), their mirror prepared. */
async function keptOf(ctx: StageContext<TrainParams>, config: TrainerConfig): Promise<Kept> {
  const { modelToSafetensors } = await import('../models/weights.js');
  const kept = keptFiles(ctx, keptSteps(ctx.params.keep_checkpoints, config.maxSteps), modelToSafetensors);
  await kept.prepare();
  return kept;
}

/** The trainer's options for a context: kept checkpoints, final state, checkpoint folder, abort signal, progress and log. */
function trainOptions(ctx: StageContext<TrainParams>, kept: Kept): TrainOptions {
  return {
    ...kept.options,
    checkpointDir: ctx.checkpointDir,
    signal: ctx.signal,
    events: {
      onStep: (s) => {
        const metrics: Record<string, number> = {};
        if (s.loss !== undefined) metrics.loss = s.loss;
        if (s.accuracy !== undefined) metrics.train = s.accuracy;
        if (s.evaluated.id_inferred !== undefined) metrics.id = s.evaluated.id_inferred;
        if (s.evaluated.ood_inferred !== undefined) metrics.ood = s.evaluated.ood_inferred;
        ctx.progress({ step: s.step, total: s.total, metrics });
      },
      onLog: (message) => ctx.log(`train: ${message}`),
    },
  };
}

/** Writes a trained run's outputs and records its speed, accuracies and size; disposes the model. */
async function writeResult(
  ctx: StageContext<TrainParams>,
  config: TrainerConfig,
  result: TrainResult,
  kept: Kept,
): Promise<void> {
  const { modelToSafetensors } = await import('../models/weights.js');
  let nParams = 0;
  try {
    await kept.finish();
    for (const p of result.model.params.values()) nParams += p.size;
    await ctx.writeFile(WEIGHTS_FILE, await modelToSafetensors(result.model));
    await ctx.writeFile(MODEL_FILE, `${JSON.stringify(config.model, null, 2)}\n`);
    await ctx.writeTable(CURVE_FILE, curveTable(result.curve));
  } finally {
    result.model.dispose();
  }
  const steps = result.stepsRun;
  ctx.record('steps_per_second', steps > 0 && result.seconds > 0 ? Number((steps / result.seconds).toFixed(3)) : null);
  ctx.record('train_seconds', Number(result.seconds.toFixed(1)));
  ctx.record('resumed_from_step', result.resumedFrom);
  if (result.continued && ctx.continueFrom)
    ctx.record('continued_from', { key: ctx.continueFrom.key, step: result.resumedFrom });
  const last = result.curve.filter((r) => r.step === config.maxSteps);
  ctx.record('final_accuracy', Object.fromEntries(last.map((r) => [r.type, r.accuracy])));
  ctx.record('final_loss', Object.fromEntries(last.map((r) => [r.type, r.loss])));
  ctx.record('parameters', nParams);
  ctx.record('model_size', { ...countModel(config.model) });
}

async function run(ctx: StageContext<TrainParams>): Promise<void> {
  const data = await readRun(ctx);
  const backend = await startBackend([ctx]);
  logStart(ctx, data, backend);
  const { trainModel } = await import('../models/train/trainer.js');
  const kept = await keptOf(ctx, data.config);
  const result = await withHeapAdvice(data.config, backend, 1, () =>
    trainModel(data.config, data.train, data.tests, trainOptions(ctx, kept)),
  );
  await writeResult(ctx, data.config, result, kept);
}

/**
 * Runs `train` and turns the wasm backend's abort on an exhausted heap (a bare
 * `RuntimeError: Aborted()`) into advice: the heap the step needs and a `micro_batch_size` that
 * fits (for an ensemble of `members`, which needs about `members` times one run's heap: or fewer
 * members at once).
 * @throws Error with that advice; any other error unchanged.
 */
async function withHeapAdvice<T>(
  config: TrainerConfig,
  backend: string,
  members: number,
  train: () => Promise<T>,
): Promise<T> {
  try {
    return await train();
  } catch (err) {
    const aborted = err instanceof Error && err.name === 'RuntimeError' && /Aborted\(/.test(err.message);
    if (!aborted || !backend.startsWith('wasm')) throw err;
    const micro = config.microBatchSize ?? config.batchSize;
    const need = members * stepHeapBytes(config.model, micro);
    const fits = wasmMicroBatch(config.model, micro);
    const who = members > 1 ? `an ensemble of ${members} such models` : 'this model';
    throw new Error(
      `train: the wasm heap (4 GiB at most) ran out: ${who} at ${micro} examples a pass needs about ` +
        `${(need / 1e9).toFixed(1)} GB. Set optimizer.micro_batch_size to ${fits < micro ? fits : Math.max(1, micro >> 1)} ` +
        `(gradients are accumulated, the step stays the full batch's)` +
        (members > 1 ? ', train fewer runs at once (--ensemble-max)' : '') +
        `, or train on @tensorflow/tfjs-node (--backend tensorflow).`,
      { cause: err },
    );
  }
}

/**
 * The group key of a train run (`StageDefinition.group`): runs with equal keys may train as one
 * ensemble. Everything but the seed, `optimizer.lr`, `optimizer.weight_decay` (per member) and
 * `keep_checkpoints` (kept per member): architecture and widths, optimizer and gradient filter
 * (one filter config for all members: its averages are stacked like the parameters), batch,
 * steps, evaluation and checkpoint schedule. The vocabulary size and sequence length come from the
 * data, which a key may not read: `groupRun` splits a group whose data disagree. Undefined (always
 * alone) for an architecture without an ensemble network (RWKV, Mamba).
 */
export function trainGroupKey(params: TrainParams): string | undefined {
  if (!trainsAsEnsemble(params.model.arch)) return undefined;
  const { seed: _seed, keep_checkpoints: _keep, optimizer, ...rest } = params;
  const { lr: _lr, weight_decay: _wd, ...shared } = optimizer;
  return canonicalize({ stage: 'train', ...rest, optimizer: shared });
}

/**
 * Trains a group of runs (`StageDefinition.group.run`): reads every run's data, splits them by
 * `ensembleKey` (equal shapes and schedule once the data are read), trains each part as one
 * ensemble (a part of one as `run` would) and writes each run's outputs as `run` would.
 * @returns per run null (written) or its Error; rejects when every run failed or on abort.
 */
async function groupRun(ctxs: readonly StageContext<TrainParams>[]): Promise<(Error | null)[]> {
  const outcome: (Error | null)[] = ctxs.map(() => null);
  const data = await Promise.all(ctxs.map((ctx) => readRun(ctx).catch((err: Error) => err)));
  const ready = ctxs.flatMap((_, i) => (data[i] instanceof Error ? [] : [i]));
  data.forEach((d, i) => d instanceof Error && (outcome[i] = d));
  if (ready.length === 0) throw outcome[0];
  const backend = await startBackend(ready.map((i) => ctxs[i]));
  const { ensembleKey, trainEnsemble, trainModel } = await import('../models/train/trainer.js');
  const parts = new Map<string, number[]>();
  for (const i of ready) {
    const key = ensembleKey((data[i] as RunData).config);
    parts.set(key, [...(parts.get(key) ?? []), i]);
  }
  for (const part of parts.values()) {
    const runs = part.map((i) => data[i] as RunData);
    part.forEach((i, m) =>
      logStart(ctxs[i], runs[m], backend, part.length > 1 ? `, member ${m + 1} of an ensemble of ${part.length}` : ''),
    );
    try {
      const kept = await Promise.all(part.map((i, m) => keptOf(ctxs[i], runs[m].config)));
      const options = part.map((i, m) => trainOptions(ctxs[i], kept[m]));
      const results = await withHeapAdvice(runs[0].config, backend, part.length, () =>
        part.length === 1
          ? trainModel(runs[0].config, runs[0].train, runs[0].tests, options[0]).then((r) => [r])
          : trainEnsemble(runs.map((r, m) => ({ ...r, options: options[m] }))),
      );
      for (const [m, i] of part.entries()) {
        if (part.length > 1) ctxs[i].record('ensemble_members', part.length);
        await writeResult(ctxs[i], runs[m].config, results[m], kept[m]).catch((err: Error) => (outcome[i] = err));
      }
    } catch (err) {
      if (ctxs.some((ctx) => ctx.signal.aborted)) throw err;
      for (const i of part) outcome[i] = err as Error;
    }
  }
  if (outcome.every((o) => o !== null)) throw outcome[0];
  return outcome;
}

/** The `train` stage. */
export const trainStage: StageDefinition<TrainParams> = {
  name: 'train',
  // 2: kept checkpoints (checkpoints/), the final training state (state/) and the weight norms in the curve.
  // 3: on wasm-blas, the fused native kernels (cross-entropy, norms, activations, embedding,
  // attention, AdamW) round differently from the TF.js op chains they replace.
  version: '3',
  description: 'Train a decoder-only model from scratch with AdamW and record the grokking curve.',
  schema,
  check(params) {
    return checkModel(params.model).map((p) => ({ path: `/model/${p.field}`, message: p.message }));
  },
  group: { key: (params) => trainGroupKey(params), run: groupRun },
  continues(params, cached) {
    // Only max_steps may differ, and grow: the learning rate and the evaluation schedule do not
    // depend on it, nor do the kept steps below the cached run's end (`keptSteps`).
    const steps = cached.max_steps;
    if (typeof steps !== 'number' || steps >= params.max_steps) return undefined;
    if (!isDeepStrictEqual({ ...cached, max_steps: 0 }, { ...params, max_steps: 0 })) return undefined;
    return { progress: steps, point: `at step ${steps}` };
  },
  run,
};

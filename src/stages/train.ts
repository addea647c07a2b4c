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
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import type { Column, Table } from '../table/table.js';
import { CURVE_FILE, WEIGHT_NORM, weightNormColumn } from '../analysis/files.js';
import type { AdamWConfig } from '../models/adamw.js';
import { checkModel, countModel, describeModel, modelConfig } from '../models/arch/registry.js';
import type { ModelParams } from '../models/arch/registry.js';
import type { GradFilterConfig } from '../models/grad-filter.js';
import { stepHeapBytes, wasmMicroBatch } from '../models/memory.js';
import type { CurveRow } from '../models/train/evaluation.js';
import type { LanguageModel } from '../models/model.js';
import type { TrainerConfig, TrainOptions } from '../models/train/trainer.js';
import { groupByType, readExamples, readVocab } from './examples.js';
import { FINAL_STATE_DIR, MODEL_FILE, WEIGHTS_FILE, keptCheckpointFile } from './files.js';

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

async function run(ctx: StageContext<TrainParams>): Promise<void> {
  const input = ctx.input('tokenize');
  const [vocab, train, test] = await Promise.all([
    readVocab(input),
    readExamples(input, 'train.parquet'),
    readExamples(input, 'test.parquet'),
  ]);
  if (test.seqLen !== train.seqLen)
    throw new Error(`train: train.parquet has ${train.seqLen} token columns, test.parquet ${test.seqLen}`);
  const config = trainerConfig(ctx.params, vocab.length, train.seqLen);
  const tests = groupByType(test);

  const { backendDescription, initBackend } = await import('../models/backend.js');
  const { trainModel } = await import('../models/train/trainer.js');
  const { modelToSafetensors } = await import('../models/weights.js');
  const backend = await initBackend(ctx.options.backend ?? 'auto', { threads: ctx.options.threads });
  ctx.record('backend', backend);
  // What ran the numbers (for wasm-blas: the BLAS library, its version, CPU kernels and threads).
  ctx.record('backend_detail', backendDescription() ?? backend);
  const m = config.model;
  ctx.log(
    `train: ${describeModel(m)}; ` +
      `${train.n} facts, batch ${config.batchSize}` +
      (config.microBatchSize !== undefined && config.microBatchSize < config.batchSize
        ? ` in micro-batches of ${config.microBatchSize}`
        : '') +
      (config.gradFilter
        ? `, Grokfast ${config.gradFilter.kind} (alpha ${config.gradFilter.alpha}, lambda ${config.gradFilter.lambda})`
        : '') +
      `, ${config.maxSteps} steps on ${backend}`,
  );

  const kept = keptFiles(ctx, keptSteps(ctx.params.keep_checkpoints, config.maxSteps), modelToSafetensors);
  await kept.prepare();
  const result = await withHeapAdvice(config, backend, () =>
    trainModel(config, train, tests, {
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
    }),
  );
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

/**
 * The kept checkpoints and the final state (see the module comment). `options` are the trainer's:
 * each kept checkpoint is written as an output (and mirrored into `ctx.checkpointDir`), the final
 * state into `state/`, and with `ctx.continueFrom` training continues from that run's `state/`.
 * `prepare()` mirrors what a continued run takes from `ctx.continueFrom`; `finish()` then writes the kept checkpoints training did not hand over (the steps up to where it
 * resumed or continued): from the mirror, else from `ctx.continueFrom` (its kept checkpoints, and
 * its final weights for its last step).
 * @throws Error from `finish` when such a checkpoint is found nowhere.
 */
function keptFiles(
  ctx: StageContext<TrainParams>,
  steps: readonly number[],
  encode: (model: LanguageModel) => Promise<Uint8Array>,
): {
  options: Pick<TrainOptions, 'keep' | 'onFinalState' | 'continueFrom'>;
  prepare(): Promise<void>;
  finish(): Promise<void>;
} {
  const mirror = (step: number) =>
    ctx.checkpointDir && join(ctx.checkpointDir, `kept-${keptCheckpointFile(step).split('/')[1]}`);
  const written = new Set<number>();
  const from = ctx.continueFrom;
  const state = from?.files.find((f) => f.startsWith(`${FINAL_STATE_DIR}/`));
  const sources = (step: number) => [
    mirror(step),
    from?.files.includes(keptCheckpointFile(step)) ? from.path(keptCheckpointFile(step)) : undefined,
    from && step === from.params.max_steps ? from.path(WEIGHTS_FILE) : undefined,
  ];
  return {
    options: {
      keep: {
        steps,
        save: async (step, model) => {
          const bytes = await encode(model);
          await ctx.writeFile(keptCheckpointFile(step), bytes);
          written.add(step);
          const copy = mirror(step);
          if (copy) await writeAtomic(copy, bytes);
        },
      },
      onFinalState: async (files) => {
        for (const [name, bytes] of files) await ctx.writeFile(`${FINAL_STATE_DIR}/${name}`, bytes);
      },
      ...(from && state ? { continueFrom: dirname(from.path(state)) } : {}),
    },
    async prepare() {
      // A continued run interrupted later resumes from its own folder: keep what it took from `from` there.
      if (!from || !ctx.checkpointDir) return;
      for (const step of steps.filter((s) => s <= (from.params.max_steps as number))) {
        const bytes = await firstReadable(sources(step).slice(1));
        if (bytes) await writeAtomic(mirror(step) as string, bytes);
      }
    },
    async finish() {
      for (const step of steps.filter((s) => !written.has(s))) {
        const found = await firstReadable(sources(step));
        if (!found)
          throw new Error(
            `train: the checkpoint kept at step ${step} is lost: remove ${ctx.checkpointDir} to start over`,
          );
        await ctx.writeFile(keptCheckpointFile(step), found);
      }
    },
  };
}

/** The bytes of the first of `paths` that can be read, or undefined. */
async function firstReadable(paths: readonly (string | undefined)[]): Promise<Uint8Array | undefined> {
  for (const path of paths) {
    const bytes = path === undefined ? undefined : await readFile(path).catch(() => undefined);
    if (bytes) return bytes;
  }
  return undefined;
}

/**
 * Writes `bytes` to `path` (its folder created) through `<path>.tmp-<pid>` and a rename, the
 * checkpoint folder's naming for a file being written (the engine removes those of dead processes).
 */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Runs `train` and turns the wasm backend's abort on an exhausted heap (a bare
 * `RuntimeError: Aborted()`) into advice: the heap the step needs and a `micro_batch_size` that fits.
 * @throws Error with that advice; any other error unchanged.
 */
async function withHeapAdvice<T>(config: TrainerConfig, backend: string, train: () => Promise<T>): Promise<T> {
  try {
    return await train();
  } catch (err) {
    const aborted = err instanceof Error && err.name === 'RuntimeError' && /Aborted\(/.test(err.message);
    if (!aborted || !backend.startsWith('wasm')) throw err;
    const micro = config.microBatchSize ?? config.batchSize;
    const need = stepHeapBytes(config.model, micro);
    const fits = wasmMicroBatch(config.model, micro);
    throw new Error(
      `train: the wasm heap (4 GiB at most) ran out: this model at ${micro} examples a pass needs about ` +
        `${(need / 1e9).toFixed(1)} GB. Set optimizer.micro_batch_size to ${fits < micro ? fits : Math.max(1, micro >> 1)} ` +
        `(gradients are accumulated, the step stays the full batch's), or train on @tensorflow/tfjs-node (--backend tensorflow).`,
      { cause: err },
    );
  }
}

/** The `train` stage. */
export const trainStage: StageDefinition<TrainParams> = {
  name: 'train',
  // 2: kept checkpoints (checkpoints/), the final training state (state/) and the weight norms in the curve.
  version: '2',
  description: 'Train a decoder-only model from scratch with AdamW and record the grokking curve.',
  schema,
  check(params) {
    return checkModel(params.model).map((p) => ({ path: `/model/${p.field}`, message: p.message }));
  },
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

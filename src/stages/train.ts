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
 * TF.js is imported lazily inside `run`, so planning a cached pipeline never loads it. With
 * `ctx.checkpointDir` the run checkpoints every `checkpoint_every` steps and resumes there.
 */
import { readFileSync } from 'node:fs';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import type { Column, Table } from '../table/table.js';
import { CURVE_FILE, WEIGHT_NORM, weightNormColumn } from '../analysis/files.js';
import type { AdamWConfig } from '../models/adamw.js';
import { checkModel, countModel, describeModel, modelConfig } from '../models/arch/registry.js';
import type { ModelParams } from '../models/arch/registry.js';
import type { GradFilterConfig } from '../models/grad-filter.js';
import { stepHeapBytes, wasmMicroBatch } from '../models/memory.js';
import type { CurveRow } from '../models/train/evaluation.js';
import type { TrainerConfig } from '../models/train/trainer.js';
import { groupByType, readExamples, readVocab } from './examples.js';
import { MODEL_FILE, WEIGHTS_FILE } from './files.js';

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
}

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/train.schema.json', import.meta.url), 'utf8'),
) as object;

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

  const result = await withHeapAdvice(config, backend, () =>
    trainModel(config, train, tests, {
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
  const last = result.curve.filter((r) => r.step === config.maxSteps);
  ctx.record('final_accuracy', Object.fromEntries(last.map((r) => [r.type, r.accuracy])));
  ctx.record('final_loss', Object.fromEntries(last.map((r) => [r.type, r.loss])));
  ctx.record('parameters', nParams);
  ctx.record('model_size', { ...countModel(config.model) });
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
  version: '2',
  description: 'Train a decoder-only model from scratch with AdamW and record the grokking curve.',
  schema,
  check(params) {
    return checkModel(params.model).map((p) => ({ path: `/model/${p.field}`, message: p.message }));
  },
  run,
};

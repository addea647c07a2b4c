/**
 * Stage `train`: a decoder-only model trained from scratch on the tokenized facts, with the
 * grokking curve (DESIGN.md §4 "train"; outputs in docs/artifacts.md "train").
 *
 * Input: a `tokenize` artifact (`vocab.parquet`, `train.parquet`, `test.parquet`). Outputs:
 * `weights.safetensors` (float32, Hugging Face GPT-2 names, config in the metadata), `model.json`
 * (the architecture config with vocabulary size and sequence length) and `curve.parquet`
 * (`step INT32, epoch DOUBLE, type STRING, accuracy DOUBLE, loss DOUBLE`).
 *
 * TF.js is imported lazily inside `run`, so planning a cached pipeline never loads it. With
 * `ctx.checkpointDir` the run checkpoints every `checkpoint_every` steps and resumes there.
 */
import { readFileSync } from 'node:fs';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import type { Table } from '../table/table.js';
import type { AdamWConfig } from '../models/adamw.js';
import type { ModelConfig } from '../models/model.js';
import type { CurveRow, TrainerConfig } from '../models/trainer.js';
import { groupByType, readExamples, readVocab } from './examples.js';

/** Validated params of `train` (`schemas/stages/train.schema.json`). */
export interface TrainParams {
  model: {
    arch: 'gpt2';
    n_layers: number;
    d_model: number;
    n_heads: number;
    /** 4 · d_model when absent. */
    d_mlp?: number;
  };
  optimizer: AdamWConfig & { batch_size: number };
  max_steps: number;
  eval_every: number;
  eval_size: number;
  seed: number;
  checkpoint_every: number;
}

/** Output file names. */
export const WEIGHTS_FILE = 'weights.safetensors';
export const MODEL_FILE = 'model.json';
export const CURVE_FILE = 'curve.parquet';

const schema = JSON.parse(readFileSync(new URL('../../schemas/stages/train.schema.json', import.meta.url), 'utf8')) as object;

/** The trainer config of validated params for a vocabulary of `vocabSize` and inputs of `seqLen` tokens. */
export function trainerConfig(params: TrainParams, vocabSize: number, seqLen: number): TrainerConfig {
  const { batch_size, ...optimizer } = params.optimizer;
  const model: ModelConfig = {
    arch: params.model.arch,
    n_layers: params.model.n_layers,
    d_model: params.model.d_model,
    n_heads: params.model.n_heads,
    d_mlp: params.model.d_mlp ?? 4 * params.model.d_model,
    vocab_size: vocabSize,
    seq_len: seqLen,
  };
  return {
    model,
    optimizer,
    batchSize: batch_size,
    maxSteps: params.max_steps,
    evalEvery: params.eval_every,
    evalSize: params.eval_size,
    seed: params.seed,
    checkpointEvery: params.checkpoint_every,
  };
}

/** The curve as the `curve.parquet` table. */
export function curveTable(curve: readonly CurveRow[]): Table {
  return {
    columns: [
      { name: 'step', type: 'INT32', data: Int32Array.from(curve, (r) => r.step) },
      { name: 'epoch', type: 'DOUBLE', data: Float64Array.from(curve, (r) => r.epoch) },
      { name: 'type', type: 'STRING', data: curve.map((r) => r.type) },
      { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from(curve, (r) => r.accuracy) },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(curve, (r) => r.loss) },
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
  if (test.seqLen !== train.seqLen) throw new Error(`train: train.parquet has ${train.seqLen} token columns, test.parquet ${test.seqLen}`);
  const config = trainerConfig(ctx.params, vocab.length, train.seqLen);
  const tests = groupByType(test);

  const { initBackend } = await import('../models/backend.js');
  const { trainModel } = await import('../models/trainer.js');
  const { modelToSafetensors } = await import('../models/model.js');
  const backend = await initBackend(ctx.options.backend ?? 'auto', { threads: ctx.options.threads });
  ctx.record('backend', backend);
  const m = config.model;
  ctx.log(
    `train: ${m.arch} ${m.n_layers} layers, d_model ${m.d_model}, ${m.n_heads} heads, vocab ${m.vocab_size}; ` +
      `${train.n} facts, batch ${config.batchSize}, ${config.maxSteps} steps on ${backend}`,
  );

  const result = await trainModel(config, train, tests, {
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
  });
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
}

/** The `train` stage. */
export const trainStage: StageDefinition<TrainParams> = {
  name: 'train',
  version: '1',
  description: 'Train a decoder-only model from scratch with AdamW and record the grokking curve.',
  schema,
  check(params) {
    const problems: { path: string; message: string }[] = [];
    if (params.model.d_model % params.model.n_heads !== 0) {
      problems.push({
        path: '/model/d_model',
        message: `d_model (${params.model.d_model}) must be divisible by n_heads (${params.model.n_heads})`,
      });
    }
    return problems;
  },
  run,
};

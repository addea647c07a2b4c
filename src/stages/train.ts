/**
 * Stage `train`: a decoder-only model trained from scratch on the tokenized facts, with the
 * grokking curve (DESIGN.md §4 "train"; outputs in docs/artifacts.md "train").
 *
 * Input: a `tokenize` artifact (`vocab.parquet`, `train.parquet`, `test.parquet`). Outputs:
 * `weights.safetensors` (float32, the architecture's reference parameter names, e.g. Hugging Face
 * GPT-2's; config in the metadata), `model.json`
 * (the architecture config with vocabulary size and sequence length) and `curve.parquet`
 * (`step INT32, epoch DOUBLE, type STRING, accuracy DOUBLE, loss DOUBLE`).
 *
 * Records the backend, speed, final accuracy and loss, and the model's size (`model_size`:
 * parameters and forward FLOPs per token, `models/count.ts`) in the manifest.
 *
 * TF.js is imported lazily inside `run`, so planning a cached pipeline never loads it. With
 * `ctx.checkpointDir` the run checkpoints every `checkpoint_every` steps and resumes there.
 */
import { readFileSync } from 'node:fs';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import type { Table } from '../table/table.js';
import type { AdamWConfig } from '../models/adamw.js';
import { countModel, llamaHidden, mambaDtRank } from '../models/count.js';
import { stepHeapBytes, wasmMicroBatch } from '../models/memory.js';
import type { ModelConfig } from '../models/model.js';
import type { CurveRow, TrainerConfig } from '../models/trainer.js';
import { groupByType, readExamples, readVocab } from './examples.js';

/** Validated `model` params of a GPT-2 (the original fields: a GPT-2's params, hence its cache key, are unchanged). */
export interface Gpt2Params {
  arch: 'gpt2';
  n_layers: number;
  d_model: number;
  n_heads: number;
  /** 4 · d_model when absent. */
  d_mlp?: number;
}

/** Validated `model` params of a LLaMA. */
export interface LlamaParams {
  arch: 'llama';
  n_layers: number;
  d_model: number;
  n_heads: number;
  /** `llamaHidden(d_model)` (8/3 · d_model, rounded up to a multiple of 8) when absent. */
  d_mlp?: number;
  tie_embeddings: boolean;
  rope_base: number;
}

/** Validated `model` params of an RWKV-4. */
export interface RwkvParams {
  arch: 'rwkv';
  n_layers: number;
  d_model: number;
  /** 4 · d_model when absent. */
  d_mlp?: number;
}

/** Validated `model` params of a Mamba. */
export interface MambaParams {
  arch: 'mamba';
  n_layers: number;
  d_model: number;
  d_state: number;
  expand: number;
  d_conv: number;
  /** ceil(d_model / 16) when absent. */
  dt_rank?: number;
  tie_embeddings: boolean;
}

/** Validated params of `train` (`schemas/stages/train.schema.json`). */
export interface TrainParams {
  model: Gpt2Params | LlamaParams | RwkvParams | MambaParams;
  optimizer: AdamWConfig & { batch_size: number; micro_batch_size?: number };
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
  const { batch_size, micro_batch_size, ...optimizer } = params.optimizer;
  return {
    model: modelConfig(params.model, vocabSize, seqLen),
    optimizer,
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

/** The full architecture config of validated `model` params, with the omitted widths filled in. */
export function modelConfig(m: TrainParams['model'], vocabSize: number, seqLen: number): ModelConfig {
  const base = { n_layers: m.n_layers, d_model: m.d_model, vocab_size: vocabSize, seq_len: seqLen };
  switch (m.arch) {
    case 'gpt2':
      // Field order as before the other architectures existed (model.json unchanged).
      return { arch: 'gpt2', n_layers: m.n_layers, d_model: m.d_model, n_heads: m.n_heads, d_mlp: m.d_mlp ?? 4 * m.d_model, vocab_size: vocabSize, seq_len: seqLen };
    case 'llama':
      return { arch: 'llama', ...base, n_heads: m.n_heads, d_mlp: m.d_mlp ?? llamaHidden(m.d_model), tie_embeddings: m.tie_embeddings, rope_base: m.rope_base };
    case 'rwkv':
      return { arch: 'rwkv', ...base, d_mlp: m.d_mlp ?? 4 * m.d_model };
    case 'mamba':
      return { arch: 'mamba', ...base, d_state: m.d_state, expand: m.expand, d_conv: m.d_conv, dt_rank: m.dt_rank ?? mambaDtRank(m.d_model), tie_embeddings: m.tie_embeddings };
  }
}

/** One line describing the architecture, for the log. */
function describeModel(m: ModelConfig): string {
  const heads = m.arch === 'gpt2' || m.arch === 'llama' ? `, ${m.n_heads} heads` : '';
  const ssm = m.arch === 'mamba' ? `, d_state ${m.d_state}, expand ${m.expand}` : '';
  return `${m.arch} ${m.n_layers} layers, d_model ${m.d_model}${heads}${ssm}, vocab ${m.vocab_size}`;
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

  const { backendDescription, initBackend } = await import('../models/backend.js');
  const { trainModel } = await import('../models/trainer.js');
  const { modelToSafetensors } = await import('../models/model.js');
  const backend = await initBackend(ctx.options.backend ?? 'auto', { threads: ctx.options.threads });
  ctx.record('backend', backend);
  // What ran the numbers (for wasm-blas: the BLAS library, its version, CPU kernels and threads).
  ctx.record('backend_detail', backendDescription() ?? backend);
  const m = config.model;
  ctx.log(
    `train: ${describeModel(m)}; ` +
      `${train.n} facts, batch ${config.batchSize}` +
      (config.microBatchSize !== undefined && config.microBatchSize < config.batchSize ? ` in micro-batches of ${config.microBatchSize}` : '') +
      `, ${config.maxSteps} steps on ${backend}`,
  );

  const result = await withHeapAdvice(config, backend, () => trainModel(config, train, tests, {
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
  }));
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
  version: '1',
  description: 'Train a decoder-only model from scratch with AdamW and record the grokking curve.',
  schema,
  check(params) {
    const problems: { path: string; message: string }[] = [];
    const m = params.model;
    if ((m.arch === 'gpt2' || m.arch === 'llama') && m.d_model % m.n_heads !== 0) {
      problems.push({
        path: '/model/d_model',
        message: `d_model (${m.d_model}) must be divisible by n_heads (${m.n_heads})`,
      });
    } else if (m.arch === 'llama' && (m.d_model / m.n_heads) % 2 !== 0) {
      problems.push({ path: '/model/n_heads', message: `the head width d_model / n_heads (${m.d_model / m.n_heads}) must be even for rotary embeddings` });
    }
    return problems;
  },
  run,
};

/**
 * Stage `evaluate`: the final model on every test fact (docs/design.md §4 "evaluate"; outputs in
 * docs/artifacts.md "evaluate").
 *
 * Inputs: a `train` artifact (`weights.safetensors`, `model.json`, `curve.parquet`) and the
 * `tokenize` artifact it was trained on. Outputs:
 * - `predictions.parquet`: `type, input, target, prediction STRING, correct BOOLEAN, loss DOUBLE`,
 *   one row per test example in `test.parquet` order, tokens as text (the input's first `length`
 *   tokens joined by spaces);
 * - `accuracy.parquet`: `type STRING, n INT32, accuracy DOUBLE, loss DOUBLE`, types in order of
 *   first appearance; loss is the mean cross-entropy (nats) at the answer position;
 * - `curve.parquet`: train's curve, unchanged, so that `analyze` needs only this artifact.
 *
 * TF.js is imported lazily inside `run`.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import type { Table } from '../table/table.js';
import { ACCURACY_FILE, CURVE_FILE } from '../analysis/files.js';
import { readExamples, readVocab } from './examples.js';
import { WEIGHTS_FILE } from './files.js';
import { readModelConfig } from './trained.js';

/** Validated params of `evaluate` (`schemas/stages/evaluate.schema.json`). */
export interface EvaluateParams {
  /** Test facts per forward pass. */
  batch_size: number;
}

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/evaluate.schema.json', import.meta.url), 'utf8'),
) as object;

/** Per-type accuracy and mean loss, types in order of first appearance. */
export function accuracyTable(types: readonly string[], correct: readonly boolean[], loss: ArrayLike<number>): Table {
  const stats = new Map<string, { n: number; correct: number; loss: number }>();
  types.forEach((t, i) => {
    const s = stats.get(t) ?? { n: 0, correct: 0, loss: 0 };
    s.n++;
    if (correct[i]) s.correct++;
    s.loss += loss[i];
    stats.set(t, s);
  });
  const rows = [...stats];
  return {
    columns: [
      { name: 'type', type: 'STRING', data: rows.map(([t]) => t) },
      { name: 'n', type: 'INT32', data: Int32Array.from(rows, ([, s]) => s.n) },
      { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from(rows, ([, s]) => s.correct / s.n) },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(rows, ([, s]) => s.loss / s.n) },
    ],
  };
}

async function run(ctx: StageContext<EvaluateParams>): Promise<void> {
  const trained = ctx.input('train');
  const tokens = ctx.input('tokenize');
  const [vocab, test, weights, curve] = await Promise.all([
    readVocab(tokens),
    readExamples(tokens, 'test.parquet'),
    readFile(trained.path(WEIGHTS_FILE)),
    trained.readTable(CURVE_FILE),
  ]);
  const config = await readModelConfig('evaluate', trained, tokens, vocab.length, test.seqLen);

  const { backendDescription, initBackend } = await import('../models/backend.js');
  const { modelFromSafetensors } = await import('../models/weights.js');
  const { predict } = await import('../models/train/evaluation.js');
  const backend = await initBackend(ctx.options.backend ?? 'auto', { threads: ctx.options.threads });
  ctx.record('backend', backend);
  // What ran the numbers (for wasm-blas: the BLAS library, its version, CPU kernels and threads).
  ctx.record('backend_detail', backendDescription() ?? backend);
  const model = modelFromSafetensors(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength), config);
  let out;
  try {
    out = await predict(model, test, ctx.params.batch_size);
  } finally {
    model.dispose();
  }

  const n = test.n;
  const L = test.seqLen;
  const text = (id: number) => vocab[id] ?? `<unk_${id}>`;
  const input: string[] = new Array<string>(n);
  const target: string[] = new Array<string>(n);
  const prediction: string[] = new Array<string>(n);
  const correct: boolean[] = new Array<boolean>(n);
  for (let i = 0; i < n; i++) {
    const len = test.positions[i] + 1;
    input[i] = Array.from(test.tokens.subarray(i * L, i * L + len), text).join(' ');
    target[i] = text(test.targets[i]);
    prediction[i] = text(out.prediction[i]);
    correct[i] = out.prediction[i] === test.targets[i];
  }
  await ctx.writeTable('predictions.parquet', {
    columns: [
      { name: 'type', type: 'STRING', data: test.types },
      { name: 'input', type: 'STRING', data: input },
      { name: 'target', type: 'STRING', data: target },
      { name: 'prediction', type: 'STRING', data: prediction },
      { name: 'correct', type: 'BOOLEAN', data: correct },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(out.loss) },
    ],
  });
  const accuracy = accuracyTable(test.types, correct, out.loss);
  await ctx.writeTable(ACCURACY_FILE, accuracy);
  await ctx.writeTable(CURVE_FILE, curve);
  const types = accuracy.columns[0].data as string[];
  const acc = accuracy.columns[2].data as Float64Array;
  ctx.record('accuracy', Object.fromEntries(types.map((t, i) => [t, acc[i]])));
  ctx.log(`evaluate: ${types.map((t, i) => `${t} ${(100 * acc[i]).toFixed(1)}%`).join(', ')}`);
}

/** The `evaluate` stage. */
export const evaluateStage: StageDefinition<EvaluateParams> = {
  name: 'evaluate',
  version: '1',
  description: 'Evaluate the trained model on every test fact: predictions, per-type accuracy, and the training curve.',
  schema,
  run,
};

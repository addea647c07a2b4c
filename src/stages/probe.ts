/**
 * Stage `probe`: the logit lens (nostalgebraist 2020) over a training run (docs/design.md §4
 * "probe"; outputs in docs/artifacts.md "probe"). Wang et al. 2024 read this task's grokked
 * circuits with it; here it answers "from which layer, and from when, is the comparison answer
 * readable", ID against OOD.
 *
 * Inputs: a `train` artifact and the `tokenize` artifact it was trained on. For each set of weights
 * the run kept (`checkpoints/step-XXXXXXX.safetensors`, and the final `weights.safetensors` at the
 * curve's last step) and each layer (0 = the embedding, k = after block k), the residual stream at
 * the answer position is decoded through the final norm and the unembedding (`models/lens.ts`)
 * and scored on at most `max_per_type` facts of each test type, evenly spaced over the type's rows.
 * Outputs:
 * - `probe.parquet`: `step, layer INT32, type STRING, n INT32, accuracy, loss, rank DOUBLE`
 *   (`../analysis/probe.ts`), rows by step, then type (in `types` order), then layer;
 * - `probe.svg` / `probe.png` (per `formats`): the heatmap, layer × step, one panel per type;
 * - manifest info `summary`: per type, the lens's accuracy by layer at the last step.
 *
 * TF.js, Vega and resvg are imported lazily inside `run`.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import { column } from '../table/table.js';
import { CURVE_FILE, PROBE_FILE } from '../analysis/files.js';
import { probeSummary, probeTable } from '../analysis/probe.js';
import type { ProbeRow } from '../analysis/probe.js';
import type { PlotFormat } from '../plot/render.js';
import { describeModel } from '../models/arch/registry.js';
import type { ModelConfig } from '../models/arch/registry.js';
import type { Examples } from '../models/train/examples.js';
import { groupByType, readExamples, readVocab } from './examples.js';
import { readModelConfig, weightsByStep } from './trained.js';

/** Validated params of `probe` (`schemas/stages/probe.schema.json`). */
export interface ProbeParams {
  /** Test types to read, in panel order; absent: every type of `test.parquet`. */
  types?: string[];
  /** At most this many facts of each type, evenly spaced over its rows. */
  max_per_type: number;
  /** Facts per forward pass. */
  batch_size: number;
  /** Heatmap formats (empty: none). */
  formats: PlotFormat[];
}

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/probe.schema.json', import.meta.url), 'utf8'),
) as object;

/**
 * The facts to read per type, in `types` order (absent: every type of `test`). A type with no facts
 * is left out, with a warning.
 */
async function factsByType(
  ctx: StageContext<ProbeParams>,
  test: Map<string, Examples>,
  evenlySpaced: (data: Examples, k: number) => Examples,
): Promise<Map<string, Examples>> {
  const out = new Map<string, Examples>();
  const missing: string[] = [];
  for (const type of ctx.params.types ?? [...test.keys()]) {
    const data = test.get(type);
    if (data) out.set(type, evenlySpaced(data, ctx.params.max_per_type));
    else missing.push(type);
  }
  if (missing.length > 0)
    ctx.record('warnings', [
      `probe: no test facts of type ${missing.join(', ')} (test.parquet has ${[...test.keys()].join(', ')})`,
    ]);
  if (out.size === 0)
    throw new Error(`probe: none of the test types asked for is in ${ctx.input('tokenize').id}/test.parquet`);
  return out;
}

async function run(ctx: StageContext<ProbeParams>): Promise<void> {
  const trained = ctx.input('train');
  const tokens = ctx.input('tokenize');
  const [vocab, test, curve] = await Promise.all([
    readVocab(tokens),
    readExamples(tokens, 'test.parquet'),
    trained.readTable(CURVE_FILE, ['step']),
  ]);
  const config = await readModelConfig('probe', trained, tokens, vocab.length, test.seqLen);
  const weights = weightsByStep(trained, Math.max(...column(curve, 'step', 'INT32')));

  const { backendDescription, initBackend } = await import('../models/backend.js');
  const { modelFromSafetensors } = await import('../models/weights.js');
  const { logitLens } = await import('../models/lens.js');
  const { evenlySpaced } = await import('../models/train/evaluation.js');
  const facts = await factsByType(ctx, groupByType(test), evenlySpaced);
  const backend = await initBackend(ctx.options.backend ?? 'auto', { threads: ctx.options.threads });
  ctx.record('backend', backend);
  ctx.record('backend_detail', backendDescription() ?? backend);
  ctx.log(
    `probe: ${weights.length} checkpoint(s) × ${config.n_layers + 1} layers × ` +
      [...facts].map(([t, d]) => `${d.n} ${t}`).join(', '),
  );

  const rows: ProbeRow[] = [];
  for (const [i, { step, file }] of weights.entries()) {
    ctx.signal.throwIfAborted();
    const bytes = await readFile(trained.path(file));
    const model = modelFromSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), config);
    try {
      for (const [type, data] of facts)
        for (const r of await logitLens(model, data, ctx.params.batch_size)) rows.push({ step, type, ...r });
    } finally {
      model.dispose();
    }
    ctx.progress({ step: i + 1, total: weights.length });
  }
  await ctx.writeTable(PROBE_FILE, probeTable(rows));
  await writeHeatmap(ctx, rows, config);
  const summary = probeSummary(rows);
  ctx.record('summary', summary);
  for (const line of summary) ctx.log(`probe: ${line}`);
}

/** The heatmap as `probe.svg` / `probe.png`, per `formats`. */
async function writeHeatmap(
  ctx: StageContext<ProbeParams>,
  rows: readonly ProbeRow[],
  config: ModelConfig,
): Promise<void> {
  const formats = ctx.params.formats;
  if (formats.length === 0) return;
  const [{ renderChart }, { probeSpec }] = await Promise.all([import('../plot/render.js'), import('../plot/probe.js')]);
  const chart = await renderChart(probeSpec(rows, `Logit lens: ${describeModel(config)}`), { formats });
  if (formats.includes('svg')) await ctx.writeFile('probe.svg', chart.svg);
  if (chart.png) await ctx.writeFile('probe.png', chart.png);
}

/** The `probe` stage. */
export const probeStage: StageDefinition<ProbeParams> = {
  name: 'probe',
  version: '1',
  description:
    'The logit lens: per kept checkpoint, layer and test type, the accuracy of the residual stream at the answer position decoded through the final norm and unembedding; a heatmap.',
  schema,
  run,
};

/**
 * The `analyze` stage: grokking metrics and plots of one run or of every run of a sweep
 * (DESIGN.md §4, "analyze"; definitions after Wang et al. 2024 §2, see `../analysis/metrics.ts`).
 *
 * Inputs: one or more artifacts with a `curve.parquet` (normally `evaluate`'s; with
 * `across: matrix`, one per run of the sweep, each carrying its matrix values). evaluate's
 * `accuracy.parquet`, when present, gives the final accuracies.
 *
 * Outputs:
 * - `metrics.parquet`: one row per run (columns: `metricsTable` in `../analysis/report.ts`);
 * - `curves.parquet`: all runs' curves stacked with a `run` column (`curvesTable`);
 * - `sweep.parquet`, when some runs differ only by seed: mean and spread of every metric per
 *   value of the other knobs (`sweepTable` in `../analysis/aggregate.ts`);
 * - plots, in each of `formats` (`svg`, `png`): `grokking` (the curve of each run, one panel per
 *   run); with two or more runs also `overlay` (ID/OOD accuracy of all runs); and `metrics`
 *   (metrics against the swept knobs, one line per split) when a knob other than a seed varies;
 * - manifest info: `summary` (lines for the CLI to print) and `metrics` (the numbers, by run).
 *
 * Vega, Vega-Lite and resvg are imported lazily inside `run` (through `../plot/render.ts`).
 */
import { readFileSync } from 'node:fs';
import type { InputArtifact, StageContext, StageDefinition } from '../engine/stage.js';
import { column, numRows } from '../table/table.js';
import { computeRunMetrics, curveFromTable } from '../analysis/metrics.js';
import type { AnalyzedRun } from '../analysis/report.js';
import { curvesTable, metricsRecord, metricsTable, runName, summaryLines, sweepKnobs } from '../analysis/report.js';
import { hasReplicates, sweepTable } from '../analysis/aggregate.js';
import type { PlotFormat } from '../plot/render.js';

/** Validated params of `analyze` (schemas/stages/analyze.schema.json). */
export interface AnalyzeParams {
  /** `train_inferred` accuracy that marks memorisation (default 0.99). */
  memorise_threshold: number;
  /** ID/OOD accuracies at which generalisation is measured (default [0.9, 0.95, 0.99]). */
  generalise_thresholds: number[];
  /** Plot formats to write (default ['svg', 'png']; empty: no plots). */
  formats: PlotFormat[];
}

/** File of every curve-bearing input (evaluate passes train's curve on unchanged). */
export const CURVE_FILE = 'curve.parquet';
/** Mean and spread of the metrics over seeds (written when runs differ only by seed). */
export const SWEEP_FILE = 'sweep.parquet';
/** evaluate's final per-type accuracy table. */
export const ACCURACY_FILE = 'accuracy.parquet';

const schema = JSON.parse(readFileSync(new URL('../../schemas/stages/analyze.schema.json', import.meta.url), 'utf8')) as object;

/** Reads evaluate's `accuracy.parquet` (`type STRING, accuracy DOUBLE`) as `{ type: accuracy }`. */
async function readAccuracy(input: InputArtifact): Promise<Record<string, number>> {
  if (!input.files.includes(ACCURACY_FILE)) return {};
  const table = await input.readTable(ACCURACY_FILE);
  const type = column(table, 'type', 'STRING');
  const accuracy = column(table, 'accuracy', 'DOUBLE');
  const out: Record<string, number> = {};
  for (let i = 0; i < numRows(table); i++) out[type[i]] = accuracy[i];
  return out;
}

/**
 * Reads and analyses every input that has a curve. Runs are named by their matrix values
 * (`entities=400,seed=1`), or by the input's stage id outside a sweep; repeated names get `#2`, ...
 */
export async function analyzeInputs(inputs: readonly InputArtifact[], params: AnalyzeParams): Promise<AnalyzedRun[]> {
  const withCurve = inputs.filter((i) => i.files.includes(CURVE_FILE));
  if (withCurve.length === 0) {
    const got = inputs.map((i) => `${i.id} (${i.stage})`).join(', ') || 'none';
    throw new Error(`analyze needs at least one input with ${CURVE_FILE} (an evaluate or train stage); got ${got}`);
  }
  const seen = new Map<string, number>();
  const runs: AnalyzedRun[] = [];
  for (const input of withCurve) {
    const base = runName(input.matrix, input.id);
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    const curve = curveFromTable(await input.readTable(CURVE_FILE));
    const metrics = computeRunMetrics(curve, {
      memoriseThreshold: params.memorise_threshold,
      generaliseThresholds: params.generalise_thresholds,
    });
    runs.push({
      name: count > 1 ? `${base}#${count}` : base,
      matrix: input.matrix,
      curve,
      metrics,
      evaluated: await readAccuracy(input),
    });
  }
  return runs;
}

async function writePlots(ctx: StageContext<AnalyzeParams>, runs: readonly AnalyzedRun[]): Promise<void> {
  const formats = ctx.params.formats;
  if (formats.length === 0) return;
  const [{ renderChart }, { grokkingSpec }, { overlaySpec, metricsSpec }] = await Promise.all([
    import('../plot/render.js'),
    import('../plot/grokking.js'),
    import('../plot/sweep.js'),
  ]);
  const threshold = Math.min(...ctx.params.generalise_thresholds);
  const knobs = sweepKnobs(runs, ctx.params.generalise_thresholds);
  const charts: [string, ReturnType<typeof grokkingSpec> | null][] = [['grokking', grokkingSpec(runs, { threshold })]];
  if (runs.length > 1) {
    charts.push(['overlay', overlaySpec(runs, knobs, threshold)]);
    charts.push(['metrics', metricsSpec(runs, knobs, threshold)]);
  }
  for (const [name, spec] of charts) {
    if (spec === null) continue;
    ctx.signal.throwIfAborted();
    const chart = await renderChart(spec, { formats });
    if (formats.includes('svg')) await ctx.writeFile(`${name}.svg`, chart.svg);
    if (chart.png) await ctx.writeFile(`${name}.png`, chart.png);
    ctx.log(`plotted ${name} (${formats.join(', ')})`);
  }
}

/** The `analyze` stage definition (see the module comment). */
export const analyzeStage: StageDefinition<AnalyzeParams> = {
  name: 'analyze',
  version: '4',
  description: 'Grokking metrics (memorisation and ID/OOD generalisation steps, delays, ratios) and plots of one run or a sweep',
  schema,
  async run(ctx) {
    const thresholds = ctx.params.generalise_thresholds;
    const runs = await analyzeInputs(ctx.inputs, ctx.params);
    await ctx.writeTable('metrics.parquet', metricsTable(runs, thresholds));
    await ctx.writeTable('curves.parquet', curvesTable(runs));
    if (hasReplicates(runs, thresholds)) await ctx.writeTable(SWEEP_FILE, sweepTable(runs, thresholds));
    await writePlots(ctx, runs);
    ctx.record('summary', summaryLines(runs, thresholds));
    ctx.record('metrics', metricsRecord(runs, thresholds));
  },
};

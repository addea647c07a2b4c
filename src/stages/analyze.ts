/**
 * The `analyze` stage: grokking metrics and plots of one run or of every run of a sweep
 * (docs/design.md §4, "analyze"; definitions after Wang et al. 2024 §2, see `../analysis/metrics.ts`).
 *
 * Inputs: one or more artifacts with a `curve.parquet` (normally `evaluate`'s; with
 * `across: matrix`, one per run of the sweep, each carrying its matrix values). evaluate's
 * `accuracy.parquet`, when present, gives the final accuracies (`../analysis/inputs.ts` reads them).
 *
 * Outputs:
 * - `metrics.parquet`: one row per run (columns: `metricsTable` in `../analysis/tables.ts`);
 * - `curves.parquet`: all runs' curves stacked with a `run` column, with their weight norms when
 *   the curves have them (`curvesTable`);
 * - `sweep.parquet`, when some runs differ only by seed: mean and spread of every metric per
 *   value of the other knobs (`sweepTable` in `../analysis/aggregate.ts`);
 * - `trend.parquet`, when a numeric knob other than a seed varies: Spearman's ρ of the knob with
 *   the steps to generalise (OOD, ID) over all runs, with a seeded bootstrap interval
 *   (`../analysis/trend.ts`), the same on the first crossing of θ, and the `trend` plot (error
 *   bars: mean ± std over seeds);
 * - plots, in each of `formats` (`svg`, `png`): `grokking` (the curve of each run, one panel per
 *   run); with two or more runs also `overlay` (ID/OOD accuracy of all runs); and `metrics`
 *   (metrics against the swept knobs, one line per split) when a knob other than a seed varies;
 * - manifest info: `summary` (lines for the CLI to print: per run, per group of seeds, the trend
 *   statements) and `metrics` (the numbers, by run).
 *
 * Version 5 (was 4): NULL instead of −1/NaN in the tables, knob columns in `curves.parquet`,
 * `trend.parquet`, the `trend` plot and the group and trend lines of the summary. Version 6: the
 * paired sweeps' plots and tables. Version 7: the grokking plot's lower panels draw the loss of
 * each type and the weight norms; `curves.parquet` has the weight-norm columns of curves that
 * carry them (train version 2). Version 8: the first crossing of θ (`<t>_first_θ`, a dip after it
 * cannot move it) beside the step θ is held from, in every table, the summary and the trend.
 *
 * Vega, Vega-Lite and resvg are imported lazily inside `run` (through `../plot/render.ts`).
 */
import { readFileSync } from 'node:fs';
import type { StageContext, StageDefinition } from '../engine/stage.js';
import { groupLines, hasReplicates, sweepTable } from '../analysis/aggregate.js';
import { CURVES_FILE, METRICS_FILE, SWEEP_FILE, TREND_FILE } from '../analysis/files.js';
import { analyzeInputs } from '../analysis/inputs.js';
import type { AnalysisThresholds } from '../analysis/inputs.js';
import type { AnalyzedRun } from '../analysis/tables.js';
import { curvesTable, metricsRecord, metricsTable, summaryLines, sweepKnobs } from '../analysis/tables.js';
import { studyTrends, trendLines, trendTable } from '../analysis/trend.js';
import type { StudyTrend } from '../analysis/trend.js';
import type { PlotFormat } from '../plot/render.js';

/** Validated params of `analyze` (schemas/stages/analyze.schema.json): the thresholds and the plots. */
export interface AnalyzeParams extends AnalysisThresholds {
  /** Plot formats to write (default ['svg', 'png']; empty: no plots). */
  formats: PlotFormat[];
}

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/analyze.schema.json', import.meta.url), 'utf8'),
) as object;

async function writePlots(
  ctx: StageContext<AnalyzeParams>,
  runs: readonly AnalyzedRun[],
  trends: readonly StudyTrend[],
): Promise<void> {
  const formats = ctx.params.formats;
  if (formats.length === 0) return;
  const [{ renderChart }, { grokkingSpec }, { overlaySpec, metricsSpec }, { trendSpec }] = await Promise.all([
    import('../plot/render.js'),
    import('../plot/grokking.js'),
    import('../plot/sweep.js'),
    import('../plot/trend.js'),
  ]);
  const threshold = Math.min(...ctx.params.generalise_thresholds);
  const knobs = sweepKnobs(runs, ctx.params.generalise_thresholds);
  const charts: [string, ReturnType<typeof grokkingSpec> | null][] = [['grokking', grokkingSpec(runs, { threshold })]];
  if (runs.length > 1) {
    charts.push(['overlay', overlaySpec(runs, knobs, threshold)]);
    charts.push(['metrics', metricsSpec(runs, knobs, threshold)]);
    charts.push(['trend', trendSpec(runs, trends, threshold)]);
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
  // 5: not reached is NULL, knob columns in curves, trend.parquet (issue 15); 6: the plots' readability fixes
  // (rule labels, ticks, colours, zoomed accuracy axis) changed the SVG/PNG outputs (issue 14); 7: loss and
  // weight-norm panels; 8: the first crossing of θ beside the step θ is held from (metrics.parquet's
  // `<t>_first_θ` columns, sweep.parquet's rows of them, trend.parquet's `first_*` columns, the summary).
  version: '8',
  description:
    'Grokking metrics (memorisation and ID/OOD generalisation steps, delays, ratios) and plots of one run or a sweep',
  schema,
  async run(ctx) {
    const thresholds = ctx.params.generalise_thresholds;
    const runs = await analyzeInputs(ctx.inputs, ctx.params);
    await ctx.writeTable(METRICS_FILE, metricsTable(runs, thresholds));
    await ctx.writeTable(CURVES_FILE, curvesTable(runs, thresholds));
    if (hasReplicates(runs, thresholds)) await ctx.writeTable(SWEEP_FILE, sweepTable(runs, thresholds));
    const trends = studyTrends(runs, thresholds);
    if (trends.length > 0) await ctx.writeTable(TREND_FILE, trendTable(trends));
    await writePlots(ctx, runs, trends);
    const groups = groupLines(runs, thresholds);
    const summary = [...summaryLines(runs, thresholds)];
    if (groups.length > 0)
      summary.push('over seeds (mean ± std over the runs that reached it):', ...groups.map((l) => `  ${l}`));
    if (trends.length > 0) summary.push('trend:', ...trendLines(trends).map((l) => `  ${l}`));
    ctx.record('summary', summary);
    ctx.record('metrics', metricsRecord(runs, thresholds));
  },
};

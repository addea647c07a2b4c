/**
 * The trend chart of a study: steps to generalise (ID and OOD, at the lowest threshold) against
 * each numeric knob that is swept and is not a seed, with error bars (mean ± sample standard
 * deviation over the seeds that reached it), one point per run, the runs that never reached it
 * drawn at their last step as open triangles, and the trend statement (`../analysis/trend.ts`:
 * Spearman's ρ with its bootstrap interval) as the panel's subtitle. Kept apart from `sweep.ts`'s
 * metric grid: this is the one chart a study's question is answered by.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalyzedRun } from '../analysis/tables.js';
import type { StudyTrend } from '../analysis/trend.js';
import { GENERALISATION_TYPES } from '../analysis/metrics.js';
import { CHART_CONFIG } from './render.js';
import type { VlObject } from './style.js';
import { PLAIN_NUMBER_LABEL, TYPE_COLORS, wantsLogScale } from './style.js';

/** One panel: the x encoding and y scale of a knob. */
function panel(knob: string, rows: readonly VlObject[], trends: readonly StudyTrend[]): VlObject {
  const xs = [...new Set(rows.map((r) => r.x as number))].sort((a, b) => a - b);
  const x = {
    field: 'x',
    type: 'quantitative',
    title: knob,
    scale: {
      domain: [xs[0], xs[xs.length - 1]],
      padding: 16,
      nice: false,
      ...(wantsLogScale(xs, 4) ? { type: 'log' } : { zero: false }),
    },
    axis: { values: xs, labelExpr: PLAIN_NUMBER_LABEL },
  };
  // Linear from 0: a mean minus its standard deviation may fall below 0 (bars are clipped there),
  // which a log axis could not draw.
  const y = {
    field: 'step',
    type: 'quantitative',
    title: 'step from which accuracy stays ≥ θ',
    scale: { domainMin: 0, nice: true },
    axis: { format: '~s' },
  };
  const color = {
    field: 'split',
    type: 'nominal',
    title: 'split',
    scale: {
      domain: GENERALISATION_TYPES.map((g) => g.label),
      range: GENERALISATION_TYPES.map((g) => TYPE_COLORS[g.type]),
    },
  };
  const reached = { filter: 'datum.reached' };
  const tooltip = [{ field: 'run' }, { field: 'split' }, { field: 'step', title: 'step' }, { field: 'status' }];
  return {
    width: 420,
    height: 260,
    title: {
      text: `steps to generalise vs ${knob}`,
      subtitle: trends.filter((t) => t.knob === knob).map((t) => t.statement),
      fontSize: 12,
      subtitleFontSize: 10,
      limit: 1200,
    },
    transform: [{ filter: `datum.knob === '${knob}'` }],
    layer: [
      {
        transform: [reached],
        mark: { type: 'errorbar', extent: 'stdev', ticks: true, thickness: 1.5, clip: true },
        encoding: { x, y, color },
      },
      {
        transform: [reached, { aggregate: [{ op: 'mean', field: 'step', as: 'step' }], groupby: ['x', 'split'] }],
        mark: { type: 'line', strokeWidth: 1.4, point: { size: 50, filled: true } },
        encoding: { x, y, color },
      },
      {
        mark: { type: 'point', size: 36, opacity: 0.6 },
        encoding: {
          x,
          y,
          color,
          shape: {
            field: 'status',
            type: 'nominal',
            title: 'run',
            legend: { labelLimit: 300 },
            scale: { domain: ['reached', 'not reached by its last step'], range: ['circle', 'triangle-up'] },
          },
          tooltip,
        },
      },
    ],
  };
}

/**
 * The trend chart (module comment): one panel per knob of `trends`, `null` when there is none.
 * `threshold` is the θ of the trends (the lowest generalisation threshold).
 */
export function trendSpec(
  runs: readonly AnalyzedRun[],
  trends: readonly StudyTrend[],
  threshold: number,
): TopLevelSpec | null {
  const knobs = [...new Set(trends.map((t) => t.knob))];
  if (knobs.length === 0) return null;
  const rows: VlObject[] = [];
  for (const knob of knobs) {
    for (const r of runs) {
      const x = r.matrix[knob];
      if (typeof x !== 'number') continue;
      for (const { type, label } of GENERALISATION_TYPES) {
        const g = r.metrics.generalise.find((e) => e.type === type && e.threshold === threshold);
        const step = g?.at?.step ?? r.metrics.last?.step;
        if (step === undefined) continue;
        const reached = Boolean(g?.at);
        rows.push({
          knob,
          x,
          run: r.name,
          split: label,
          step,
          reached,
          status: reached ? 'reached' : 'not reached by its last step',
        });
      }
    }
  }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    title: {
      text: `Steps to generalise (ID and OOD ≥ ${threshold}) against the knob`,
      subtitle:
        'error bar: mean ± standard deviation over the seeds that reached θ; point: one run; triangle: a run that never reached θ, at its last step',
    },
    data: { values: rows },
    vconcat: knobs.map((k) =>
      panel(
        k,
        rows.filter((r) => r.knob === k),
        trends,
      ),
    ),
    spacing: 24,
  };
  return spec as unknown as TopLevelSpec;
}

/**
 * The interactive plots of a report: the same Vega-Lite specs as `analyze` renders to SVG/PNG
 * (`../plot/*`), built from an analysis's runs, for `vega-embed` to draw in the page.
 */
import type { TopLevelSpec } from 'vega-lite';
import { sweepKnobs } from '../analysis/tables.js';
import { grokkingSpec } from '../plot/grokking.js';
import { metricsSpec, overlaySpec } from '../plot/sweep.js';
import { trendSpec } from '../plot/trend.js';
import { studyTrends } from '../analysis/trend.js';
import type { ReportAnalysis } from './data.js';

/** One plot of the page. */
export interface ReportPlot {
  /** Element id of its container (unique in the page). */
  readonly id: string;
  /** Heading above it. */
  readonly title: string;
  /** The Vega-Lite spec. */
  readonly spec: TopLevelSpec;
}

/**
 * The plots of an analysis, as `analyze` draws them: `grokking` (each run's curve), and with
 * several runs `overlay` (ID/OOD accuracy of all runs), `metrics` (against each swept knob that
 * is not a seed) and `trend` (steps to generalise against each numeric such knob, error bars and
 * the trend statement). Empty when no run is analysed. `prefix` keeps ids unique across analyses.
 */
export function reportPlots(analysis: ReportAnalysis, prefix: string): ReportPlot[] {
  const runs = analysis.analysed;
  if (runs.length === 0) return [];
  const thresholds = analysis.params.generalise_thresholds;
  const threshold = Math.min(...thresholds);
  const plots: ReportPlot[] = [
    {
      id: `${prefix}-grokking`,
      title: runs.length === 1 ? 'Grokking curve' : 'Grokking curves',
      spec: grokkingSpec(runs, { threshold }),
    },
  ];
  if (runs.length > 1) {
    const knobs = sweepKnobs(runs, thresholds);
    plots.push({ id: `${prefix}-overlay`, title: 'All runs overlaid', spec: overlaySpec(runs, knobs, threshold) });
    const metrics = metricsSpec(runs, knobs, threshold);
    if (metrics) plots.push({ id: `${prefix}-metrics`, title: 'Metrics against the swept knobs', spec: metrics });
    const trend = trendSpec(runs, studyTrends(runs, thresholds), threshold);
    if (trend)
      plots.push({ id: `${prefix}-trend`, title: 'Steps to generalise against the knob (trend)', spec: trend });
  }
  return plots;
}

/**
 * What the metrics plot (`metricsSpec` in `./sweep.ts`) measures: its rows of panels (steps to
 * memorise and generalise, their ratio, final accuracy), the splits drawn in each with their
 * values for a run, and the y axis of each (scale, zoom, labels). Metric definitions:
 * `../analysis/metrics.ts`.
 */
import type { AnalyzedRun } from '../analysis/tables.js';
import { finalAccuracy } from '../analysis/tables.js';
import { GENERALISATION_TYPES } from '../analysis/metrics.js';
import type { VlObject } from './style.js';
import { STEP_LABEL, TYPE_COLORS, wantsLogScale } from './style.js';

/** One split's line in a `metricsSpec` panel: its legend label and its value for a run. */
export interface SplitLine {
  split: string;
  value: (r: AnalyzedRun) => number | null;
}

/** A row of `metricsSpec` panels: what is measured, with one line per split. */
export interface Measure {
  /** Its value of the data's `measure` column (`step`, `ratio`, `final`). */
  id: string;
  /** Panel title (before ` vs <knob>`). */
  title: string;
  /** What the panel shows, in a line under its title. */
  detail: string;
  /** y axis title. */
  axis: string;
  /** `accuracy`: [0, 1], zoomed to the data (`accuracyFloor`); `positive`: log when the values span a factor of 10. */
  scale: 'accuracy' | 'positive';
  lines: SplitLine[];
}

/** Legend labels and colours of the splits, in legend order. */
export const SPLITS = [
  { split: 'train', color: TYPE_COLORS.train_inferred },
  { split: 'ID', color: TYPE_COLORS.id_inferred },
  { split: 'OOD', color: TYPE_COLORS.ood_inferred },
] as const;

const finite = (x: number | null | undefined): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x;

/** The rows of panels of the metrics plot, at generalisation `threshold` and memorisation `memoriseThreshold`. */
export function measures(threshold: number, memoriseThreshold: number): Measure[] {
  const gen = (r: AnalyzedRun, type: string) =>
    r.metrics.generalise.find((g) => g.type === type && g.threshold === threshold);
  return [
    {
      id: 'step',
      title: 'steps',
      detail: `memorised: train ≥${memoriseThreshold}; generalised: ≥${threshold}`,
      axis: 'optimizer step',
      scale: 'positive',
      lines: [
        { split: 'train', value: (r) => r.metrics.memorise?.step ?? null },
        ...GENERALISATION_TYPES.map(({ type, label }) => ({
          split: label,
          value: (r: AnalyzedRun) => gen(r, type)?.at?.step ?? null,
        })),
      ],
    },
    {
      id: 'ratio',
      title: 'ratio',
      detail: `generalisation (≥${threshold}) step ÷ memorisation step`,
      axis: 'ratio',
      scale: 'positive',
      lines: GENERALISATION_TYPES.map(({ type, label }) => ({
        split: label,
        value: (r: AnalyzedRun) => gen(r, type)?.ratio ?? null,
      })),
    },
    {
      id: 'final',
      title: 'final accuracy',
      detail: 'inferred facts, final model',
      axis: 'accuracy',
      scale: 'accuracy',
      lines: [
        { split: 'train', value: (r) => finite(finalAccuracy(r, 'train_inferred')) },
        ...GENERALISATION_TYPES.map(({ type, label }) => ({
          split: label,
          value: (r: AnalyzedRun) => finite(finalAccuracy(r, type)),
        })),
      ],
    },
  ];
}

/**
 * Lower end of a zoomed accuracy axis: when every value is at least 0.5, the multiple of 5 % just
 * below the smallest (0.847 -> 0.8); otherwise 0 (the full scale).
 */
export function accuracyFloor(values: readonly number[]): number {
  const min = Math.min(...values);
  if (!(min >= 0.5)) return 0;
  return Math.max(0, Math.floor((min - 0.01) * 20) / 20);
}

/**
 * The y encoding and subtitle lines of measure `m` over `values`: accuracy on [0, 1], or zoomed to
 * the data (`accuracyFloor`) and saying so in the axis title and the subtitle; steps and ratios
 * on a log scale when they span a factor of 10, steps labelled `400`, `1k`, `1.5k`.
 */
export function measureAxis(m: Measure, values: readonly number[]): { y: VlObject; notes: string[] } {
  if (m.scale === 'accuracy') {
    const floor = accuracyFloor(values);
    const from = `${Math.round(floor * 100)} %`;
    return {
      y: {
        field: 'value',
        type: 'quantitative',
        title: floor > 0 ? `${m.axis} (axis from ${from})` : m.axis,
        scale: { domain: [floor, 1] },
        axis: { format: '.0%' },
      },
      notes: floor > 0 ? [`y axis zoomed: from ${from}, not 0`] : [],
    };
  }
  return {
    y: {
      field: 'value',
      type: 'quantitative',
      title: m.axis,
      scale: { padding: 8, nice: false, ...(wantsLogScale(values) ? { type: 'log' } : { zero: false }) },
      axis: m.id === 'ratio' ? { format: '~g' } : { labelExpr: STEP_LABEL },
    },
    notes: [],
  };
}

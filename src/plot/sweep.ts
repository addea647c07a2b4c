/**
 * Charts of a sweep (several runs): the ID and OOD accuracy curves of all runs overlaid, coloured
 * by the swept knob; and the grokking metrics against each swept knob (one line per split, a point
 * per run, e.g. per seed, the mean and the spread over seeds). Metric definitions: `../analysis/metrics.ts`.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalyzedRun, Knob } from '../analysis/tables.js';
import { finalAccuracy, knobText } from '../analysis/tables.js';
import { groupReplicates } from '../analysis/aggregate.js';
import { GENERALISATION_TYPES } from '../analysis/metrics.js';
import { stepExtent } from './grokking.js';
import { CHART_CONFIG } from './render.js';
import type { VlObject } from './style.js';
import { PLAIN_NUMBER_LABEL, STEP_NOTE, TYPE_COLORS, isSeedKnob, stepEncoding, wantsLogScale } from './style.js';

/** The knobs that vary across runs (two or more distinct values). */
export function sweptKnobs(knobs: readonly Knob[]): Knob[] {
  return knobs.filter((k) => k.distinct > 1);
}

/**
 * The knob that colours the overlay: the first swept knob that is not a seed, else the first swept
 * knob, else `null` (runs are then coloured by their name).
 */
export function colorKnob(knobs: readonly Knob[]): Knob | null {
  const swept = sweptKnobs(knobs);
  return swept.find((k) => !isSeedKnob(k.name)) ?? swept[0] ?? null;
}

/** The knobs the metrics are plotted against: the swept knobs that are not seeds. */
export function metricKnobs(knobs: readonly Knob[]): Knob[] {
  return sweptKnobs(knobs).filter((k) => !isSeedKnob(k.name));
}

function knobEncoding(knob: Knob | null, field: string, runs: readonly AnalyzedRun[]): VlObject {
  if (knob === null) return { field, type: 'nominal', title: 'run' };
  if (knob.numeric) return { field, type: 'ordinal', title: knob.name, scale: { scheme: 'viridis' } };
  const order = [...new Set(runs.map((r) => knobText(r.matrix[knob.name])))];
  return { field, type: 'nominal', title: knob.name, sort: order, scale: { scheme: 'tableau10' } };
}

function knobValue(run: AnalyzedRun, knob: Knob): number | string {
  return knob.numeric ? (run.matrix[knob.name] as number) : knobText(run.matrix[knob.name]);
}

/**
 * Overlay of all runs' ID and OOD inferred accuracy (one panel each), one line per run coloured by
 * `colorKnob(knobs)` (by run when no knob varies), on the symlog step axis; a dashed rule marks
 * `threshold`.
 */
export function overlaySpec(runs: readonly AnalyzedRun[], knobs: readonly Knob[], threshold: number): TopLevelSpec {
  const knob = colorKnob(knobs);
  const rows: VlObject[] = [];
  for (const r of runs) {
    const c = knob ? knobValue(r, knob) : r.name;
    for (const { type, label } of GENERALISATION_TYPES) {
      const s = r.curve[type];
      if (!s) continue;
      for (let i = 0; i < s.step.length; i++) {
        if (Number.isFinite(s.accuracy[i]))
          rows.push({
            run: r.name,
            panel: `${label} test accuracy (inferred)`,
            c,
            step: s.step[i],
            accuracy: s.accuracy[i],
          });
      }
    }
  }
  const x = stepEncoding(stepExtent(runs));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    title: {
      text: `ID and OOD accuracy of ${runs.length} runs`,
      subtitle: [
        knob
          ? `coloured by ${knob.name}; one line per run; dashed: ${threshold}`
          : `one line per run; dashed: ${threshold}`,
        STEP_NOTE,
      ],
    },
    data: { values: rows },
    facet: {
      column: {
        field: 'panel',
        type: 'nominal',
        title: null,
        sort: GENERALISATION_TYPES.map((g) => `${g.label} test accuracy (inferred)`),
      },
    },
    spec: {
      width: 380,
      height: 240,
      layer: [
        {
          mark: { type: 'line', strokeWidth: 1.4, opacity: 0.85, clip: true },
          encoding: {
            x,
            y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } },
            color: knobEncoding(knob, 'c', runs),
            detail: { field: 'run', type: 'nominal' },
          },
        },
        { mark: { type: 'rule', strokeDash: [4, 4], color: '#888888' }, encoding: { y: { datum: threshold } } },
      ],
    },
  };
  return spec as unknown as TopLevelSpec;
}

/** One split's line in a `metricsSpec` panel: its legend label and its value for a run. */
interface SplitLine {
  split: string;
  value: (r: AnalyzedRun) => number | null;
}

/** A row of `metricsSpec` panels: what is measured, with one line per split. */
interface Measure {
  id: string;
  /** Panel title (before ` vs <knob>`). */
  title: string;
  /** What the panel shows, in a line under its title. */
  detail: string;
  /** y axis title. */
  axis: string;
  /** `accuracy`: a fixed [0, 1] scale; `positive`: log when the values span a factor of 10. */
  scale: 'accuracy' | 'positive';
  lines: SplitLine[];
}

/** Legend labels and colours of the splits, in legend order. */
const SPLITS = [
  { split: 'train', color: TYPE_COLORS.train_inferred },
  { split: 'ID', color: TYPE_COLORS.id_inferred },
  { split: 'OOD', color: TYPE_COLORS.ood_inferred },
] as const;

const finite = (x: number | null | undefined): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x;

function measures(threshold: number, memoriseThreshold: number): Measure[] {
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
 * Grid of the grokking metrics against each swept knob that is not a seed (`metricKnobs`): a row
 * of three panels per knob (steps to memorise and to generalise at `threshold`; their ratio;
 * final accuracy), each with one line per split (train, ID, OOD; coloured as in the grokking
 * curve): a point per run (e.g. per seed), a line through the mean at each knob value and, when
 * runs differ only by seed, a vertical bar from the smallest to the largest value (the spread).
 * Runs that never reached a metric are left out of it (and of its mean; the panel subtitle counts
 * them). A numeric knob is a quantitative x axis (log when it spans a factor of 4 or more, a tick
 * at each value, the same domain in every panel); others are nominal in first-seen order. Steps
 * and ratios are on a log y axis when they span a factor of 10. Returns `null` when no non-seed
 * knob varies.
 */
export function metricsSpec(
  runs: readonly AnalyzedRun[],
  knobs: readonly Knob[],
  threshold: number,
): TopLevelSpec | null {
  const xs = metricKnobs(knobs);
  if (xs.length === 0) return null;
  const all = measures(threshold, runs[0]?.metrics.memoriseThreshold ?? Number.NaN);
  const rows: VlObject[] = [];
  for (const r of runs) {
    const base: VlObject = { run: r.name };
    xs.forEach((k, i) => (base[`k${i}`] = knobValue(r, k)));
    for (const m of all)
      for (const l of m.lines) rows.push({ ...base, measure: m.id, split: l.split, value: l.value(r) });
  }
  const spread = groupReplicates(runs, knobs).some((g) => g.runs.length > 1);
  const color = {
    field: 'split',
    type: 'nominal',
    title: 'split',
    scale: { domain: SPLITS.map((s) => s.split), range: SPLITS.map((s) => s.color) },
  };
  const panels: VlObject[] = [];
  xs.forEach((k, i) => {
    const xValues = runs.map((r) => knobValue(r, k));
    const nums = xValues.filter((v): v is number => typeof v === 'number');
    const x: VlObject = k.numeric
      ? {
          field: `k${i}`,
          type: 'quantitative',
          title: k.name,
          // Same x domain in every panel of the knob, whichever runs reached the metric.
          scale: {
            domain: [Math.min(...nums), Math.max(...nums)],
            padding: 14,
            nice: false,
            ...(wantsLogScale(nums, 4) ? { type: 'log' } : { zero: false }),
          },
          axis: { values: [...new Set(nums)].sort((a, b) => a - b), labelExpr: PLAIN_NUMBER_LABEL, labelOverlap: true },
        }
      : {
          field: `k${i}`,
          type: 'nominal',
          title: k.name,
          scale: { domain: [...new Set(xValues)] },
          axis: { labelAngle: 0 },
        };
    for (const m of all) {
      const values = runs.flatMap((r) => m.lines.map((l) => l.value(r))).filter((v): v is number => v !== null);
      const missing = m.lines
        .map((l) => ({ split: l.split, n: runs.filter((r) => l.value(r) === null).length }))
        .filter((e) => e.n > 0)
        .map((e) => `${e.split} ${e.n}/${runs.length}`);
      const yScale =
        m.scale === 'accuracy'
          ? { domain: [0, 1] }
          : { padding: 8, nice: false, ...(wantsLogScale(values) ? { type: 'log' } : { zero: false }) };
      const y = {
        field: 'value',
        type: 'quantitative',
        title: m.axis,
        scale: yScale,
        axis: { format: m.scale === 'accuracy' ? '.0%' : m.id === 'ratio' ? '~g' : '~s' },
      };
      // Spread, then mean, then the runs' points on top (where the pointer finds their tooltips).
      const layer: VlObject[] = [];
      if (spread) {
        layer.push({
          mark: { type: 'rule', strokeWidth: 1.2, opacity: 0.8 },
          encoding: { x, y: { ...y, aggregate: 'min' }, y2: { field: 'value', aggregate: 'max' }, color },
        });
      }
      layer.push(
        { mark: { type: 'line', strokeWidth: 1.6 }, encoding: { x, y: { ...y, aggregate: 'mean' }, color } },
        {
          mark: { type: 'point', filled: true, size: 40, opacity: 0.55 },
          encoding: { x, y, color, tooltip: [{ field: 'run' }, { field: 'split' }, { field: 'value', format: '~g' }] },
        },
      );
      panels.push({
        width: 250,
        height: 180,
        title: {
          text: `${m.title} vs ${k.name}`,
          subtitle: missing.length > 0 ? [m.detail, `never reached: ${missing.join(', ')}`] : m.detail,
          fontSize: 12,
          subtitleFontSize: 10,
          limit: 400,
        },
        transform: [{ filter: `datum.measure === '${m.id}' && isValid(datum.value) && isFinite(datum.value)` }],
        layer,
      });
    }
  });
  const subtitle = spread
    ? 'one point per run (seed); line: mean over the runs that reached the metric; bar: smallest to largest value'
    : 'one point per run; line: mean over the runs that reached the metric';
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    title: { text: 'Grokking metrics against the swept knobs', subtitle },
    data: { values: rows },
    concat: panels,
    columns: all.length,
    spacing: 24,
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
  };
  return spec as unknown as TopLevelSpec;
}

/**
 * Charts of a sweep (several runs): the ID and OOD accuracy curves of all runs overlaid, coloured
 * by the swept knob; and each grokking metric against each swept knob (one point per run, e.g. per
 * seed, and a line through the means). Metric definitions: `../analysis/metrics.ts`.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalyzedRun, Knob } from '../analysis/report.js';
import { knobText } from '../analysis/report.js';
import { GENERALISATION_TYPES } from '../analysis/metrics.js';
import { stepExtent } from './grokking.js';
import { CHART_CONFIG } from './render.js';
import type { VlObject } from './style.js';
import { PLAIN_NUMBER_LABEL, STEP_NOTE, isSeedKnob, stepEncoding, wantsLogScale } from './style.js';

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
        if (Number.isFinite(s.accuracy[i])) rows.push({ run: r.name, panel: `${label} test accuracy (inferred)`, c, step: s.step[i], accuracy: s.accuracy[i] });
      }
    }
  }
  const x = stepEncoding(stepExtent(runs));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    title: {
      text: `ID and OOD accuracy of ${runs.length} runs`,
      subtitle: [knob ? `coloured by ${knob.name}; one line per run; dashed: ${threshold}` : `one line per run; dashed: ${threshold}`, STEP_NOTE],
    },
    data: { values: rows },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: GENERALISATION_TYPES.map((g) => `${g.label} test accuracy (inferred)`) } },
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

/** A metric shown by `metricsSpec`: the `metrics.parquet` column and a title. */
interface MetricField {
  column: string;
  title: string;
  value: (r: AnalyzedRun) => number | null;
}

function metricFields(threshold: number): MetricField[] {
  const fields: MetricField[] = [
    { column: 'memorise_step', title: 'memorisation step', value: (r) => r.metrics.memorise?.step ?? null },
  ];
  for (const { type, short, label } of GENERALISATION_TYPES) {
    fields.push({
      column: `${short}_step_${threshold}`,
      title: `${label} ≥${threshold} step`,
      value: (r) => r.metrics.generalise.find((g) => g.type === type && g.threshold === threshold)?.at?.step ?? null,
    });
  }
  return fields;
}

/**
 * Grid of each grokking metric (memorisation step, ID and OOD generalisation step at `threshold`;
 * steps) against each swept knob that is not a seed (`metricKnobs`): one point per run, a line
 * through the mean at each knob value. Runs that never reached a metric are left out of its panel
 * (and of the mean; the panel title counts them). A numeric knob is a quantitative x axis (log
 * when it spans a factor of 4 or more, a tick at each value, the same domain in every panel);
 * others are nominal in first-seen order. Steps are on a log y axis when they span a factor of 10.
 * Returns `null` when no non-seed knob varies.
 */
export function metricsSpec(runs: readonly AnalyzedRun[], knobs: readonly Knob[], threshold: number): TopLevelSpec | null {
  const xs = metricKnobs(knobs);
  if (xs.length === 0) return null;
  const fields = metricFields(threshold);
  const rows: VlObject[] = runs.map((r) => {
    const row: VlObject = { run: r.name };
    xs.forEach((k, i) => (row[`k${i}`] = knobValue(r, k)));
    fields.forEach((f, j) => (row[`m${j}`] = f.value(r)));
    return row;
  });
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
          scale: { domain: [Math.min(...nums), Math.max(...nums)], padding: 14, nice: false, ...(wantsLogScale(nums, 4) ? { type: 'log' } : { zero: false }) },
          axis: { values: [...new Set(nums)].sort((a, b) => a - b), labelExpr: PLAIN_NUMBER_LABEL, labelOverlap: true },
        }
      : { field: `k${i}`, type: 'nominal', title: k.name, scale: { domain: [...new Set(xValues)] }, axis: { labelAngle: 0 } };
    fields.forEach((f, j) => {
      const values = runs.map(f.value).filter((v): v is number => v !== null);
      const missing = runs.length - values.length;
      const y = {
        field: `m${j}`,
        type: 'quantitative',
        title: `${f.title} (steps)`,
        scale: { padding: 8, nice: false, ...(wantsLogScale(values) ? { type: 'log' } : { zero: false }) },
        axis: { format: '~s' },
      };
      panels.push({
        width: 240,
        height: 180,
        title: { text: missing > 0 ? [`${f.column} vs ${k.name}`, `(${missing} of ${runs.length} runs never reached it)`] : `${f.column} vs ${k.name}`, fontSize: 12 },
        transform: [{ filter: `isValid(datum.m${j}) && isFinite(datum.m${j})` }],
        layer: [
          { mark: { type: 'point', filled: true, size: 45, opacity: 0.75, color: '#1f77b4' }, encoding: { x, y } },
          { mark: { type: 'line', color: '#e6550d', strokeWidth: 1.5 }, encoding: { x, y: { ...y, aggregate: 'mean' } } },
        ],
      });
    });
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    title: { text: 'Grokking metrics against the swept knobs', subtitle: 'blue: one point per run (seed); orange: mean over the runs that reached the metric' },
    data: { values: rows },
    concat: panels,
    columns: fields.length,
    spacing: 24,
  };
  return spec as unknown as TopLevelSpec;
}

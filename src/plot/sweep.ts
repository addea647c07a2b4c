/**
 * Charts of a sweep (several runs): the ID and OOD accuracy curves of all runs overlaid, coloured
 * by the swept knob; and the grokking metrics against each swept knob (one line per split, a point
 * per run, e.g. per seed, the mean and the spread over seeds; what is measured: `./measures.ts`).
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalyzedRun, Knob } from '../analysis/tables.js';
import { knobText } from '../analysis/tables.js';
import { groupReplicates } from '../analysis/aggregate.js';
import { GENERALISATION_TYPES } from '../analysis/metrics.js';
import { stepExtent } from './grokking.js';
import { CHART_CONFIG, legendAbove } from './render.js';
import type { VlObject } from './style.js';
import type { Measure } from './measures.js';
import { SPLITS, measureAxis, measures } from './measures.js';
import { PLAIN_NUMBER_LABEL, STEP_NOTE, isSeedKnob, stepEncoding, textWidth, wantsLogScale } from './style.js';

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

/** Most values a categorical colour scheme tells apart; beyond, colours are sampled from `turbo`. */
const CATEGORICAL_MAX = 10;

/**
 * Colour of a knob's values: distinct hues (Tableau 10) for up to 10 values, so that neighbouring
 * values never get near-identical colours; numeric values in ascending order in the legend,
 * others in first-seen order; beyond 10 values a rainbow (`turbo`) sampled at each value.
 */
function knobEncoding(knob: Knob | null, field: string, runs: readonly AnalyzedRun[]): VlObject {
  const values = new Set(runs.map((r) => (knob ? knobText(r.matrix[knob.name]) : r.name)));
  const scheme = values.size <= CATEGORICAL_MAX ? 'tableau10' : 'turbo';
  const legend = { symbolStrokeWidth: 3 };
  if (knob === null) return { field, type: 'nominal', title: 'run', scale: { scheme }, legend };
  if (knob.numeric) return { field, type: 'ordinal', title: knob.name, scale: { scheme }, legend };
  return { field, type: 'nominal', title: knob.name, sort: [...values], scale: { scheme }, legend };
}

/** Dash patterns of the seeds (solid first); more seeds than patterns reuse them in turn. */
const SEED_DASHES = [
  [1, 0],
  [7, 3],
  [2, 2],
  [9, 3, 2, 3],
  [1, 4],
  [14, 4],
];

/** The seed knob that dashes the overlay's lines: a swept seed knob other than the colour knob. */
function dashKnob(knobs: readonly Knob[], color: Knob | null): Knob | null {
  return sweptKnobs(knobs).find((k) => isSeedKnob(k.name) && k.name !== color?.name) ?? null;
}

function knobValue(run: AnalyzedRun, knob: Knob): number | string {
  return knob.numeric ? (run.matrix[knob.name] as number) : knobText(run.matrix[knob.name]);
}

/**
 * Overlay of all runs' ID and OOD inferred accuracy (one panel each, a wrapped facet of two
 * columns), one line per run coloured by `colorKnob(knobs)` (by run when no knob varies; distinct
 * hues, see `knobEncoding`) and, when a seed knob varies besides, dashed by seed; on the symlog
 * step axis; a grey dashed rule marks `threshold`.
 */
export function overlaySpec(runs: readonly AnalyzedRun[], knobs: readonly Knob[], threshold: number): TopLevelSpec {
  const knob = colorKnob(knobs);
  const seed = dashKnob(knobs, knob);
  const rows: VlObject[] = [];
  for (const r of runs) {
    const c = knob ? knobValue(r, knob) : r.name;
    const d = seed ? knobValue(r, seed) : 0;
    for (const { type, label } of GENERALISATION_TYPES) {
      const s = r.curve[type];
      if (!s) continue;
      for (let i = 0; i < s.step.length; i++) {
        if (Number.isFinite(s.accuracy[i]))
          rows.push({
            run: r.name,
            panel: `${label} test accuracy (inferred)`,
            c,
            d,
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
        `one line per run, coloured by ${knob ? knob.name : 'run'}${seed ? `, dashed by ${seed.name}` : ''}; grey rule: ${threshold}`,
        STEP_NOTE,
      ],
    },
    data: { values: rows },
    // a wrapped facet: the report may lay its panels out in fewer columns on a narrow page
    facet: {
      field: 'panel',
      type: 'nominal',
      title: null,
      sort: GENERALISATION_TYPES.map((g) => `${g.label} test accuracy (inferred)`),
    },
    columns: GENERALISATION_TYPES.length,
    spec: {
      width: 380,
      height: 240,
      layer: [
        {
          mark: { type: 'line', strokeWidth: 1.6, opacity: 0.9, clip: true },
          encoding: {
            x,
            y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } },
            color: knobEncoding(knob, 'c', runs),
            ...(seed
              ? {
                  strokeDash: {
                    field: 'd',
                    type: 'ordinal',
                    title: seed.name,
                    scale: { range: SEED_DASHES },
                    legend: { symbolStrokeWidth: 2, symbolSize: 300 },
                  },
                }
              : {}),
            detail: { field: 'run', type: 'nominal' },
          },
        },
        { mark: { type: 'rule', strokeDash: [4, 4], color: '#888888' }, encoding: { y: { datum: threshold } } },
      ],
    },
  };
  return spec as unknown as TopLevelSpec;
}

/** Rows of `metricsSpec`'s data: one per run, measure and split, with the knob values as `k0`, `k1`, ... */
function metricRows(runs: readonly AnalyzedRun[], xs: readonly Knob[], all: readonly Measure[]): VlObject[] {
  const rows: VlObject[] = [];
  for (const r of runs) {
    const base: VlObject = { run: r.name };
    xs.forEach((k, i) => (base[`k${i}`] = knobValue(r, k)));
    for (const m of all)
      for (const l of m.lines) rows.push({ ...base, measure: m.id, split: l.split, value: l.value(r) });
  }
  return rows;
}

/**
 * The x encoding of knob `k` (field `k<i>`): quantitative for a numeric knob (log when it spans a
 * factor of 4, a tick at each value, the same domain in every panel whichever runs reached the
 * metric), nominal in first-seen order otherwise.
 */
function knobAxis(k: Knob, i: number, runs: readonly AnalyzedRun[]): VlObject {
  const xValues = runs.map((r) => knobValue(r, k));
  const nums = xValues.filter((v): v is number => typeof v === 'number');
  if (!k.numeric)
    return {
      field: `k${i}`,
      type: 'nominal',
      title: k.name,
      scale: { domain: [...new Set(xValues)] },
      axis: { labelAngle: 0 },
    };
  const log = wantsLogScale(nums, 4);
  const values = [...new Set(nums)].sort((a, b) => a - b);
  return {
    field: `k${i}`,
    type: 'quantitative',
    title: k.name,
    scale: {
      domain: [values[0], values[values.length - 1]],
      padding: KNOB_PADDING,
      nice: false,
      ...(log ? { type: 'log' } : { zero: false }),
    },
    axis: {
      values,
      labelExpr: PLAIN_NUMBER_LABEL,
      // Slanted when neighbouring labels would touch written flat (a label at every value):
      // parallel slanted labels 20 px apart are 13 px apart across, so none is left out.
      ...(labelsCrowded(values, log)
        ? { labelAngle: -40, labelOverlap: false }
        : { labelOverlap: 'greedy', labelSeparation: 3 }),
    },
  };
}

/** Width of a metrics panel (pixels) and the padding of its knob axis at each end. */
const PANEL_WIDTH = 240;
const KNOB_PADDING = 14;

/**
 * Whether two neighbouring labels of knob `values` (ascending) on a metrics panel's x axis (log or
 * linear, see `knobAxis`) would come closer than 4 pixels written horizontally (11-pixel labels).
 */
function labelsCrowded(values: readonly number[], log: boolean): boolean {
  const f = (v: number) => (log ? Math.log(v) : v);
  const span = f(values[values.length - 1]) - f(values[0]);
  const px = (v: number) => (span > 0 ? ((f(v) - f(values[0])) / span) * (PANEL_WIDTH - 2 * KNOB_PADDING) : 0);
  // the label as `PLAIN_NUMBER_LABEL` writes it (d3's `~g`: six significant digits, no trailing zeros)
  const half = (v: number) => textWidth(String(Number(v.toPrecision(6))), 11) / 2;
  return values.some((v, j) => j > 0 && px(v) - px(values[j - 1]) < half(v) + half(values[j - 1]) + 4);
}

/**
 * One panel of `metricsSpec`: measure `m` against the knob encoded by `x`, with a spread bar per
 * knob value when `spread`, the mean line and the runs' points.
 */
function metricPanel(m: Measure, knob: Knob, x: VlObject, runs: readonly AnalyzedRun[], spread: boolean): VlObject {
  const values = runs.flatMap((r) => m.lines.map((l) => l.value(r))).filter((v): v is number => v !== null);
  const missing = m.lines
    .map((l) => ({ split: l.split, n: runs.filter((r) => l.value(r) === null).length }))
    .filter((e) => e.n > 0)
    .map((e) => `${e.split} ${e.n}/${runs.length}`);
  const { y, notes } = measureAxis(m, values);
  const color = {
    field: 'split',
    type: 'nominal',
    title: 'split',
    scale: { domain: SPLITS.map((s) => s.split), range: SPLITS.map((s) => s.color) },
  };
  // Spread, then mean, then the runs' points on top (where the pointer finds their tooltips).
  const layer: VlObject[] = [];
  if (spread)
    layer.push({
      mark: { type: 'rule', strokeWidth: 1.2, opacity: 0.8 },
      encoding: { x, y: { ...y, aggregate: 'min' }, y2: { field: 'value', aggregate: 'max' }, color },
    });
  layer.push(
    { mark: { type: 'line', strokeWidth: 1.6 }, encoding: { x, y: { ...y, aggregate: 'mean' }, color } },
    {
      mark: { type: 'point', filled: true, size: 40, opacity: 0.55 },
      encoding: { x, y, color, tooltip: [{ field: 'run' }, { field: 'split' }, { field: 'value', format: '~g' }] },
    },
  );
  const subtitle = [m.detail, ...notes, ...(missing.length > 0 ? [`never reached: ${missing.join(', ')}`] : [])];
  return {
    width: PANEL_WIDTH,
    height: 180,
    title: {
      text: `${m.title} vs ${knob.name}`,
      subtitle: subtitle.length === 1 ? subtitle[0] : subtitle,
      fontSize: 12,
      subtitleFontSize: 10,
      limit: 400,
    },
    transform: [{ filter: `datum.measure === '${m.id}' && isValid(datum.value) && isFinite(datum.value)` }],
    layer,
  };
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
 * and ratios are on a log y axis when they span a factor of 10; final accuracy on [0, 1], zoomed
 * to the data when every value is at least 0.5 (the axis title and subtitle say from where).
 * The legend is above the grid. Returns `null` when no non-seed knob varies.
 */
export function metricsSpec(
  runs: readonly AnalyzedRun[],
  knobs: readonly Knob[],
  threshold: number,
): TopLevelSpec | null {
  const xs = metricKnobs(knobs);
  if (xs.length === 0) return null;
  const all = measures(threshold, runs[0]?.metrics.memoriseThreshold ?? Number.NaN);
  const spread = groupReplicates(runs, knobs).some((g) => g.runs.length > 1);
  const panels = xs.flatMap((k, i) => all.map((m) => metricPanel(m, k, knobAxis(k, i, runs), runs, spread)));
  const subtitle = spread
    ? 'one point per run (seed); line: mean over the runs that reached the metric; bar: smallest to largest value'
    : 'one point per run; line: mean over the runs that reached the metric';
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: legendAbove(CHART_CONFIG),
    title: { text: 'Grokking metrics against the swept knobs', subtitle },
    data: { values: metricRows(runs, xs, all) },
    concat: panels,
    columns: all.length,
    spacing: 24,
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
  };
  return spec as unknown as TopLevelSpec;
}

/**
 * Shared pieces of grokpipe's Vega-Lite charts: colours per curve type, the step axis, and helpers.
 *
 * Specs are built as plain objects (typed loosely as `VlObject`; `vega-lite` validates them when
 * compiling) and the top-level spec is typed as `TopLevelSpec` by each chart builder.
 */

/** A fragment of a Vega-Lite spec. */
export type VlObject = Record<string, unknown>;

/** Colours of the curve types: training in grey, ID in blue, OOD in orange (atomic: lighter). */
export const TYPE_COLORS: Readonly<Record<string, string>> = {
  train_inferred: '#4d4d4d',
  id_inferred: '#1f77b4',
  ood_inferred: '#e6550d',
  id_atomic: '#9ecae1',
  ood_atomic: '#fdae6b',
  train_batch: '#969696',
};

/** Legend labels of the curve types. */
export const TYPE_LABELS: Readonly<Record<string, string>> = {
  train_inferred: 'train (inferred)',
  id_inferred: 'ID test (inferred)',
  ood_inferred: 'OOD test (inferred)',
  id_atomic: 'ID atomic',
  ood_atomic: 'OOD atomic',
  train_batch: 'train batches',
};

/** The extent of the step axis: the largest step and the smallest positive step plotted. */
export interface StepExtent {
  /** Largest step (steps); the axis runs from 0 to it. */
  max: number;
  /** Smallest positive step (steps), normally `eval_every`; the symlog scale is linear below it. */
  minPositive: number;
}

/**
 * Tick values for a step axis on a symlog scale: 0, then a 1-2-5 series (1-2-3-5 when the axis
 * spans at most 2.5 decades, powers of ten only beyond 4.5 decades) from the first such value ≥
 * `minPositive` up to `max`, so that every decade is read at several points (Vega's own symlog
 * ticks are linear, which hides the early steps). `max` itself is added when it is at least 30 %
 * beyond the last tick (the end of a run, `3k` after `2k`); so is it when fewer than 3 ticks result.
 */
export function stepTicks(extent: StepExtent): number[] {
  const ticks = [0];
  const low = Math.max(1, extent.minPositive);
  const max = Math.max(1, extent.max);
  const decades = Math.log10(max / low);
  const mantissas = decades <= 2.5 ? [1, 2, 3, 5] : decades <= 4.5 ? [1, 2, 5] : [1];
  for (let p = 10 ** Math.floor(Math.log10(low)); p <= max; p *= 10)
    for (const m of mantissas) {
      // rounded: 3 * 0.1 is not 0.3 in floating point
      const t = Number((m * p).toPrecision(12));
      if (t >= low && t <= max) ticks.push(t);
    }
  const last = ticks[ticks.length - 1];
  if (extent.max > 0 && last < max && (max >= last * 1.3 || ticks.length < 3)) ticks.push(max);
  return ticks;
}

/**
 * Vega expression labelling a step (or any count) without exponent noise or a misleading SI
 * prefix: `0`, `400`, `1k`, `1.5k`, `12k`, `2M` (d3's `~s` with an automatic precision writes 400
 * as `0.4k` next to `1k`).
 */
export const STEP_LABEL =
  "abs(datum.value) >= 1e6 ? format(datum.value / 1e6, '~g') + 'M' : abs(datum.value) >= 1e3 ? format(datum.value / 1e3, '~g') + 'k' : format(datum.value, '~g')";

/** Axis title of the step encoding. */
export const STEP_TITLE = 'optimizer step (log scale)';

/** Chart subtitle line explaining the step axis. */
export const STEP_NOTE = 'step axis: logarithmic, linear between step 0 and the first evaluation';

/**
 * The x encoding of optimizer steps: a `symlog` scale with constant `minPositive`, i.e. x ∝
 * log(1 + step / minPositive): logarithmic beyond the first evaluation step and linear below it,
 * so that step 0 is shown as it is (no shifted or dropped point) and the axis reads in true steps.
 * Shared domain `[0, max]` across panels. `labels: false` hides the axis (for a panel stacked over
 * another with the same x).
 */
export function stepEncoding(extent: StepExtent, labels = true): VlObject {
  return {
    field: 'step',
    type: 'quantitative',
    title: labels ? STEP_TITLE : null,
    scale: {
      type: 'symlog',
      constant: Math.max(1, extent.minPositive),
      domain: [0, Math.max(1, extent.max)],
      nice: false,
    },
    axis: {
      values: stepTicks(extent),
      labelExpr: STEP_LABEL,
      labelFlush: true,
      // a label that would touch its neighbour is left out (its tick and grid line stay)
      labelOverlap: 'greedy',
      labelSeparation: 4,
      labels,
      ticks: labels,
    },
  };
}

/** Vega expression formatting a number without exponent noise (`100`, `12.6`, `0.001`). */
export const PLAIN_NUMBER_LABEL = "format(datum.value, '~g')";

/** Name of a knob that only replicates a run (a random seed): not a variable to plot against. */
export { isSeedKnob } from '../analysis/aggregate.js';

/** Whether positive values span enough for a log scale (all > 0 and max/min ≥ `factor`, default 10). */
export function wantsLogScale(values: readonly number[], factor = 10): boolean {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return false;
  const min = Math.min(...v);
  const max = Math.max(...v);
  return min > 0 && max / min >= factor;
}

/** Widths of DejaVu Sans glyphs, in em, for the characters a rule label uses; others: 0.62. */
const GLYPH_EM: Readonly<Record<string, number>> = {
  ' ': 0.318,
  '.': 0.318,
  ',': 0.318,
  '@': 1.0,
  '≥': 0.838,
  m: 0.974,
  w: 0.818,
  i: 0.278,
  l: 0.278,
  r: 0.411,
  t: 0.392,
  f: 0.352,
  I: 0.295,
  D: 0.77,
  O: 0.787,
  k: 0.579,
};

/**
 * Estimated width (pixels) of `text` at `fontSize` pixels, from the glyph widths of DejaVu Sans,
 * the widest of the fonts `sans-serif` resolves to where the plots are drawn (`./render.ts`;
 * an overestimate for Liberation Sans and Arial).
 */
export function textWidth(text: string, fontSize: number): number {
  let em = 0;
  for (const ch of text) em += GLYPH_EM[ch] ?? 0.62;
  return em * fontSize;
}

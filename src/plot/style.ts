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
 * Tick values for a step axis on a symlog scale: 0 and the powers of ten from `minPositive` up to
 * `max` (Vega's own symlog ticks are linear, which hides the early steps).
 */
export function stepTicks(extent: StepExtent): number[] {
  const ticks = [0];
  const start = 10 ** Math.ceil(Math.log10(Math.max(1, extent.minPositive)));
  for (let p = start; p <= Math.max(1, extent.max); p *= 10) ticks.push(p);
  if (ticks.length < 3 && extent.max > 0 && !ticks.includes(extent.max)) ticks.push(extent.max);
  return ticks;
}

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
  const labelExpr =
    "datum.value >= 1e6 ? format(datum.value / 1e6, '~g') + 'M' : datum.value >= 1e3 ? format(datum.value / 1e3, '~g') + 'k' : format(datum.value, '~g')";
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
    axis: { values: stepTicks(extent), labelExpr, labelFlush: true, labels, ticks: labels },
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

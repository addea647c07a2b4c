/**
 * The lower panels of the grokking curve (`./grokking.ts`): progress measures at every evaluation.
 * The loss of the training batches and of each inferred type (train, ID test, OOD test) on a log
 * axis, and, when the curve has them, the L2 norms of the weights: of all of them (Omnigrok, Liu
 * et al. 2022, arXiv 2210.01117: generalisation comes as weight decay pulls the norm down), of each
 * block and of the rest (`../analysis/weight-norms.ts`). One colour scale serves every panel, so
 * that a grid of runs has one legend.
 */
import type { AnalyzedRun } from '../analysis/tables.js';
import { ACCURACY_TYPES, TRAIN_BATCH_TYPE } from '../analysis/metrics.js';
import { normColumnNames, weightNormLabel } from '../analysis/weight-norms.js';
import { WEIGHT_NORM } from '../analysis/files.js';
import type { VlObject } from './style.js';
import { TYPE_COLORS, TYPE_LABELS } from './style.js';

/** Curve types whose loss the loss panel draws, in legend order. */
export const LOSS_TYPES = [TRAIN_BATCH_TYPE, 'train_inferred', 'id_inferred', 'ood_inferred'] as const;

/** Colours of block norms (cycled): purples and greens, apart from the types' greys, blues and oranges. */
const BLOCK_COLORS = ['#54278f', '#31a354', '#9e9ac8', '#006d2c', '#756bb1', '#74c476', '#3f007d', '#a1d99b'];
/** Colour of the norm of all weights, and of the weights outside the blocks. */
const TOTAL_COLOR = '#000000';
const OTHER_COLOR = '#8c6d31';

/** Colour of a norm column (`k`: its block index among the blocks, for the palette). */
function normColor(name: string, k: number): string {
  if (name === WEIGHT_NORM) return TOTAL_COLOR;
  return /_block_\d+$/.test(name) ? BLOCK_COLORS[k % BLOCK_COLORS.length] : OTHER_COLOR;
}

/**
 * The colour encoding shared by every panel of the grokking chart: accuracy types, train batches,
 * then the weight-norm parts that any of `runs` has, by their legend labels; `columns` > 0 wraps a
 * legend laid out in a row (above a grid) after that many entries.
 */
export function curveColor(runs: readonly AnalyzedRun[], columns = 0): VlObject {
  const types = [...ACCURACY_TYPES, TRAIN_BATCH_TYPE];
  const norms = normColumnNames(runs.map((r) => r.norms));
  let block = 0;
  const normColors = norms.map((n) => normColor(n, /_block_/.test(n) ? block++ : 0));
  return {
    field: 'series',
    type: 'nominal',
    title: 'curve',
    legend: { labelLimit: 0, ...(columns > 0 && { columns }) },
    scale: {
      domain: [...types.map((t) => TYPE_LABELS[t]), ...norms.map(weightNormLabel)],
      range: [...types.map((t) => TYPE_COLORS[t]), ...normColors],
    },
  };
}

/**
 * Scale and axis of the loss panel: logarithmic over whole decades, a tick and grid line at each
 * power of ten only (Vega's own log ticks add a grid line at every 2..9 × 10^k on a short range);
 * linear when there is no loss to draw.
 */
export function lossScale(losses: readonly number[]): VlObject {
  if (losses.length === 0) return { scale: { type: 'linear' }, axis: { format: '~g', tickCount: 3 } };
  const lo = Math.floor(Math.log10(Math.min(...losses)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...losses))));
  const values = Array.from({ length: hi - lo + 1 }, (_, i) => Number((10 ** (lo + i)).toPrecision(12)));
  return {
    scale: { type: 'log', domain: [values[0], values[values.length - 1]], nice: false },
    axis: { format: '~g', values, labelOverlap: 'greedy' },
  };
}

/** Rows of the loss lines: one per (type, step) of `LOSS_TYPES`; non-positive and non-finite losses left out (log axis). */
export function lossRows(run: AnalyzedRun): VlObject[] {
  const rows: VlObject[] = [];
  for (const type of LOSS_TYPES) {
    const s = run.curve[type];
    if (!s) continue;
    for (let i = 0; i < s.step.length; i++)
      if (s.loss[i] > 0 && Number.isFinite(s.loss[i]))
        rows.push({ series: TYPE_LABELS[type], step: s.step[i], loss: s.loss[i] });
  }
  return rows;
}

/** Rows of the weight-norm lines: one per (norm column, step); none when the curve has no norms. */
export function normRows(run: AnalyzedRun): VlObject[] {
  const rows: VlObject[] = [];
  for (const p of run.norms?.parts ?? [])
    p.norm.forEach((norm, i) => {
      if (Number.isFinite(norm))
        rows.push({ series: weightNormLabel(p.name), step: run.norms?.step[i] as number, norm });
    });
  return rows;
}

/** A lower panel: lines of `rows` coloured by `color`, `y` its y encoding, on the step encoding `x`. */
function linePanel(rows: VlObject[], x: VlObject, y: VlObject, color: VlObject, width: number): VlObject {
  return {
    width,
    height: Math.round(width * 0.24),
    data: { values: rows },
    mark: { type: 'line', strokeWidth: 1.2, clip: true },
    encoding: { x, y, color },
  };
}

/** The loss panel of a run: `x` its step encoding, `color` the shared `curveColor`. */
export function lossPanel(run: AnalyzedRun, x: VlObject, color: VlObject, width: number): VlObject {
  const rows = lossRows(run);
  const y = { field: 'loss', type: 'quantitative', title: 'loss', ...lossScale(rows.map((r) => r.loss as number)) };
  return linePanel(rows, x, y, color, width);
}

/** The weight-norm panel of a run (linear axis, not from zero), or null when its curve has no norms. */
export function normPanel(run: AnalyzedRun, x: VlObject, color: VlObject, width: number): VlObject | null {
  const rows = normRows(run);
  if (rows.length === 0) return null;
  const y = { field: 'norm', type: 'quantitative', title: 'weight norm (L2)', scale: { zero: false } };
  return linePanel(rows, x, y, color, width);
}

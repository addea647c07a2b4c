/**
 * The grokking curve of one run (or a grid of them, one panel per run), after Wang et al. 2024,
 * Fig. 1: accuracy of the training, ID-test and OOD-test inferred facts (and the atomic facts)
 * against the optimizer step on a symlog axis, with the training loss in a panel below, and the
 * memorisation and generalisation steps (`../analysis/metrics.ts`) marked by dashed vertical rules.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalyzedRun } from '../analysis/tables.js';
import { ACCURACY_TYPES, GENERALISATION_TYPES, TRAIN_BATCH_TYPE, TRAIN_TYPE } from '../analysis/metrics.js';
import { CHART_CONFIG } from './render.js';
import type { StepExtent, VlObject } from './style.js';
import { STEP_NOTE, TYPE_COLORS, TYPE_LABELS, stepEncoding } from './style.js';

/** Options of `grokkingSpec`. */
export interface GrokkingOptions {
  /** Generalisation threshold whose steps are marked (normally the lowest one analysed). */
  threshold: number;
}

/** Largest step of any curve among `runs` (0 when all are empty) and smallest positive step (1 when none). */
export function stepExtent(runs: readonly AnalyzedRun[]): StepExtent {
  let max = 0;
  let minPositive = Infinity;
  for (const r of runs) {
    for (const s of Object.values(r.curve)) {
      for (const step of s.step) {
        if (step > max) max = step;
        if (step > 0 && step < minPositive) minPositive = step;
      }
    }
  }
  return { max, minPositive: Number.isFinite(minPositive) ? minPositive : 1 };
}

/** Rows of a run's accuracy lines: one per (type, step) of the accuracy types present. */
function accuracyRows(run: AnalyzedRun): VlObject[] {
  const rows: VlObject[] = [];
  for (const type of ACCURACY_TYPES) {
    const s = run.curve[type];
    if (!s) continue;
    for (let i = 0; i < s.step.length; i++) {
      if (Number.isFinite(s.accuracy[i]))
        rows.push({ series: TYPE_LABELS[type], step: s.step[i], accuracy: s.accuracy[i] });
    }
  }
  return rows;
}

/**
 * Rows of a run's training-loss line: the `train_batch` loss (mean over the batches since the last
 * evaluation), or the `train_inferred` loss when there is no `train_batch` series. Non-positive
 * and non-finite losses are left out (log scale).
 */
function lossRows(run: AnalyzedRun): { rows: VlObject[]; source: string } {
  const source = run.curve[TRAIN_BATCH_TYPE] ? TRAIN_BATCH_TYPE : TRAIN_TYPE;
  const s = run.curve[source];
  const rows: VlObject[] = [];
  if (s)
    for (let i = 0; i < s.step.length; i++)
      if (s.loss[i] > 0 && Number.isFinite(s.loss[i])) rows.push({ step: s.step[i], loss: s.loss[i] });
  return { rows, source };
}

/** Rows of the vertical rules: memorisation and ID/OOD generalisation at `threshold`. */
function ruleRows(run: AnalyzedRun, threshold: number): VlObject[] {
  const rows: VlObject[] = [];
  const m = run.metrics;
  if (m.memorise)
    rows.push({ series: TYPE_LABELS[TRAIN_TYPE], step: m.memorise.step, label: `memorised @${m.memorise.step}` });
  for (const { type, label } of GENERALISATION_TYPES) {
    const g = m.generalise.find((e) => e.type === type && e.threshold === threshold);
    if (g?.at) rows.push({ series: TYPE_LABELS[type], step: g.at.step, label: `${label} ≥${threshold} @${g.at.step}` });
  }
  // Labels of rules at the same step are stacked along the rule instead of drawn over each other.
  const atStep = new Map<unknown, number>();
  for (const row of rows) {
    const k = atStep.get(row.step) ?? 0;
    atStep.set(row.step, k + 1);
    row.labelY = 0.03 + 0.33 * k;
  }
  return rows;
}

function runPanel(
  run: AnalyzedRun,
  extent: StepExtent,
  threshold: number,
  width: number,
  title: string | null,
): VlObject {
  const x = stepEncoding(extent);
  const xHidden = stepEncoding(extent, false);
  const color = {
    field: 'series',
    type: 'nominal',
    title: 'accuracy on',
    legend: { labelLimit: 0 },
    scale: { domain: ACCURACY_TYPES.map((t) => TYPE_LABELS[t]), range: ACCURACY_TYPES.map((t) => TYPE_COLORS[t]) },
  };
  const rules = ruleRows(run, threshold);
  const loss = lossRows(run);
  const accuracy: VlObject = {
    width,
    height: Math.round(width * 0.5),
    layer: [
      {
        data: { values: accuracyRows(run) },
        mark: { type: 'line', strokeWidth: 1.8, clip: true },
        encoding: {
          x: xHidden,
          y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } },
          color,
        },
      },
      {
        data: { values: rules },
        mark: { type: 'rule', strokeDash: [5, 3], strokeWidth: 1.2 },
        encoding: { x: xHidden, color },
      },
      {
        data: { values: rules },
        // Written upwards along the left of each rule, from near the bottom of the panel.
        mark: {
          type: 'text',
          angle: 270,
          align: 'left',
          baseline: 'bottom',
          dy: -3,
          fontSize: 10,
          limit: Math.round(width * 0.45),
        },
        encoding: { x: xHidden, y: { field: 'labelY', type: 'quantitative' }, text: { field: 'label' }, color },
      },
    ],
  };
  if (title !== null) accuracy.title = { text: title, fontSize: 12 };
  const lossPanel: VlObject = {
    width,
    height: Math.round(width * 0.2),
    data: { values: loss.rows },
    mark: { type: 'line', strokeWidth: 1.2, color: TYPE_COLORS.train_batch, clip: true },
    encoding: {
      x,
      y: {
        field: 'loss',
        type: 'quantitative',
        title: loss.source === TRAIN_BATCH_TYPE ? 'train loss' : 'train_inferred loss',
        scale: { type: loss.rows.length > 0 ? 'log' : 'linear' },
        axis: { format: '~g', tickCount: 3 },
      },
    },
  };
  return { vconcat: [accuracy, lossPanel], spacing: 6 };
}

/**
 * Vega-Lite spec of the grokking curve: a single run as one panel, several runs as a grid of
 * panels (three a row), all on the same symlog step axis `[0, largest step]`, logarithmic beyond
 * the first evaluation step and linear below it, so step 0 is shown as such (see `stepEncoding`). Accuracy types absent from a curve are simply not drawn.
 */
export function grokkingSpec(runs: readonly AnalyzedRun[], options: GrokkingOptions): TopLevelSpec {
  const extent = stepExtent(runs);
  const single = runs.length === 1;
  const width = single ? 560 : 340;
  const panels = runs.map((r) => runPanel(r, extent, options.threshold, width, single ? null : r.name));
  const subtitle = [
    `dashed: memorisation (train ≥${runs[0]?.metrics.memoriseThreshold}) and the first steps from which ID/OOD accuracy stays ≥${options.threshold}`,
    STEP_NOTE,
  ];
  const title = { text: single ? `Grokking curve: ${runs[0].name}` : 'Grokking curves', subtitle };
  const spec: VlObject = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    title,
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
  };
  if (single) Object.assign(spec, panels[0]);
  else Object.assign(spec, { concat: panels, columns: Math.min(3, runs.length), spacing: 24 });
  return spec as unknown as TopLevelSpec;
}

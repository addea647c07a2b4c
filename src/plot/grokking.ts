/**
 * The grokking curve of one run (or a grid of them, one panel per run), after Wang et al. 2024,
 * Fig. 1: accuracy of the training, ID-test and OOD-test inferred facts (and the atomic facts)
 * against the optimizer step on a symlog axis, with the progress measures in panels below (the
 * loss of each type and the weight norms, `./progress.ts`), and the memorisation and
 * generalisation steps (`../analysis/metrics.ts`) marked by dashed vertical rules.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalyzedRun } from '../analysis/tables.js';
import { ACCURACY_TYPES, GENERALISATION_TYPES, TRAIN_TYPE } from '../analysis/metrics.js';
import { curveColor, lossPanel, normPanel } from './progress.js';
import { CHART_CONFIG, legendAbove } from './render.js';
import type { RuleMark } from './rule-labels.js';
import { LABEL_FONT_SIZE, NEUTRAL_LABEL_COLOR, RULE_DASHES, placeRuleLabels } from './rule-labels.js';
import type { StepExtent, VlObject } from './style.js';
import { STEP_NOTE, TYPE_LABELS, stepEncoding } from './style.js';

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
 * Rows of the vertical rules: memorisation and ID/OOD generalisation at `threshold`, with their
 * labels placed so that none is drawn over another (`placeRuleLabels`) in a panel of `width` ×
 * `height` pixels on the step axis `extent`.
 */
function ruleRows(run: AnalyzedRun, threshold: number, extent: StepExtent, width: number, height: number): VlObject[] {
  const marks: RuleMark[] = [];
  const m = run.metrics;
  if (m.memorise) marks.push({ series: TYPE_LABELS[TRAIN_TYPE], step: m.memorise.step, what: 'memorised' });
  for (const { type, label } of GENERALISATION_TYPES) {
    const g = m.generalise.find((e) => e.type === type && e.threshold === threshold);
    if (g?.at) marks.push({ series: TYPE_LABELS[type], step: g.at.step, what: `${label} ≥${threshold}` });
  }
  return placeRuleLabels(marks, extent, width, height) as unknown as VlObject[];
}

/**
 * The text layer of the rule labels on one `side` of their rules (`neutral`: the merged labels, in
 * a neutral colour), written upwards from `labelY` of the panel height.
 */
function labelLayer(
  rows: VlObject[],
  side: 'left' | 'right',
  neutral: boolean,
  x: VlObject,
  color: VlObject,
  limit: number,
): VlObject {
  return {
    data: { values: rows.filter((r) => r.show && r.side === side && r.neutral === neutral) },
    mark: {
      type: 'text',
      angle: 270,
      align: 'left',
      baseline: side === 'left' ? 'bottom' : 'top',
      dy: side === 'left' ? -3 : 3,
      fontSize: LABEL_FONT_SIZE,
      limit,
      ...(neutral ? { color: NEUTRAL_LABEL_COLOR } : {}),
    },
    encoding: {
      x,
      y: { field: 'labelY', type: 'quantitative' },
      text: { field: 'label' },
      ...(neutral ? {} : { color }),
    },
  };
}

/**
 * One run's panels, stacked on one step axis: accuracy with the rules, the loss of each type, and
 * the weight norms when the curve has them (`./progress.ts`); `color` is the chart's `curveColor`.
 */
function runPanel(
  run: AnalyzedRun,
  extent: StepExtent,
  threshold: number,
  width: number,
  title: string | null,
  color: VlObject,
): VlObject {
  const x = stepEncoding(extent);
  const xHidden = stepEncoding(extent, false);
  const height = Math.round(width * 0.5);
  const rules = ruleRows(run, threshold, extent, width, height);
  const accuracy: VlObject = {
    width,
    height,
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
        mark: { type: 'rule', strokeWidth: 1.2 },
        encoding: {
          x: xHidden,
          color,
          // rules at one step interleave their dashes (`placeRuleLabels`)
          strokeDash: {
            field: 'dash',
            type: 'nominal',
            legend: null,
            scale: { domain: RULE_DASHES.map((d) => d.key), range: RULE_DASHES.map((d) => d.dash) },
          },
        },
      },
      ...(['left', 'right'] as const)
        .flatMap((side) =>
          [false, true].map((neutral) => labelLayer(rules, side, neutral, xHidden, color, Math.round(height * 0.94))),
        )
        .filter((l) => (l.data as { values: unknown[] }).values.length > 0),
    ],
  };
  if (title !== null) accuracy.title = { text: title, fontSize: 12 };
  const norms = normPanel(run, x, color, width);
  const loss = lossPanel(run, norms ? xHidden : x, color, width);
  return { vconcat: norms ? [accuracy, loss, norms] : [accuracy, loss], spacing: 6 };
}

/**
 * Vega-Lite spec of the grokking curve: a single run as one panel, several runs as a grid of
 * panels (three a row, the legend above them; the report may lay them out in fewer columns),
 * all on the same symlog step axis `[0, largest step]`, logarithmic beyond the first evaluation
 * step and linear below it, so step 0 is shown as such (see `stepEncoding`). The rules' labels
 * are placed by `placeRuleLabels`. Accuracy types absent from a curve are simply not drawn.
 */
export function grokkingSpec(runs: readonly AnalyzedRun[], options: GrokkingOptions): TopLevelSpec {
  const extent = stepExtent(runs);
  const single = runs.length === 1;
  const width = single ? 560 : 340;
  const color = curveColor(runs, single ? 0 : 6);
  const panels = runs.map((r) => runPanel(r, extent, options.threshold, width, single ? null : r.name, color));
  const subtitle = [
    `dashed: memorisation (train ≥${runs[0]?.metrics.memoriseThreshold}) and the first steps from which ID/OOD accuracy stays ≥${options.threshold}`,
    runs.some((r) => r.norms)
      ? 'below: loss of each type; L2 norm of the weights, all and per block (Omnigrok)'
      : 'below: loss of each type',
    STEP_NOTE,
  ];
  const title = { text: single ? `Grokking curve: ${runs[0].name}` : 'Grokking curves', subtitle };
  const spec: VlObject = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    // a grid's legend goes above it, so that it takes no column's width (`legendAbove`)
    config: single ? CHART_CONFIG : legendAbove(CHART_CONFIG),
    title,
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
  };
  if (single) Object.assign(spec, panels[0]);
  else Object.assign(spec, { concat: panels, columns: Math.min(3, runs.length), spacing: 24 });
  return spec as unknown as TopLevelSpec;
}

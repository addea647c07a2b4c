/**
 * The logit lens's heatmap (`probe` stage): layer × step, one panel per test type, each cell
 * coloured by how often the residual stream at the answer position, decoded through the final
 * norm and the unembedding, already gives the answer (`../analysis/probe.ts`). It answers "from
 * which layer, and from when, is the comparison answer readable", ID against OOD.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ProbeRow } from '../analysis/probe.js';
import { CHART_CONFIG } from './render.js';
import type { VlObject } from './style.js';
import { STEP_LABEL, TYPE_LABELS } from './style.js';

/** Most steps whose cells are labelled with their accuracy (beyond, cells too narrow: colour only). */
const LABELLED_STEPS = 16;

/** Panel title of a test type. */
function panelTitle(type: string): string {
  return TYPE_LABELS[type] ?? type;
}

/**
 * Vega-Lite spec of the heatmap: x the kept checkpoints' steps (one column each, in step order,
 * not to scale), y the layer (0 = the embedding, at the bottom), colour the lens's accuracy on
 * `[0, 1]` (viridis), the percentage written in each cell when there are at most 16 steps; panels
 * in order of the types' first appearance, three a row.
 */
export function probeSpec(rows: readonly ProbeRow[], title = 'Logit lens'): TopLevelSpec {
  const types = [...new Set(rows.map((r) => r.type))];
  const steps = new Set(rows.map((r) => r.step)).size;
  const labelled = steps <= LABELLED_STEPS;
  const values = rows.map((r) => ({
    ...r,
    panel: panelTitle(r.type),
    pct: Number.isFinite(r.accuracy) ? (100 * r.accuracy).toFixed(0) : '',
  }));
  const tooltip = [
    { field: 'type' },
    { field: 'step' },
    { field: 'layer' },
    { field: 'accuracy', format: '.3f' },
    { field: 'loss', format: '.3f', title: 'loss (nats)' },
    { field: 'rank', format: '.2f', title: 'mean target rank' },
    { field: 'n' },
  ];
  const cells: VlObject = {
    mark: { type: 'rect' },
    encoding: {
      color: {
        field: 'accuracy',
        type: 'quantitative',
        title: 'lens accuracy',
        scale: { domain: [0, 1], scheme: 'viridis' },
        legend: { format: '.0%' },
      },
      tooltip,
    },
  };
  const text: VlObject = {
    mark: { type: 'text', fontSize: 10 },
    encoding: {
      text: { field: 'pct' },
      // dark text on viridis' light (high) end, light text on its dark end
      color: { condition: { test: 'datum.accuracy >= 0.55', value: '#1a1a1a' }, value: '#f2f2f2' },
    },
  };
  const spec: VlObject = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CHART_CONFIG,
    title: {
      text: title,
      offset: 12,
      subtitle: [
        'accuracy of the residual stream at the answer position decoded through the final norm and the unembedding',
        'layer 0: the embedding; layer k: after block k (the top row is the model itself); steps: the kept checkpoints, not to scale',
      ],
    },
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: null, sort: types.map(panelTitle) },
    columns: Math.min(3, types.length),
    spacing: 16,
    spec: {
      width: { step: labelled ? 34 : 14 },
      height: { step: 24 },
      encoding: {
        x: {
          field: 'step',
          type: 'ordinal',
          sort: 'ascending',
          title: 'optimizer step',
          axis: { labelExpr: STEP_LABEL, labelAngle: labelled ? 0 : -90 },
        },
        y: { field: 'layer', type: 'ordinal', sort: 'descending', title: 'layer' },
      },
      layer: labelled ? [cells, text] : [cells],
    },
  };
  return spec as unknown as TopLevelSpec;
}

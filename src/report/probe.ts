/**
 * The report's logit-lens section: for each `probe` run of the pipeline that is in the store, its
 * heatmap (`../plot/probe.ts`, the same spec the stage renders to SVG/PNG, drawn interactively by
 * `vega-embed`) and its summary lines (`../analysis/probe.ts`). Runs not computed yet are named.
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { PlannedRun } from '../engine/explain/plan.js';
import { readTable } from '../table/parquet.js';
import { PROBE_FILE } from '../analysis/files.js';
import { probeRows, probeSummary } from '../analysis/probe.js';
import type { ProbeRow } from '../analysis/probe.js';
import { probeSpec } from '../plot/probe.js';
import { escapeHtml as h } from './escape.js';

/** A `probe` run of the pipeline: its rows when it is in the store, else none. */
export interface ReportProbe {
  /** Run id (`lens[seed=0]`). */
  readonly id: string;
  /** The rows of its `probe.parquet` (empty when not computed). */
  readonly rows: readonly ProbeRow[];
  /** Whether its artifact is in the store. */
  readonly stored: boolean;
}

/**
 * The `probe` runs among `planned`, in pipeline order, with their stored tables.
 * @throws Error when a stored `probe.parquet` cannot be read.
 */
export async function gatherProbes(planned: readonly PlannedRun[]): Promise<ReportProbe[]> {
  const out: ReportProbe[] = [];
  for (const p of planned) {
    if (p.run.stage.name !== 'probe') continue;
    const stored = p.status === 'cached' && p.dir !== undefined;
    const rows = stored ? probeRows(await readTable(join(p.dir as string, PROBE_FILE))) : [];
    out.push({ id: p.run.id, rows, stored });
  }
  return out;
}

/**
 * The section's HTML and its plots (`{id, title, spec}`, as the page's other plots), or an empty
 * string and no plots when the pipeline has no `probe` stage.
 */
export function probeSection(probes: readonly ReportProbe[]): {
  html: string;
  plots: { id: string; title: string; spec: TopLevelSpec }[];
} {
  if (probes.length === 0) return { html: '', plots: [] };
  const plots: { id: string; title: string; spec: TopLevelSpec }[] = [];
  const parts = probes.map((p, i) => {
    if (!p.stored) return `<h3>${h(p.id)}</h3><p class="note">Not computed yet.</p>`;
    const id = `probe${i + 1}`;
    plots.push({ id, title: p.id, spec: probeSpec(p.rows, `Logit lens: ${p.id}`) });
    const lines = probeSummary(p.rows)
      .map((l) => `<li>${h(l)}</li>`)
      .join('');
    return `<h3>${h(p.id)}</h3><ul class="trend">${lines}</ul><div class="plot" id="${id}" data-plot="${id}"></div>`;
  });
  const note =
    'The logit lens (nostalgebraist 2020): the residual stream at the answer position after the embedding (layer 0) ' +
    'and after each block, decoded through the final norm and the unembedding; the cell is how often that gives the ' +
    'answer, per kept checkpoint. Table: <code>probe.parquet</code>.';
  return {
    html: `<section id="probes"><h2>Logit lens</h2><p class="note">${note}</p>${parts.join('')}</section>`,
    plots,
  };
}

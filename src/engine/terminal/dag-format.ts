/**
 * The expanded stage-run graph as text for people and tools: Mermaid (`flowchart LR`, renders on
 * GitHub), Graphviz DOT, or an indented list. Every run appears once, so a stage shared by a whole
 * sweep is one node with an edge to each run that reads it. Edges point downstream (input -> run).
 */
import type { StageRun } from '../pipeline/expand.js';

/** Output formats of `formatDag`. */
export const DAG_FORMATS = ['mermaid', 'dot', 'text'] as const;

/** One of `DAG_FORMATS`. */
export type DagFormat = (typeof DAG_FORMATS)[number];

/**
 * Formats runs (in dependency order, as compiled) as a graph.
 * @returns the text, ending with a newline.
 */
export function formatDag(runs: readonly StageRun[], format: DagFormat): string {
  switch (format) {
    case 'mermaid':
      return mermaid(runs);
    case 'dot':
      return dot(runs);
    case 'text':
      return text(runs);
  }
}

function mermaid(runs: readonly StageRun[]): string {
  const ids = new Map(runs.map((r, i) => [r, `n${i}`]));
  const label = (s: string) => s.replaceAll('"', '#quot;');
  const lines = ['flowchart LR'];
  for (const r of runs) lines.push(`  ${ids.get(r)}["${label(r.id)}<br/><small>${label(r.stage.name)}</small>"]`);
  for (const r of runs) for (const i of r.inputs) lines.push(`  ${ids.get(i)} --> ${ids.get(r)}`);
  return `${lines.join('\n')}\n`;
}

function dot(runs: readonly StageRun[]): string {
  const esc = (s: string) => s.replaceAll('\\', '\\\\').replaceAll('"', '\\"');
  const q = (s: string) => `"${esc(s)}"`;
  const lines = ['digraph grokpipe {', '  rankdir=LR;', '  node [shape=box, fontname="Helvetica"];'];
  for (const r of runs) lines.push(`  ${q(r.id)} [label="${esc(r.id)}\\n(${esc(r.stage.name)})"];`);
  for (const r of runs) for (const i of r.inputs) lines.push(`  ${q(i.id)} -> ${q(r.id)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function text(runs: readonly StageRun[]): string {
  const readers = new Map<StageRun, number>();
  for (const r of runs) for (const i of r.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const lines = runs.map((r) => {
    const head = `${r.id} (${r.stage.name}${r.across ? ', across matrix' : ''})`;
    const shared = (readers.get(r) ?? 0) > 1 ? ` [read by ${readers.get(r)} runs]` : '';
    return r.inputs.length === 0 ? `${head}${shared}` : `${head}${shared} <- ${r.inputs.map((i) => i.id).join(', ')}`;
  });
  return `${lines.join('\n')}\n`;
}

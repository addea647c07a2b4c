/**
 * The pipeline's DAG as an inline SVG (no script, no network): one box per stage (id, stage type,
 * cached runs of all runs), arrows from each stage to the stages that need it, laid out left to
 * right by `@dagrejs/dagre`.
 */
import dagre from '@dagrejs/dagre';
import type { ReportStage } from './data.js';
import { escapeHtml } from './escape.js';

const CHAR_WIDTH = 7.2;
const NODE_HEIGHT = 58;
const PAD = 12;

/** Text lines of a stage's box. */
function lines(s: ReportStage): [string, string, string] {
  const runs = s.runs === 1 ? '1 run' : `${s.runs} runs`;
  return [s.id, `${s.uses}${s.across ? ' (across matrix)' : ''}`, `${s.cached}/${runs} cached`];
}

/** Fill and stroke of a box: all runs cached, some, or none. */
function colours(s: ReportStage): { fill: string; stroke: string } {
  if (s.cached === s.runs) return { fill: '#e8f5e9', stroke: '#2e7d32' };
  if (s.cached > 0) return { fill: '#fff8e1', stroke: '#f9a825' };
  return { fill: '#f5f5f5', stroke: '#9e9e9e' };
}

/** Path through an edge's points (a straight segment per pair). */
function edgePath(points: readonly { x: number; y: number }[]): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

/**
 * The DAG of `stages` as an `<svg>` element (its `width`/`height` the laid-out size), with a
 * `<title>` per box for screen readers and hover. Empty string when there are no stages.
 */
export function dagSvg(stages: readonly ReportStage[]): string {
  if (stages.length === 0) return '';
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 46, marginx: 4, marginy: 4 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of stages) {
    const width = Math.max(...lines(s).map((l) => l.length)) * CHAR_WIDTH + 2 * PAD;
    g.setNode(s.id, { width, height: NODE_HEIGHT });
  }
  for (const s of stages) for (const n of s.needs) g.setEdge(n, s.id);
  dagre.layout(g);
  const { width = 0, height = 0 } = g.graph();
  const parts: string[] = [];
  for (const e of g.edges()) {
    const points = g.edge(e).points ?? [];
    parts.push(
      `<path class="dag-edge" d="${edgePath(points)}" fill="none" stroke="#777" stroke-width="1.4" marker-end="url(#dag-arrow)"/>`,
    );
  }
  for (const s of stages) {
    const n = g.node(s.id);
    const x = (n.x ?? 0) - n.width / 2;
    const y = (n.y ?? 0) - n.height / 2;
    const { fill, stroke } = colours(s);
    const [id, uses, runs] = lines(s).map(escapeHtml);
    parts.push(
      `<g class="dag-node" data-stage="${id}" transform="translate(${x.toFixed(1)},${y.toFixed(1)})">` +
        `<title>${id}: ${uses}, ${runs}</title>` +
        `<rect width="${n.width.toFixed(1)}" height="${n.height}" rx="6" fill="${fill}" stroke="${stroke}" stroke-width="1.5"/>` +
        `<text x="${PAD}" y="19" font-weight="600">${id}</text>` +
        `<text x="${PAD}" y="35" fill="#555">${uses}</text>` +
        `<text x="${PAD}" y="50" fill="#555" font-size="11">${runs}</text>` +
        `</g>`,
    );
  }
  return (
    `<svg class="dag" role="img" aria-label="pipeline stages" xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${Math.ceil(height)}" ` +
    `viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" font-family="sans-serif" font-size="12">` +
    `<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
    `<path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>${parts.join('')}</svg>`
  );
}

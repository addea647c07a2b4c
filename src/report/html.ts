/**
 * The report page: one self-contained HTML file (CSS, data and the vega / vega-lite / vega-embed
 * scripts inline; a Content-Security-Policy that forbids any request) showing a pipeline's
 * description, its DAG, a table of its runs with knobs and grokking metrics, the mean and spread
 * over seeds, the interactive plots, and links to every artifact folder and file (relative to the
 * page, so they work from `file://`).
 */
import { dirname, join } from 'node:path';
import type { InlineScript } from './assets.js';
import { dagSvg } from './dag.js';
import type { ReportAnalysis, ReportArtifact, ReportData, ReportRun, Row } from './data.js';
import { escapeHtml as h, relativeHref, scriptJson, scriptSource } from './escape.js';
import type { ReportPlot } from './plots.js';
import { BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, studyTrends } from '../analysis/trend.js';
import { reportPlots } from './plots.js';
import { probeSection } from './probe.js';
import { CONTENT_SECURITY_POLICY, CSS, EMBED_SCRIPT } from './page-resources.js';
import { thresholdText } from '../analysis/tables.js';
import { isSeedKnob } from '../analysis/aggregate.js';

/** Options of `reportHtml`. */
export interface PageOptions {
  /** Where the page will be written (links are relative to its folder). */
  readonly outFile: string;
  /** The libraries to inline (`inlineScripts()`). */
  readonly scripts: readonly InlineScript[];
  /** grokpipe's version, shown in the footer. */
  readonly version: string;
  /** Time shown as the generation time. */
  readonly generatedAt: Date;
}

const int = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) && v !== -1 ? String(v) : '');
const fixed = (v: unknown, digits: number): string =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '';
const acc = (v: unknown): string => fixed(v, 3);
const ratio = (v: unknown): string =>
  typeof v === 'number' && Number.isFinite(v) ? `${v >= 10 ? v.toFixed(0) : v.toFixed(1)}×` : '';

/** A metric cell: the formatted value, or a dash titled `never` when missing. */
function cell(text: string, never = 'not reached'): string {
  return text === '' ? `<td class="never" title="${h(never)}">—</td>` : `<td class="num">${h(text)}</td>`;
}

/** A link to an artifact folder, or the run id greyed out when it is not in the store. */
function artifactLink(a: ReportArtifact, label: string, fromDir: string): string {
  if (!a.dir) return `<span title="${h(`${a.id}: not computed (${a.reason})`)}">${h(label)}</span>`;
  return `<a href="${h(relativeHref(fromDir, a.dir, true))}" title="${h(`${a.id}: ${a.dir}`)}">${h(label)}</a>`;
}

/** The columns of the runs table after the knobs: group heading, heading, and how to show a row. */
interface MetricColumn {
  group: string;
  head: string;
  title: string;
  show: (row: Row) => string;
  never?: string;
}

function metricColumns(thresholds: readonly number[], memorise: number): MetricColumn[] {
  const t0 = thresholdText(Math.min(...thresholds));
  const cols: MetricColumn[] = [
    {
      group: 'memorised',
      head: 'step',
      title: `first step with train_inferred accuracy ≥ ${memorise}`,
      show: (r) => int(r.memorise_step),
      never: 'never memorised',
    },
    {
      group: 'memorised',
      head: 'epoch',
      title: 'epoch of memorisation',
      show: (r) => fixed(r.memorise_epoch, 1),
      never: 'never memorised',
    },
  ];
  for (const [short, label] of [
    ['id', 'ID'],
    ['ood', 'OOD'],
  ] as const) {
    for (const t of thresholds) {
      const x = thresholdText(t);
      cols.push({
        group: `${label} generalised (step)`,
        head: `≥${x}`,
        title: `first step from which ${label} accuracy stays ≥ ${x}`,
        show: (r) => int(r[`${short}_step_${x}`]),
        never: 'not generalised',
      });
    }
  }
  for (const [short, label] of [
    ['id', 'ID'],
    ['ood', 'OOD'],
  ] as const) {
    cols.push({
      group: `÷ memorisation (≥${t0})`,
      head: label,
      title: `${label} generalisation step ÷ memorisation step`,
      show: (r) => ratio(r[`${short}_ratio_${t0}`]),
      never: 'undefined',
    });
  }
  for (const [type, label] of [
    ['train_inferred', 'train'],
    ['id_inferred', 'ID'],
    ['ood_inferred', 'OOD'],
    ['id_atomic', 'ID atomic'],
    ['ood_atomic', 'OOD atomic'],
  ] as const) {
    cols.push({
      group: 'final accuracy',
      head: label,
      title: `final ${type} accuracy`,
      show: (r) => acc(r[`final_${type}`]),
      never: 'not measured',
    });
  }
  cols.push({
    group: 'run length',
    head: 'last step',
    title: 'last evaluation step of the curve',
    show: (r) => int(r.last_step),
    never: 'no evaluation',
  });
  return cols;
}

/** A `<thead>` with a row of group headings (colspans) over the column headings. */
function groupedHead(lead: { head: string; title?: string }[], cols: readonly MetricColumn[], tail: string[]): string {
  const groups: { name: string; span: number }[] = [];
  for (const c of cols) {
    const last = groups[groups.length - 1];
    if (last && last.name === c.group) last.span++;
    else groups.push({ name: c.group, span: 1 });
  }
  const top = `<tr class="group"><th colspan="${lead.length}"></th>${groups.map((g) => `<th colspan="${g.span}">${h(g.name)}</th>`).join('')}${tail.map(() => '<th></th>').join('')}</tr>`;
  const heads = [
    ...lead.map((l) => `<th${l.title ? ` title="${h(l.title)}"` : ''}>${h(l.head)}</th>`),
    ...cols.map((c) => `<th title="${h(c.title)}">${h(c.head)}</th>`),
    ...tail.map((t) => `<th>${h(t)}</th>`),
  ];
  return `<thead>${top}<tr>${heads.join('')}</tr></thead>`;
}

function knobCell(run: ReportRun, knob: string): string {
  const v = run.matrix[knob];
  if (v === undefined) return '<td></td>';
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return typeof v === 'number' ? `<td class="num">${h(text)}</td>` : `<td>${h(text)}</td>`;
}

function runsTable(a: ReportAnalysis, fromDir: string): string {
  const cols = metricColumns(a.params.generalise_thresholds, a.params.memorise_threshold);
  const lead = [{ head: 'run' }, { head: 'status' }, ...a.knobs.map((k) => ({ head: k, title: 'matrix knob' }))];
  const body = a.runs.map((run) => {
    const status =
      run.status === 'analysed'
        ? '<span class="status analysed">analysed</span>'
        : `<span class="status not-computed" title="${h(`not in the store yet: ${run.pending.join(', ')}`)}">not computed</span>`;
    const metrics = run.metrics
      ? cols.map((c) => cell(c.show(run.metrics as Row), c.never)).join('')
      : `<td colspan="${cols.length}">waiting for ${h(run.pending.join(', ') || 'analyze')}</td>`;
    const links = run.artifacts.map((x) => artifactLink(x, x.id.replace(/\[.*\]$/, ''), fromDir)).join('');
    const cls = run.status === 'analysed' ? 'analysed' : 'not-computed';
    return `<tr class="${cls}" data-run="${h(run.name)}"><td>${h(run.name)}</td><td>${status}</td>${a.knobs.map((k) => knobCell(run, k)).join('')}${metrics}<td class="links">${links}</td></tr>`;
  });
  return `<div class="scroll"><table class="runs" data-analysis="${h(a.id)}">${groupedHead(lead, cols, ['artifacts'])}<tbody>${body.join('')}</tbody></table></div>`;
}

/** `mean ± std (reached/runs)` of one metric of one group of `sweep.parquet`. */
function spreadText(row: Row | undefined, format: (v: number) => string): { text: string; never: boolean } {
  if (!row) return { text: '', never: true };
  const n = row.runs as number;
  const reached = row.reached as number;
  if (reached === 0) return { text: `never (0/${n})`, never: true };
  const mean = format(row.mean as number);
  const std = Number.isFinite(row.std as number) ? ` ± ${format(row.std as number)}` : '';
  return { text: `${mean}${std}${reached < n ? ` (${reached}/${n})` : ''}`, never: false };
}

function sweepTableHtml(a: ReportAnalysis): string {
  if (a.sweep.length === 0) return '';
  const t0 = thresholdText(Math.min(...a.params.generalise_thresholds));
  const knobs = a.knobs.filter((k) => !isSeedKnob(k));
  const step = (v: number) => v.toFixed(0);
  const metrics: { column: string; head: string; format: (v: number) => string }[] = [
    { column: 'memorise_step', head: 'memorised (step)', format: step },
    { column: `id_step_${t0}`, head: `ID ≥${t0} (step)`, format: step },
    { column: `ood_step_${t0}`, head: `OOD ≥${t0} (step)`, format: step },
    { column: `id_ratio_${t0}`, head: 'ID ÷ memorisation', format: (v) => v.toFixed(1) },
    { column: `ood_ratio_${t0}`, head: 'OOD ÷ memorisation', format: (v) => v.toFixed(1) },
    { column: 'final_id_inferred', head: 'final ID acc.', format: (v) => v.toFixed(3) },
    { column: 'final_ood_inferred', head: 'final OOD acc.', format: (v) => v.toFixed(3) },
  ];
  // sweep.parquet is long: one row per group and metric; a group is its knob values.
  const knobColumn = (k: string) => (k in a.sweep[0] ? k : `matrix_${k}`);
  const groupKey = (r: Row) => JSON.stringify(knobs.map((k) => r[knobColumn(k)]));
  const groups = new Map<string, Map<string, Row>>();
  for (const r of a.sweep) {
    let g = groups.get(groupKey(r));
    if (!g) groups.set(groupKey(r), (g = new Map()));
    g.set(r.metric as string, r);
  }
  const head = `<thead><tr>${knobs.map((k) => `<th>${h(k)}</th>`).join('')}<th>runs</th>${metrics.map((m) => `<th>${h(m.head)}</th>`).join('')}</tr></thead>`;
  const body = [...groups.values()].map((g) => {
    const first = g.values().next().value as Row;
    const cells = metrics.map((m) => {
      const s = spreadText(g.get(m.column), m.format);
      return s.never ? `<td class="never">${h(s.text || '—')}</td>` : `<td class="num">${h(s.text)}</td>`;
    });
    return `<tr>${knobs.map((k) => `<td class="num">${h(String(first[knobColumn(k)]))}</td>`).join('')}<td class="num">${h(String(first.runs))}</td>${cells.join('')}</tr>`;
  });
  return (
    `<h3>Mean ± standard deviation over seeds</h3>` +
    `<p class="note">Over the runs that reached each metric; (k/n) when only k of the n runs did. All metrics: <code>sweep.parquet</code>.</p>` +
    `<div class="scroll"><table class="sweep">${head}<tbody>${body.join('')}</tbody></table></div>`
  );
}

/** The trend statements of a study (`../analysis/trend.ts`), with the method in a note; '' when none. */
function trendHtml(a: ReportAnalysis): string {
  const trends = studyTrends(a.analysed, a.params.generalise_thresholds);
  if (trends.length === 0) return '';
  const items = trends.map((t) => `<li>${h(t.statement)}</li>`).join('');
  const note =
    `Spearman's rank correlation of the knob with the step from which accuracy stays ≥ θ, over every run; ` +
    `a run that never got there ranks after all that did. Interval: percentile bootstrap over runs ` +
    `(${BOOTSTRAP_RESAMPLES} resamples, seed ${BOOTSTRAP_SEED}; Efron &amp; Tibshirani 1993). Table: <code>trend.parquet</code>.`;
  return `<h3>Trend</h3><ul class="trend">${items}</ul><p class="note">${note}</p>`;
}

function analysisSection(a: ReportAnalysis, plots: readonly ReportPlot[], fromDir: string, several: boolean): string {
  const analysed = a.runs.filter((r) => r.status === 'analysed').length;
  const where = a.artifact.dir ? ` (${artifactLink(a.artifact, 'artifact folder', fromDir)})` : '';
  const source =
    a.source === 'stored'
      ? `Metrics from <code>${h(a.id)}</code>${where}: ${analysed} of ${a.runs.length} runs.`
      : a.source === 'partial'
        ? `<code>${h(a.id)}</code> has not run yet: metrics computed for this report from the ${analysed} of ${a.runs.length} runs whose curves are in the store.`
        : a.source === 'all-runs'
          ? `Every training run of this pipeline in the store (${a.runs.length}), whatever <code>--set</code> produced it; the knobs that differ between them are the columns. Metrics computed for this report from the ${analysed} runs with a curve (as <code>grokpipe runs</code>).`
          : `No run has finished yet: nothing to analyse (${a.runs.length === 1 ? '1 run' : `${a.runs.length} runs`} planned).`;
  const defs =
    `Memorised: first evaluation with <code>train_inferred</code> accuracy ≥ ${a.params.memorise_threshold}. ` +
    `Generalised at θ: first evaluation from which ID (<code>id_inferred</code>) or OOD (<code>ood_inferred</code>) accuracy stays ≥ θ to the end of the run; — = never.`;
  const plotHtml = plots
    .map((p) => `<h3>${h(p.title)}</h3><div class="plot" id="${h(p.id)}" data-plot="${h(p.id)}"></div>`)
    .join('');
  return (
    `<section class="analysis" id="analysis-${h(a.id)}">` +
    `<h2>Runs${several ? `: ${h(a.id)}` : ''}</h2>` +
    `<p>${source}</p><p class="note">${defs}</p>` +
    runsTable(a, fromDir) +
    sweepTableHtml(a) +
    trendHtml(a) +
    (plots.length > 0
      ? `<h2>Plots${several ? `: ${h(a.id)}` : ''}</h2><p class="note">Hover a point for its values; the ⋯ menu saves a plot as SVG or PNG.</p>${plotHtml}`
      : '') +
    `</section>`
  );
}

function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

function artifactsSection(data: ReportData, fromDir: string): string {
  const rows = data.artifacts.map((a) => {
    const status = `<span class="status ${a.status}">${a.status === 'cached' ? 'in store' : 'not computed'}</span>`;
    const files = a.dir
      ? a.files
          .map(
            (f) =>
              `<a href="${h(relativeHref(fromDir, join(a.dir as string, f.name)))}">${h(f.name)}</a> <span class="note">${h(bytesText(f.bytes))}</span>`,
          )
          .join(' · ')
      : h(a.reason);
    const folder = a.dir
      ? artifactLink(a, a.key ? a.key.slice(0, 12) : 'folder', fromDir)
      : a.key
        ? h(a.key.slice(0, 12))
        : '';
    const secs = a.seconds !== undefined ? `${a.seconds.toFixed(a.seconds < 10 ? 2 : 0)} s` : '';
    return `<tr data-artifact="${h(a.id)}"><td>${h(a.id)}</td><td>${h(a.stage)}</td><td>${status}</td><td>${folder}</td><td class="num">${h(secs)}</td><td>${files}</td></tr>`;
  });
  return (
    `<section id="artifacts"><h2>Artifacts</h2>` +
    `<p class="note">Every stage run: its folder in the store <code>${h(data.store)}</code> (<code>&lt;stage&gt;/&lt;key&gt;/</code>, with its <code>manifest.json</code>) and its files; the links are relative to this page.</p>` +
    `<div class="scroll"><table class="artifacts"><thead><tr><th>stage run</th><th>type</th><th>status</th><th>folder</th><th>time</th><th>files</th></tr></thead><tbody>${rows.join('')}</tbody></table></div></section>`
  );
}

function dagSection(data: ReportData): string {
  const list = data.stages
    .map(
      (s) =>
        `<li><b>${h(s.id)}</b> (${h(s.uses)}${s.across ? ', across matrix' : ''})${s.needs.length > 0 ? ` ← ${h(s.needs.join(', '))}` : ''}: ${s.cached}/${s.runs} runs in the store</li>`,
    )
    .join('');
  return (
    `<section id="pipeline"><h2>Pipeline</h2><div class="dag-wrap">${dagSvg(data.stages)}</div>` +
    `<details><summary>as text</summary><ol class="stages">${list}</ol></details></section>`
  );
}

/**
 * The report page for `data` (see the module comment). Plots are drawn when the page loads; each
 * plot container gets `data-rendered="true"` (or `"error"`), and `<body>` `data-plots="done"`
 * when all are settled.
 */
export function reportHtml(data: ReportData, options: PageOptions): string {
  const fromDir = dirname(options.outFile);
  const several = data.analyses.length > 1;
  const plots: ReportPlot[] = [];
  const sections = data.analyses.map((a, i) => {
    const own = reportPlots(a, `plot${i + 1}`);
    plots.push(...own);
    return analysisSection(a, own, fromDir, several);
  });
  const lens = probeSection(data.probes ?? []);
  plots.push(...lens.plots);
  const total = data.artifacts.length;
  const cached = data.artifacts.filter((a) => a.status === 'cached').length;
  const nav = [
    '<a href="#pipeline">pipeline</a>',
    ...data.analyses.map((a) => `<a href="#analysis-${h(a.id)}">${several ? h(a.id) : 'runs &amp; plots'}</a>`),
    ...(lens.html ? ['<a href="#probes">logit lens</a>'] : []),
    '<a href="#artifacts">artifacts</a>',
  ].join('');
  const noAnalysis =
    data.analyses.length === 0
      ? '<p class="note">This pipeline has no <code>analyze</code> stage: no metrics or plots to show.</p>'
      : '';
  const scripts = options.scripts
    .map((s) => `<script data-lib="${h(s.name)}@${h(s.version)}">${scriptSource(s.code)}</script>`)
    .join('\n');
  const libs = options.scripts.map((s) => `${s.name} ${s.version}`).join(', ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="grokpipe ${h(options.version)}">
<title>${h(data.name)} · grokpipe report</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${h(data.name)}</h1>
${data.description ? `<p class="description">${h(data.description)}</p>` : ''}
<p class="meta">Pipeline <code>${h(data.file)}</code> · ${cached} of ${total} stage runs in the store · generated ${h(
    options.generatedAt
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC'),
  )}</p>
<nav>${nav}</nav>
</header>
<main>
${dagSection(data)}
${noAnalysis}${sections.join('\n')}
${lens.html}
${artifactsSection(data, fromDir)}
</main>
<footer>Made by grokpipe ${h(options.version)} with ${h(libs)}; everything is in this file, it needs no network.</footer>
<script type="application/json" id="grokpipe-plots">${scriptJson(plots)}</script>
${scripts}
<script>${EMBED_SCRIPT}</script>
</body>
</html>
`;
}

/**
 * The runs table as people and programs read it: a text table (cli-table3, borderless), CSV
 * (csv-stringify) or one JSON document. Every form has the knobs that differ between the rows as
 * columns; the text table shows the main grokking metrics at the lowest threshold, CSV and JSON
 * all of them (the columns of analyze's `metrics.parquet`).
 */
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import { createColors } from 'picocolors';
import { knobText } from './knobs.js';
import type { KnobValue } from './knobs.js';
import { columnValue } from './query.js';
import type { RunRow } from './query.js';

/** `{knobs, runs}`: the differing knobs, then per run its fields, tags, knobs (differing), all params and metrics. */
export function runsJson(rows: readonly RunRow[], knobs: readonly string[]): string {
  const runs = rows.map((row) => {
    const { run, metrics } = row;
    return {
      name: run.meta.name ?? null,
      tags: run.meta.tags,
      run: run.id,
      stage: run.stage,
      key: run.key,
      date: run.manifest.timings.finished,
      backend: columnValue(row, 'backend'),
      git: run.manifest.git ?? null,
      knobs: Object.fromEntries(knobs.map((k) => [k, run.knobs[k] ?? null])),
      params: run.knobs,
      metrics: metrics.values,
      metrics_from: metrics.source ? `${metrics.source.stage}/${metrics.source.key}` : null,
      thresholds: metrics.thresholds,
    };
  });
  return `${JSON.stringify({ knobs, runs })}\n`;
}

/** The metric columns of every row (the first row's order, then any other). */
function metricColumns(rows: readonly RunRow[]): string[] {
  const out = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.metrics.values)) out.add(k);
  return [...out];
}

/** CSV with a header: run fields, tags (space-separated), differing knobs, every metric. */
export function runsCsv(rows: readonly RunRow[], knobs: readonly string[]): string {
  const fields = ['name', 'run', 'stage', 'key', 'date', 'backend', 'commit', 'dirty'];
  const metrics = metricColumns(rows);
  const header = [...fields, 'tags', ...knobs, ...metrics];
  const cell = (v: KnobValue | undefined) => (v === undefined || v === null ? '' : v);
  const body = rows.map((r) => [
    ...fields.map((f) => cell(columnValue(r, f))),
    r.run.meta.tags.join(' '),
    ...knobs.map((k) => cell(r.run.knobs[k])),
    ...metrics.map((m) => cell(r.metrics.values[m])),
  ]);
  return stringify([header, ...body], { cast: { boolean: (b) => String(b) } });
}

/** No borders: columns two spaces apart, as `grokpipe ls`. */
const BORDERLESS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '  ',
};

/** A metric cell: `never` for a threshold not reached, blank without a curve, accuracies to 3 places. */
function metricText(row: RunRow, column: string): string {
  if (row.metrics.source === null) return '';
  const v = row.metrics.values[column];
  if (v === null || v === undefined) return 'never';
  return column.startsWith('final_') ? v.toFixed(3) : String(v);
}

/**
 * The text table: key (12 digits), name, run id, the differing knobs, memorised and ID/OOD
 * generalised steps at the lowest threshold, final ID and OOD accuracy, backend, finish time
 * (UTC), commit (`-dirty` when the work tree differed), tags.
 */
export function formatRuns(rows: readonly RunRow[], knobs: readonly string[], options: { color: boolean }): string {
  if (rows.length === 0) return 'no runs\n';
  const pc = createColors(options.color);
  const t = Math.min(...rows[0].metrics.thresholds.generalise_thresholds);
  const metrics = ['memorise_step', `id_step_${t}`, `ood_step_${t}`, 'final_id_inferred', 'final_ood_inferred'];
  const head = ['key', 'name', 'run', ...knobs, ...metrics, 'backend', 'finished (UTC)', 'commit', 'tags'];
  const numeric = new Set([
    ...knobs.filter((k) => rows.every((r) => typeof (r.run.knobs[k] ?? 0) === 'number')),
    ...metrics,
  ]);
  const table = new Table({
    head: head.map((h) => pc.bold(h)),
    chars: BORDERLESS,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
    colAligns: head.map((h) => (numeric.has(h) ? 'right' : 'left')),
  });
  for (const r of rows) {
    const git = r.run.manifest.git;
    table.push([
      r.run.key.slice(0, 12),
      r.run.meta.name ?? '',
      r.run.id,
      ...knobs.map((k) => knobText(r.run.knobs[k])),
      ...metrics.map((m) => metricText(r, m)),
      knobText(columnValue(r, 'backend')),
      r.run.manifest.timings.finished.slice(0, 16).replace('T', ' '),
      git ? `${git.commit.slice(0, 8)}${git.dirty ? '-dirty' : ''}` : '',
      r.run.meta.tags.join(' '),
    ]);
  }
  const lines = table
    .toString()
    .split('\n')
    .map((l) => l.trimEnd());
  return `${lines.join('\n')}\n${rows.length} run${rows.length === 1 ? '' : 's'}\n`;
}

/**
 * The run summary: what the CLI prints after `run` and `status`: the JSON result, the table of
 * runs, and for each leaf run its artifact folder and the `summary` lines its stage recorded.
 */
import { relative } from 'node:path';
import { createColors } from 'picocolors';
import type { StageRun } from '../pipeline/expand.js';
import type { Manifest } from '../cache/manifest.js';

/** One run in the CLI's output. */
export interface ResultRow {
  /** Run id (`model[entities=400,seed=1]`). */
  readonly id: string;
  /** Stage type. */
  readonly stage: string;
  /** Stage key, null while unknown. */
  readonly key: string | null;
  readonly status: 'cached' | 'ran' | 'failed' | 'skipped' | 'planned';
  /** Wall time in this invocation (seconds), null when nothing was done. */
  readonly seconds: number | null;
  /** Why it ran / would run / failed / was skipped; empty when cached. */
  readonly reason: string;
  /** Members of the group job it ran in (itself included); absent when it ran alone. */
  readonly group?: number;
}

/**
 * The `--json` document: `{"runs":[{id, stage, key, status, seconds, reason}]}` (one line); a run
 * that ran in a group job also has `group` (its member count).
 */
export function jsonResult(rows: readonly ResultRow[], errors?: readonly string[]): string {
  const runs = rows.map((r) => ({
    id: r.id,
    stage: r.stage,
    key: r.key,
    status: r.status,
    seconds: r.seconds === null ? null : Math.round(r.seconds * 1000) / 1000,
    reason: r.reason,
    ...(r.group ? { group: r.group } : {}),
  }));
  return `${JSON.stringify(errors ? { runs, errors } : { runs })}\n`;
}

/**
 * A table of runs: id, status, seconds (when `withSeconds`), key (short, when `withKeys`), reason
 * (followed by `(group of N)` for a run that ran in a group job).
 */
export function formatTable(
  rows: readonly ResultRow[],
  options: { color: boolean; withSeconds: boolean; withKeys?: boolean },
): string {
  const pc = createColors(options.color);
  const paint: Record<ResultRow['status'], (s: string) => string> = {
    cached: pc.dim,
    ran: pc.green,
    failed: pc.red,
    skipped: pc.yellow,
    planned: pc.cyan,
  };
  const header = [
    'run',
    'status',
    ...(options.withSeconds ? ['seconds'] : []),
    ...(options.withKeys ? ['key'] : []),
    'reason',
  ];
  const cells = rows.map((r) => [
    r.id,
    r.status,
    ...(options.withSeconds ? [r.seconds === null ? '-' : r.seconds.toFixed(2)] : []),
    ...(options.withKeys ? [r.key === null ? '?' : r.key.slice(0, 12)] : []),
    r.group ? `${r.reason} (group of ${r.group})` : r.reason,
  ]);
  const widths = header.map((h, i) => cells.reduce((w, c) => Math.max(w, c[i].length), h.length));
  const line = (c: string[], isHeader: boolean, status?: ResultRow['status']) =>
    c
      .map((text, i) => {
        const padded =
          i === c.length - 1
            ? text
            : i === 2 && options.withSeconds
              ? text.padStart(widths[i])
              : text.padEnd(widths[i]);
        if (isHeader) return pc.bold(padded);
        return i === 1 && status ? paint[status](padded) : padded;
      })
      .join('  ')
      .trimEnd();
  return [line(header, true), ...cells.map((c, k) => line(c, false, rows[k].status))].join('\n') + '\n';
}

/**
 * `warning: <id>: <text>` for each `warnings` entry the stages of `runs` recorded (see
 * `StageContext.record`); empty when there is none.
 */
export function formatWarnings(runs: readonly { id: string; manifest?: Manifest }[]): string {
  const lines: string[] = [];
  for (const r of runs) {
    const w = r.manifest?.info.warnings;
    if (Array.isArray(w))
      for (const text of w) lines.push(`warning: ${r.id}: ${typeof text === 'string' ? text : JSON.stringify(text)}`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** The runs no other run reads (the ends of the pipeline). */
export function leafRuns(runs: readonly StageRun[]): StageRun[] {
  const used = new Set<StageRun>();
  for (const r of runs) for (const i of r.inputs) used.add(i);
  return runs.filter((r) => !used.has(r));
}

/**
 * For each leaf run with an artifact: `<id>: <folder>/` (relative to `cwd` when inside it), the
 * names of its output files, then its recorded `summary` (a string or list of strings) verbatim.
 */
export function formatLeaves(
  leaves: readonly { id: string; dir?: string; manifest?: Manifest }[],
  cwd: string,
): string {
  const out: string[] = [];
  for (const leaf of leaves) {
    if (!leaf.dir) continue;
    const rel = relative(cwd, leaf.dir);
    out.push(`${leaf.id}: ${rel.startsWith('..') || rel === '' ? leaf.dir : rel}/`);
    const files = leaf.manifest?.outputs.map((o) => o.name) ?? [];
    if (files.length > 0) out.push(`  ${files.join('  ')}`);
    const summary = leaf.manifest?.info.summary;
    if (typeof summary === 'string') out.push(summary);
    else if (Array.isArray(summary)) out.push(...summary.map((s) => (typeof s === 'string' ? s : JSON.stringify(s))));
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

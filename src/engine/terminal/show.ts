/**
 * One store entry for people (`grokpipe show`): its manifest, then the first rows of each table.
 * An entry is named by its key, a unique key prefix (at least 4 hex digits), or a stage-run id of
 * a pipeline (`model[seed=1]`), resolved by planning that pipeline against the store.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import prettyBytes from 'pretty-bytes';
import { createColors } from 'picocolors';
import { readTable } from '../../table/parquet.js';
import type { Table } from '../../table/table.js';
import { numRows, toRows } from '../../table/table.js';
import { InputError } from '../errors.js';
import { MANIFEST_FILE, parseManifest } from '../cache/manifest.js';
import type { Manifest } from '../cache/manifest.js';
import type { PlannedRun } from '../explain/plan.js';
import type { Store } from '../cache/store.js';
import { formatList } from '../explain/why.js';

/** A resolved entry. */
export interface ShownEntry {
  readonly stage: string;
  readonly key: string;
  readonly dir: string;
  readonly manifest: Manifest;
}

/** The head of one table output. */
export interface TableHead {
  readonly name: string;
  /** Total rows in the table. */
  readonly rows: number;
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  /** The first rows, as objects. */
  readonly head: readonly Record<string, string | number | boolean | null>[];
  /** Why the table could not be read, if it could not. */
  readonly error?: string;
}

const HEX_PREFIX = /^[0-9a-f]{4,64}$/;

/**
 * Finds the entry `target` names: a run id of `plan` when given (exact, or a stage id with one
 * run), else a key or unique key prefix.
 * @throws InputError (exit 2) when nothing or several entries match, or the run is not cached.
 */
export async function resolveEntry(store: Store, target: string, plan?: readonly PlannedRun[]): Promise<ShownEntry> {
  const fail = (message: string): never => {
    throw new InputError([{ where: target, path: '', message }]);
  };
  if (plan) {
    let matches = plan.filter((p) => p.run.id === target);
    if (matches.length === 0) matches = plan.filter((p) => p.run.stageId === target);
    if (matches.length > 1)
      fail(
        `names ${matches.length} runs: ${formatList(
          matches.map((p) => p.run.id),
          5,
        )}; give one`,
      );
    if (matches.length === 1) {
      const p = matches[0];
      if (p.status !== 'cached' || !p.manifest || !p.dir || !p.key)
        return fail(`${p.run.id} is not in the store (${p.reason})`);
      return { stage: p.run.stage.name, key: p.key, dir: p.dir, manifest: p.manifest };
    }
    if (!HEX_PREFIX.test(target))
      fail(
        `no stage run "${target}" in the pipeline (runs: ${formatList(
          plan.map((p) => p.run.id),
          5,
        )})`,
      );
  }
  if (!HEX_PREFIX.test(target)) {
    fail(
      'not a key or key prefix (4 to 64 hex digits); to show a stage run, give its pipeline with --file <pipeline.yaml>',
    );
  }
  const found = (await store.entries()).filter((e) => e.key.startsWith(target));
  if (found.length === 0) fail(`no entry in ${store.root} has a key starting with ${target}`);
  if (found.length > 1)
    fail(
      `${found.length} entries match: ${formatList(
        found.map((e) => `${e.stage}/${e.key.slice(0, 12)}`),
        5,
      )}; give more digits`,
    );
  const e = found[0];
  let manifest: Manifest;
  try {
    manifest = parseManifest(await readFile(join(e.dir, MANIFEST_FILE), 'utf8'));
  } catch (err) {
    return fail(`${e.stage}/${e.key} is damaged: ${MANIFEST_FILE} unreadable (${(err as Error).message})`);
  }
  return { ...e, manifest };
}

/** Reads the first `rows` rows of every table output of an entry (errors are reported, not thrown). */
export async function tableHeads(entry: ShownEntry, rows: number): Promise<TableHead[]> {
  const out: TableHead[] = [];
  for (const o of entry.manifest.outputs) {
    if (o.kind !== 'table') continue;
    try {
      const t: Table = await readTable(join(entry.dir, o.name));
      out.push({
        name: o.name,
        rows: numRows(t),
        columns: t.columns.map((c) => ({ name: c.name, type: c.type })),
        head: toRows(t, rows),
      });
    } catch (err) {
      out.push({ name: o.name, rows: 0, columns: [], head: [], error: (err as Error).message });
    }
  }
  return out;
}

/** The manifest and table heads as text. */
export function formatShow(entry: ShownEntry, heads: readonly TableHead[], options: { color: boolean }): string {
  const pc = createColors(options.color);
  const m = entry.manifest;
  const lines: string[] = [];
  const field = (name: string, value: string) => lines.push(`${pc.dim(name.padEnd(12))} ${value}`);
  lines.push(pc.bold(`${m.stage} ${m.key}`));
  field('folder', entry.dir);
  field('content', m.content_hash);
  field('version', m.components.version);
  field('params', JSON.stringify(m.params));
  for (const i of m.inputs) field('input', `${i.id} (${i.stage} ${i.key.slice(0, 12)})`);
  field(
    'computed',
    `${m.timings.finished} in ${m.timings.seconds.toFixed(2)} s on ${m.host}, by ${m.pipeline.file} (${m.pipeline.id})`,
  );
  if (m.environment) {
    const env = Object.entries(m.environment.env).map(([k, v]) => `${k}=${v}`);
    field(
      'environment',
      [
        `backend ${m.environment.backend}`,
        `threads ${m.environment.threads ?? '-'}`,
        m.environment.platform,
        ...env,
      ].join(', '),
    );
  }
  field(
    'versions',
    Object.entries(m.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  );
  for (const [k, v] of Object.entries(m.info)) {
    if (k === 'versions') continue;
    const text = JSON.stringify(v);
    field(`info.${k}`, text.length > 100 ? `${text.slice(0, 97)}...` : text);
  }
  lines.push(pc.dim('outputs'));
  const nameWidth = Math.max(...m.outputs.map((o) => o.name.length), 4);
  for (const o of m.outputs)
    lines.push(
      `  ${o.name.padEnd(nameWidth)}  ${o.kind.padEnd(5)}  ${prettyBytes(o.bytes).padStart(9)}  ${o.content_hash.slice(0, 12)}`,
    );
  for (const h of heads) {
    lines.push('');
    if (h.error) {
      lines.push(pc.red(`${h.name}: unreadable (${h.error})`));
      continue;
    }
    lines.push(
      pc.bold(`${h.name}`) + pc.dim(` (${h.rows} rows; ${h.columns.map((c) => `${c.name} ${c.type}`).join(', ')})`),
    );
    lines.push(...grid(h));
  }
  return `${lines.join('\n')}\n`;
}

function grid(h: TableHead): string[] {
  const cell = (v: string | number | boolean | null): string => {
    const s =
      v === null
        ? 'NULL'
        : typeof v === 'number' && !Number.isInteger(v)
          ? String(Number(v.toPrecision(6)))
          : String(v);
    return s.length > 30 ? `${s.slice(0, 27)}...` : s;
  };
  const names = h.columns.map((c) => c.name);
  const cells = h.head.map((r) => names.map((n) => cell(r[n])));
  const numeric = h.columns.map((c) => c.type !== 'STRING' && c.type !== 'BOOLEAN');
  const widths = names.map((n, i) => Math.max(n.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    `  ${c
      .map((s, i) => (numeric[i] ? s.padStart(widths[i]) : s.padEnd(widths[i])))
      .join('  ')
      .trimEnd()}`;
  const out = [line(names), ...cells.map(line)];
  if (h.rows > h.head.length) out.push(`  ... ${h.rows - h.head.length} more rows`);
  return out;
}

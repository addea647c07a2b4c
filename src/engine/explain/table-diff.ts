/**
 * Column-by-column comparison of two tables, to say *where* a recomputed table differs from the
 * stored one: which columns are missing, added, retyped or hold other values, and the first row
 * that differs. Numbers are compared with `Object.is`, close to how the logical hash sees them
 * (`NaN` equals `NaN`, `0` differs from `-0`).
 */
import type { Column, Table } from '../../table/table.js';
import { numRows } from '../../table/table.js';

/** How one column differs. */
export interface ColumnDiff {
  /** Column name. */
  readonly column: string;
  /** `missing` (only in the stored table), `added` (only in the new one), `type`, or `values`. */
  readonly kind: 'missing' | 'added' | 'type' | 'values';
  /** e.g. `3 of 5 rows differ, first at row 0: 1 -> 2`, `INT32 -> DOUBLE`. */
  readonly message: string;
}

/** How two tables differ; `columns` is empty and `rows` undefined when they are equal. */
export interface TableDiff {
  /** `5 -> 6 rows` when the row counts differ. */
  readonly rows?: string;
  /** Columns that differ, in the stored table's order, then added ones. */
  readonly columns: readonly ColumnDiff[];
  /** True when the column order differs (the same columns otherwise). */
  readonly reordered: boolean;
}

/** Compares `before` (stored) with `after` (recomputed). */
export function diffTables(before: Table, after: Table): TableDiff {
  const n0 = numRows(before);
  const n1 = numRows(after);
  const byName = new Map(after.columns.map((c) => [c.name, c]));
  const columns: ColumnDiff[] = [];
  for (const a of before.columns) {
    const b = byName.get(a.name);
    if (!b) {
      columns.push({ column: a.name, kind: 'missing', message: 'missing in the recomputed table' });
      continue;
    }
    if (a.type !== b.type) {
      columns.push({ column: a.name, kind: 'type', message: `${a.type} -> ${b.type}` });
      continue;
    }
    const d = diffValues(a, b);
    if (d) columns.push({ column: a.name, kind: 'values', message: d });
  }
  const known = new Set(before.columns.map((c) => c.name));
  for (const b of after.columns)
    if (!known.has(b.name)) columns.push({ column: b.name, kind: 'added', message: 'only in the recomputed table' });
  const sameSet = before.columns.length === after.columns.length && before.columns.every((c) => byName.has(c.name));
  const reordered = sameSet && before.columns.some((c, i) => after.columns[i].name !== c.name);
  return { ...(n0 !== n1 ? { rows: `${n0} -> ${n1} rows` } : {}), columns, reordered };
}

/** True when the diff found nothing. */
export function tablesEqual(d: TableDiff): boolean {
  return d.rows === undefined && d.columns.length === 0 && !d.reordered;
}

/** One line for people: `rows 5 -> 6; column v: 3 of 5 rows differ, first at row 0: 1 -> 2`. */
export function formatTableDiff(d: TableDiff): string {
  const parts: string[] = [];
  if (d.rows) parts.push(`rows ${d.rows.replace(/ rows$/, '')}`);
  for (const c of d.columns) parts.push(`column ${c.column}: ${c.message}`);
  if (d.reordered) parts.push('column order differs');
  return parts.join('; ');
}

function diffValues(a: Column, b: Column): string | undefined {
  const n = Math.min(a.data.length, b.data.length);
  let count = 0;
  let first = -1;
  const same = valueEquality(a);
  for (let i = 0; i < n; i++) {
    if (!same(a.data[i], b.data[i])) {
      count++;
      if (first < 0) first = i;
    }
  }
  if (count === 0) return undefined;
  return `${count} of ${n} rows differ, first at row ${first}: ${show(a.data[first])} -> ${show(b.data[first])}`;
}

function valueEquality(c: Column): (x: unknown, y: unknown) => boolean {
  if (c.type === 'DOUBLE' || c.type === 'FLOAT') return (x, y) => Object.is(x, y);
  return (x, y) => x === y;
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

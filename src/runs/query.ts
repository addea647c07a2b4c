/**
 * The columns of the runs table and the queries on them: `--where <column><op><value>` (ops `=`,
 * `!=`, `<`, `<=`, `>`, `>=`; `tag=<tag>` for a tag) and `--sort <column>` (`-<column>` for
 * descending). A column is a field of the run (`name`, `run`, `stage`, `key`, `date`, `backend`,
 * `commit`, `dirty`), a knob (`max_steps`, `optimizer.lr`, `generate.entities`; the last part of
 * its path is enough when only one knob ends with it) or a metric (`ood_step_0.9`).
 */
import { InputError } from '../engine/errors.js';
import { parse } from 'yaml';
import type { StoredRun } from './collect.js';
import { knobText, resolveColumn } from './knobs.js';
import type { KnobValue } from './knobs.js';
import type { RunMetricsRow } from './metrics.js';

/** A row of the runs table: a stored run and its metrics. */
export interface RunRow {
  readonly run: StoredRun;
  readonly metrics: RunMetricsRow;
}

/** The fields of a run that are columns, besides its knobs and metrics. */
export const RUN_FIELDS = ['name', 'run', 'stage', 'key', 'date', 'backend', 'commit', 'dirty'] as const;

/** The value of a run field (see `RUN_FIELDS`). */
function fieldValue(row: RunRow, field: (typeof RUN_FIELDS)[number]): KnobValue {
  const m = row.run.manifest;
  switch (field) {
    case 'name':
      return row.run.meta.name ?? null;
    case 'run':
      return row.run.id;
    case 'stage':
      return row.run.stage;
    case 'key':
      return row.run.key;
    case 'date':
      return m.timings.finished;
    case 'backend':
      return typeof m.info.backend === 'string' ? m.info.backend : null;
    case 'commit':
      return m.git?.commit ?? null;
    case 'dirty':
      return m.git ? m.git.dirty : null;
  }
}

/** The value of `column` in `row` (undefined when the row has no such knob or metric). */
export function columnValue(row: RunRow, column: string): KnobValue | undefined {
  if ((RUN_FIELDS as readonly string[]).includes(column)) return fieldValue(row, column as (typeof RUN_FIELDS)[number]);
  if (column in row.run.knobs) return row.run.knobs[column];
  if (column in row.metrics.values) return row.metrics.values[column];
  return undefined;
}

/** Every column of `rows`: the run fields, `tag`, every knob, every metric. */
export function allColumns(rows: readonly RunRow[]): string[] {
  const out = new Set<string>([...RUN_FIELDS, 'tag']);
  for (const r of rows) for (const k of Object.keys(r.run.knobs)) out.add(k);
  for (const r of rows) for (const k of Object.keys(r.metrics.values)) out.add(k);
  return [...out];
}

/** A comparison of `--where`. */
type Operator = '!=' | '<=' | '>=' | '=' | '<' | '>';

/** One `--where` condition. */
interface Condition {
  readonly column: string;
  readonly op: Operator;
  readonly value: KnobValue;
}

/** `a` compared with `b`: numbers as numbers, anything else as text; null/undefined never match an order. */
function compare(a: KnobValue | undefined, b: KnobValue, op: Operator): boolean {
  if (op === '=' || op === '!=') {
    const same = typeof a === 'number' && typeof b === 'number' ? a === b : knobText(a) === knobText(b);
    return op === '=' ? same : !same;
  }
  if (a === undefined || a === null || b === null) return false;
  const d = typeof a === 'number' && typeof b === 'number' ? a - b : knobText(a).localeCompare(knobText(b));
  return op === '<' ? d < 0 : op === '<=' ? d <= 0 : op === '>' ? d > 0 : d >= 0;
}

/**
 * Parses `--where` expressions against the columns of `rows`.
 * @throws InputError (exit 2) naming the expression for a malformed one or an unknown column.
 */
function parseConditions(expressions: readonly string[], rows: readonly RunRow[]): Condition[] {
  const columns = allColumns(rows);
  const issues: { where: string; path: string; message: string }[] = [];
  const out: Condition[] = [];
  for (const expr of expressions) {
    const m = /^([^=!<>]+?)\s*(!=|<=|>=|=|<|>)\s*(.*)$/.exec(expr);
    if (!m) {
      issues.push({
        where: `--where ${expr}`,
        path: '',
        message: 'expected <column><op><value>, op one of = != < <= > >=',
      });
      continue;
    }
    const [, name, op, text] = m;
    const resolved = name === 'tag' ? { column: 'tag' } : resolveColumn(name.trim(), columns);
    if ('problem' in resolved) {
      issues.push({ where: `--where ${expr}`, path: '', message: resolved.problem });
      continue;
    }
    const parsed = parse(text) as unknown;
    const value: KnobValue = ['string', 'number', 'boolean'].includes(typeof parsed) ? (parsed as KnobValue) : text;
    out.push({ column: resolved.column, op: op as Operator, value });
  }
  if (issues.length > 0) throw new InputError(issues);
  return out;
}

/**
 * The rows that meet every `--where` condition (`tag=<tag>`: has the tag; `tag!=<tag>`: has not).
 * @throws InputError as `parseConditions`.
 */
export function filterRows(rows: readonly RunRow[], expressions: readonly string[]): RunRow[] {
  const conditions = parseConditions(expressions, rows);
  return rows.filter((row) =>
    conditions.every((c) => {
      if (c.column === 'tag') {
        const has = row.run.meta.tags.includes(knobText(c.value));
        return c.op === '!=' ? !has : c.op === '=' ? has : false;
      }
      return compare(columnValue(row, c.column), c.value, c.op);
    }),
  );
}

/**
 * The rows sorted by `spec` (`<column>` ascending, `-<column>` descending; rows without a value
 * last), the order of equal rows kept.
 * @throws InputError for an unknown column.
 */
export function sortRows(rows: readonly RunRow[], spec: string): RunRow[] {
  const descending = spec.startsWith('-');
  const resolved = resolveColumn(descending ? spec.slice(1) : spec, allColumns(rows));
  if ('problem' in resolved) throw new InputError([{ where: `--sort ${spec}`, path: '', message: resolved.problem }]);
  const value = (r: RunRow) => columnValue(r, resolved.column);
  return [...rows].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const missing = (v: KnobValue | undefined) => v === undefined || v === null;
    if (missing(x) || missing(y)) return Number(missing(x)) - Number(missing(y));
    const d = typeof x === 'number' && typeof y === 'number' ? x - y : knobText(x).localeCompare(knobText(y));
    return descending ? -d : d;
  });
}

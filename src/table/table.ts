/**
 * In-memory columnar tables, the unit every stage reads and writes, and their logical content hash.
 *
 * A table is a list of equally long, typed columns. Its *logical* hash covers the schema (column
 * names and types, in order) and the values, never the bytes of a file: the same table written by
 * two versions of the Parquet writer has the same hash (docs/design.md §3, "Logical hashing").
 */
import { createHash } from 'node:crypto';

/** Column types grokpipe writes. They map one-to-one onto Parquet basic types. */
export type ColumnType = 'INT32' | 'DOUBLE' | 'FLOAT' | 'STRING' | 'BOOLEAN';

/** The JavaScript array that holds a column's values, by column type. */
export interface ColumnData {
  INT32: Int32Array;
  DOUBLE: Float64Array;
  FLOAT: Float32Array;
  STRING: string[];
  BOOLEAN: boolean[];
}

/**
 * One named, typed column. `data.length` is the table's row count. `nulls`, when given, marks the
 * rows whose value is NULL (Parquet: an OPTIONAL column); `data` holds a placeholder there
 * (0, NaN, '' or false), which neither the hash nor the file keeps.
 */
export type Column = {
  [T in ColumnType]: { name: string; type: T; data: ColumnData[T]; nulls?: readonly boolean[] };
}[ColumnType];

/** Whether a column has at least one NULL. */
export function hasNulls(c: Column): boolean {
  return c.nulls?.some(Boolean) ?? false;
}

/** A table: columns of equal length, in schema order. */
export interface Table {
  columns: Column[];
}

/** Thrown when a table is malformed (ragged columns, duplicate or unknown names, wrong types). */
export class TableError extends Error {
  override name = 'TableError';
}

/** Number of rows of `table` (0 for a table with no columns). */
export function numRows(table: Table): number {
  return table.columns.length === 0 ? 0 : table.columns[0].data.length;
}

/**
 * Checks that every column has the same length, a unique name and data of its declared type.
 * @throws TableError naming the offending column.
 */
export function validateTable(table: Table): void {
  const n = numRows(table);
  const seen = new Set<string>();
  for (const c of table.columns) {
    if (seen.has(c.name)) throw new TableError(`duplicate column "${c.name}"`);
    seen.add(c.name);
    if (c.data.length !== n) {
      throw new TableError(`column "${c.name}" has ${c.data.length} rows, expected ${n}`);
    }
    if (c.nulls && c.nulls.length !== n) {
      throw new TableError(`column "${c.name}" has ${c.nulls.length} null flags, expected ${n}`);
    }
    const ok =
      (c.type === 'INT32' && c.data instanceof Int32Array) ||
      (c.type === 'DOUBLE' && c.data instanceof Float64Array) ||
      (c.type === 'FLOAT' && c.data instanceof Float32Array) ||
      ((c.type === 'STRING' || c.type === 'BOOLEAN') && Array.isArray(c.data));
    if (!ok) throw new TableError(`column "${c.name}" of type ${c.type} holds ${c.data.constructor.name}`);
  }
}

/**
 * Returns the column called `name`, checked to be of type `type`.
 * @throws TableError when the column is missing or of another type.
 */
export function column<T extends ColumnType>(table: Table, name: string, type: T): ColumnData[T] {
  const c = table.columns.find((col) => col.name === name);
  if (!c) {
    const names = table.columns.map((col) => col.name).join(', ');
    throw new TableError(`no column "${name}" (columns: ${names})`);
  }
  if (c.type !== type) throw new TableError(`column "${name}" is ${c.type}, expected ${type}`);
  return c.data as ColumnData[T];
}

/** Converts a table to plain row objects (for small tables: reports, tests, `grokpipe show`). */
export function toRows(table: Table, limit = Infinity): Record<string, string | number | boolean | null>[] {
  const n = Math.min(numRows(table), limit);
  const rows: Record<string, string | number | boolean | null>[] = [];
  for (let i = 0; i < n; i++) {
    const row: Record<string, string | number | boolean | null> = {};
    for (const c of table.columns) row[c.name] = c.nulls?.[i] ? null : c.data[i];
    rows.push(row);
  }
  return rows;
}

const HASH_DOMAIN = 'grokpipe-table-v1';

/**
 * Logical content hash of a table: SHA-256 over its schema and values, hex encoded (64 chars).
 *
 * Encoding (stable across writer versions and platforms): the domain tag; then per column its name,
 * type and row count; then its values: INT32 as little-endian int32, DOUBLE as little-endian
 * float64, FLOAT as little-endian float32, BOOLEAN as one byte, STRING as a uint32 byte length and
 * UTF-8 bytes. Column order is part of the schema and of the hash. A column with at least one NULL
 * (`hasNulls`) adds `:nullable` to its header line and one byte per row (1 = NULL) before its
 * values, which hold 0 (or '' or false) at NULL rows; a column without NULLs hashes as before.
 */
export function tableHash(table: Table): string {
  validateTable(table);
  const h = createHash('sha256');
  h.update(`${HASH_DOMAIN}\n${table.columns.length}\n`);
  for (const raw of table.columns) {
    const nullable = hasNulls(raw);
    const c = nullable ? withPlaceholders(raw) : raw;
    h.update(`${JSON.stringify(c.name)}:${c.type}:${c.data.length}${nullable ? ':nullable' : ''}\n`);
    if (nullable) h.update(Uint8Array.from(raw.nulls ?? [], (x) => (x ? 1 : 0)));
    switch (c.type) {
      case 'INT32':
      case 'DOUBLE':
      case 'FLOAT': {
        const bytes = new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength);
        h.update(littleEndian(bytes, c.data.BYTES_PER_ELEMENT));
        break;
      }
      case 'BOOLEAN':
        h.update(Uint8Array.from(c.data, (b) => (b ? 1 : 0)));
        break;
      case 'STRING': {
        const len = Buffer.alloc(4);
        for (const s of c.data) {
          const b = Buffer.from(s, 'utf8');
          len.writeUInt32LE(b.length, 0);
          h.update(len);
          h.update(b);
        }
        break;
      }
    }
  }
  return h.digest('hex');
}

/** A copy of a column with the canonical placeholder (0, '' or false) at its NULL rows. */
export function withPlaceholders(c: Column): Column {
  const isNull = (i: number) => c.nulls?.[i] === true;
  switch (c.type) {
    case 'INT32':
      return { ...c, data: c.data.map((v, i) => (isNull(i) ? 0 : v)) };
    case 'DOUBLE':
      return { ...c, data: c.data.map((v, i) => (isNull(i) ? 0 : v)) };
    case 'FLOAT':
      return { ...c, data: c.data.map((v, i) => (isNull(i) ? 0 : v)) };
    case 'STRING':
      return { ...c, data: c.data.map((v, i) => (isNull(i) ? '' : v)) };
    case 'BOOLEAN':
      return { ...c, data: c.data.map((v, i) => (isNull(i) ? false : v)) };
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndian(bytes: Uint8Array, width: number): Uint8Array {
  if (LITTLE_ENDIAN) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  }
  return out;
}

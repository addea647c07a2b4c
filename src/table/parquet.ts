/**
 * Parquet storage of tables (`hyparquet-writer` to write, `hyparquet` to read).
 *
 * Every file grokpipe writes carries its table's logical content hash (see `tableHash`) in the
 * footer's key-value metadata under `grokpipe.content_hash`, so a file can be checked on its own,
 * and DuckDB, pandas or polars read it like any other Parquet file.
 */
import { readFileSync } from 'node:fs';
import { parquetMetadata, parquetScan } from 'hyparquet';
import type { FileMetaData } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { Column, ColumnType, Table } from './table.js';
import { TableError, hasNulls, numRows, tableHash, validateTable } from './table.js';

/** Footer metadata key holding the logical content hash. */
export const CONTENT_HASH_KEY = 'grokpipe.content_hash';

/** Result of encoding a table: the file's bytes and the table's logical content hash. */
export interface EncodedTable {
  bytes: Uint8Array;
  contentHash: string;
}

/** Thrown when a Parquet file cannot be read or does not match its recorded content hash. */
export class CorruptTableError extends Error {
  override name = 'CorruptTableError';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/**
 * Encodes `table` as Parquet (Snappy, one row group per 100,000 rows) with its content hash and
 * any extra `metadata` in the footer.
 * @throws TableError when the table is malformed.
 */
export function encodeTable(table: Table, metadata: Record<string, string> = {}): EncodedTable {
  validateTable(table);
  const contentHash = tableHash(table);
  const kvMetadata = [
    { key: CONTENT_HASH_KEY, value: contentHash },
    ...Object.entries(metadata).map(([key, value]) => ({ key, value })),
  ];
  const buffer = parquetWriteBuffer({
    columnData: table.columns.map((c) =>
      hasNulls(c)
        ? {
            name: c.name,
            data: Array.from(c.data as ArrayLike<unknown>, (v, i) => (c.nulls?.[i] ? null : v)),
            type: c.type,
            nullable: true,
          }
        : { name: c.name, data: c.data, type: c.type, nullable: false },
    ),
    kvMetadata,
    rowGroupSize: 100_000,
    createdBy: 'grokpipe',
  });
  return { bytes: new Uint8Array(buffer), contentHash };
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function columnType(metadata: FileMetaData, name: string, file: string): ColumnType {
  const el = metadata.schema.find((s) => s.name === name);
  if (!el) throw new CorruptTableError(file, `no column "${name}" in schema`);
  if (el.type === 'INT32') return 'INT32';
  if (el.type === 'DOUBLE') return 'DOUBLE';
  if (el.type === 'FLOAT') return 'FLOAT';
  if (el.type === 'BOOLEAN') return 'BOOLEAN';
  if (el.type === 'BYTE_ARRAY' && (el.converted_type === 'UTF8' || el.logical_type?.type === 'STRING')) {
    return 'STRING';
  }
  throw new CorruptTableError(file, `column "${name}" has unsupported type ${String(el.type)}`);
}

function toColumn(name: string, type: ColumnType, values: ArrayLike<unknown>): Column {
  switch (type) {
    case 'INT32':
      return { name, type, data: values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>) };
    case 'DOUBLE':
      return {
        name,
        type,
        data: values instanceof Float64Array ? values : Float64Array.from(values as ArrayLike<number>),
      };
    case 'FLOAT':
      return {
        name,
        type,
        data: values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>),
      };
    case 'BOOLEAN':
      return { name, type, data: Array.from(values as ArrayLike<boolean>) };
    case 'STRING':
      return { name, type, data: Array.from(values as ArrayLike<string>) };
  }
}

/** Replaces null values (an OPTIONAL column's NULLs) by the type's placeholder (see `Column`). */
function placeholders(type: ColumnType): (part: ArrayLike<unknown>) => ArrayLike<unknown> {
  const fill = type === 'STRING' ? '' : type === 'BOOLEAN' ? false : 0;
  return (part) =>
    Array.prototype.some.call(part, (v) => v === null || v === undefined)
      ? Array.from(part, (v) => (v === null || v === undefined ? fill : v))
      : part;
}

/** Adds the `nulls` flags to a column read from `parts` when some value was NULL. */
function withNulls(c: Column, parts: readonly ArrayLike<unknown>[]): Column {
  const nulls = parts.flatMap((p) => Array.from(p, (v) => v === null || v === undefined));
  return nulls.some(Boolean) ? { ...c, nulls } : c;
}

/** Options of `decodeTable` and `readTable`. */
export interface ReadOptions {
  /** Columns to read, in this order; all columns when omitted. */
  columns?: string[];
  /**
   * Recompute the logical hash and compare it with the footer's (default true when all columns
   * are read). A mismatch means the file is corrupt.
   */
  verify?: boolean;
}

/**
 * Decodes Parquet bytes into a table. `file` names the source in errors.
 * @throws CorruptTableError when the bytes are not a readable Parquet file, lack a column, or
 *   (with `verify`) do not match their recorded content hash.
 */
export async function decodeTable(bytes: Uint8Array, file: string, options: ReadOptions = {}): Promise<Table> {
  const buffer = toArrayBuffer(bytes);
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(buffer);
  } catch (err) {
    throw new CorruptTableError(file, `not a readable Parquet file (${(err as Error).message})`);
  }
  const all = metadata.schema.slice(1).map((s) => s.name);
  const names = options.columns ?? all;
  const rows = Number(metadata.num_rows);
  try {
    const scan = await parquetScan({ file: buffer, metadata });
    const columns: Column[] = [];
    for (const name of names) {
      const type = columnType(metadata, name, file);
      const parts: ArrayLike<unknown>[] = [];
      for (const range of scan.ranges) parts.push(await scan.readColumn({ column: name, ...range }));
      columns.push(withNulls(toColumn(name, type, concat(type, parts.map(placeholders(type)), rows)), parts));
    }
    const table: Table = { columns };
    const verify = options.verify ?? options.columns === undefined;
    if (verify) {
      const recorded = footerValue(metadata, CONTENT_HASH_KEY);
      if (recorded === undefined) throw new CorruptTableError(file, `no ${CONTENT_HASH_KEY} in footer`);
      const actual = tableHash(table);
      if (actual !== recorded) {
        throw new CorruptTableError(
          file,
          `content hash ${actual.slice(0, 12)} does not match recorded ${recorded.slice(0, 12)}`,
        );
      }
    }
    if (numRows(table) !== rows && columns.length > 0) {
      throw new CorruptTableError(file, `read ${numRows(table)} rows, footer says ${rows}`);
    }
    return table;
  } catch (err) {
    if (err instanceof CorruptTableError) throw err;
    if (err instanceof TableError) throw new CorruptTableError(file, err.message);
    throw new CorruptTableError(file, `cannot decode (${(err as Error).message})`);
  }
}

function concat(type: ColumnType, parts: ArrayLike<unknown>[], rows: number): ArrayLike<unknown> {
  if (parts.length === 1) return parts[0];
  if (type === 'STRING' || type === 'BOOLEAN') return parts.flatMap((p) => Array.from(p));
  const out =
    type === 'INT32' ? new Int32Array(rows) : type === 'FLOAT' ? new Float32Array(rows) : new Float64Array(rows);
  let offset = 0;
  for (const p of parts) {
    out.set(p as ArrayLike<number>, offset);
    offset += p.length;
  }
  return out;
}

function footerValue(metadata: FileMetaData, key: string): string | undefined {
  return metadata.key_value_metadata?.find((kv) => kv.key === key)?.value;
}

/**
 * Reads a Parquet file written by `encodeTable` (or any file of supported column types).
 * @throws CorruptTableError as `decodeTable`; the error names `path`.
 */
export async function readTable(path: string, options: ReadOptions = {}): Promise<Table> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new CorruptTableError(path, `cannot read (${(err as Error).message})`);
  }
  return decodeTable(bytes, path, options);
}

/**
 * The content hash recorded in a Parquet file's footer, without decoding any column.
 * @throws CorruptTableError when the file is unreadable or has no recorded hash.
 */
export function readContentHash(path: string): string {
  try {
    const value = footerValue(parquetMetadata(toArrayBuffer(readFileSync(path))), CONTENT_HASH_KEY);
    if (value === undefined) throw new Error(`no ${CONTENT_HASH_KEY} in footer`);
    return value;
  } catch (err) {
    throw new CorruptTableError(path, (err as Error).message);
  }
}

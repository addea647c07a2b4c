import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptTableError, encodeTable, readContentHash, readTable } from '../src/table/parquet.js';
import type { Table } from '../src/table/table.js';
import { tableHash } from '../src/table/table.js';

const sample = (): Table => ({
  columns: [
    { name: 'id', type: 'INT32', data: Int32Array.from({ length: 250_000 }, (_, i) => i) },
    { name: 'x', type: 'DOUBLE', data: Float64Array.from({ length: 250_000 }, (_, i) => i / 7) },
    { name: 'type', type: 'STRING', data: Array.from({ length: 250_000 }, (_, i) => (i % 3 ? 'atomic' : 'inferred')) },
    { name: 'ok', type: 'BOOLEAN', data: Array.from({ length: 250_000 }, (_, i) => i % 2 === 0) },
  ],
});

describe('parquet tables', () => {
  it('round-trips schema and values over several row groups, hash in the footer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-table-'));
    const file = join(dir, 't.parquet');
    const { bytes, contentHash } = encodeTable(sample());
    writeFileSync(file, bytes);
    expect(readContentHash(file)).toBe(contentHash);
    const back = await readTable(file);
    expect(tableHash(back)).toBe(contentHash);
    expect(back.columns.map((c) => c.type)).toEqual(['INT32', 'DOUBLE', 'STRING', 'BOOLEAN']);
    expect(back.columns[1].data[7]).toBe(1);
    const some = await readTable(file, { columns: ['type'] });
    expect(some.columns).toHaveLength(1);
  });

  it('hash depends on values, names and order of columns', () => {
    const a = sample();
    const h = tableHash(a);
    (a.columns[0].data as Int32Array)[5] = -1;
    expect(tableHash(a)).not.toBe(h);
    const b = sample();
    b.columns.reverse();
    expect(tableHash(b)).not.toBe(h);
  });

  it('detects a flipped byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-table-'));
    const file = join(dir, 't.parquet');
    const t: Table = {
      columns: [{ name: 'v', type: 'INT32', data: Int32Array.from({ length: 1000 }, (_, i) => i * 31) }],
    };
    writeFileSync(file, encodeTable(t, { note: 'x' }).bytes);
    const bytes = readFileSync(file);
    bytes[200] ^= 0xff;
    writeFileSync(file, bytes);
    await expect(readTable(file)).rejects.toBeInstanceOf(CorruptTableError);
  });
});

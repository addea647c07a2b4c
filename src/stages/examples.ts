/**
 * Reading tokenize's tables (docs/artifacts.md, "tokenize") into the flat arrays the trainer uses.
 * Shared by the `train` and `evaluate` stages; imports no TF.js.
 */
import type { InputArtifact } from '../engine/stage.js';
import type { Table } from '../table/table.js';
import { column, numRows } from '../table/table.js';
import type { Examples } from '../models/train/examples.js';

/** A tokenized table: its examples and each row's `type`. */
export interface TypedExamples extends Examples {
  /** `type` of each row. */
  types: string[];
}

/**
 * Converts a tokenize table (`type, t0 .. t{L-1}, length, target`) to examples; the answer
 * position of a row is `length - 1`.
 * @throws Error naming the table when a token column is missing or a length is out of range.
 */
export function tableToExamples(table: Table, name: string): TypedExamples {
  const tokenCols: Int32Array[] = [];
  while (table.columns.some((c) => c.name === `t${tokenCols.length}`))
    tokenCols.push(column(table, `t${tokenCols.length}`, 'INT32'));
  const seqLen = tokenCols.length;
  if (seqLen === 0) throw new Error(`${name}: no token columns t0, t1, ...`);
  const n = numRows(table);
  const length = column(table, 'length', 'INT32');
  const target = column(table, 'target', 'INT32');
  const types = column(table, 'type', 'STRING');
  const tokens = new Int32Array(n * seqLen);
  const positions = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < seqLen; j++) tokens[i * seqLen + j] = tokenCols[j][i];
    if (length[i] < 1 || length[i] > seqLen)
      throw new Error(`${name}: row ${i} has length ${length[i]}, outside [1, ${seqLen}]`);
    positions[i] = length[i] - 1;
  }
  return { tokens, positions, targets: Int32Array.from(target), n, seqLen, types: [...types] };
}

/** Reads `file` of a tokenize artifact as examples. */
export async function readExamples(input: InputArtifact, file: string): Promise<TypedExamples> {
  return tableToExamples(await input.readTable(file), `${input.id}/${file}`);
}

/** Rows of `data` grouped by type, in order of first appearance; each group keeps row order. */
export function groupByType(data: TypedExamples): Map<string, TypedExamples> {
  const rows = new Map<string, number[]>();
  data.types.forEach((t, i) => {
    const list = rows.get(t);
    if (list) list.push(i);
    else rows.set(t, [i]);
  });
  const out = new Map<string, TypedExamples>();
  const L = data.seqLen;
  for (const [type, idx] of rows) {
    const g: TypedExamples = {
      tokens: new Int32Array(idx.length * L),
      positions: new Int32Array(idx.length),
      targets: new Int32Array(idx.length),
      n: idx.length,
      seqLen: L,
      types: idx.map(() => type),
    };
    idx.forEach((r, i) => {
      g.tokens.set(data.tokens.subarray(r * L, r * L + L), i * L);
      g.positions[i] = data.positions[r];
      g.targets[i] = data.targets[r];
    });
    out.set(type, g);
  }
  return out;
}

/** Vocabulary from tokenize's `vocab.parquet`: token text by id. @throws Error when ids are not 0..n-1. */
export async function readVocab(input: InputArtifact): Promise<string[]> {
  const table = await input.readTable('vocab.parquet');
  const ids = column(table, 'id', 'INT32');
  const tokens = column(table, 'token', 'STRING');
  const out = new Array<string>(ids.length);
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= ids.length || out[ids[i]] !== undefined)
      throw new Error(`${input.id}/vocab.parquet: ids are not 0..${ids.length - 1}`);
    out[ids[i]] = tokens[i];
  }
  return out;
}

/**
 * The knowledge base of the comparison task: every entity has a value for every attribute
 * (Wang et al. 2024; docs/design.md §4, `generate`), and its table form `kb.parquet` (docs/artifacts.md).
 */
import type { Table } from '../table/table.js';
import { column, numRows } from '../table/table.js';
import type { RandomGenerator } from './streams.js';
import { below } from './streams.js';

/** Sizes of a comparison task: N entities, A attributes, V values per attribute. */
export interface TaskDims {
  /** Number of entities N (>= 2). */
  readonly entities: number;
  /** Number of attributes A (>= 1). */
  readonly attributes: number;
  /** Number of values V per attribute (>= 2); values are `0 .. V-1`. */
  readonly values: number;
}

/** A knowledge base: the value of every (attribute, entity). */
export interface KnowledgeBase extends TaskDims {
  /** Value of entity `e` for attribute `a` at index `a * entities + e` (length `A × N`), in `[0, V)`. */
  readonly value: Int32Array;
}

/**
 * Checks that `dims` are integers with N >= 2, A >= 1, V >= 2 and N × A below 2^31.
 * @throws RangeError naming the offending size.
 */
export function checkDims(dims: TaskDims): void {
  const { entities: n, attributes: a, values: v } = dims;
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`entities must be an integer >= 2, got ${n}`);
  if (!Number.isInteger(a) || a < 1) throw new RangeError(`attributes must be an integer >= 1, got ${a}`);
  if (!Number.isInteger(v) || v < 2) throw new RangeError(`values must be an integer >= 2, got ${v}`);
  if (n * a >= 2 ** 31) throw new RangeError(`entities × attributes = ${n * a} is too large`);
}

/**
 * Draws a knowledge base: each value uniform and independent in `[0, V)` (docs/design.md §4), drawn in
 * row order (attribute, then entity) from `rng`.
 * @throws RangeError when `dims` are invalid (see `checkDims`).
 */
export function drawKnowledgeBase(dims: TaskDims, rng: RandomGenerator): KnowledgeBase {
  checkDims(dims);
  const value = new Int32Array(dims.entities * dims.attributes);
  for (let i = 0; i < value.length; i++) value[i] = below(rng, dims.values);
  return { entities: dims.entities, attributes: dims.attributes, values: dims.values, value };
}

/**
 * `kb.parquet`: `entity INT32, attribute INT32, value INT32`, one row per (entity, attribute),
 * ordered by attribute then entity (docs/artifacts.md).
 */
export function kbToTable(kb: KnowledgeBase): Table {
  const n = kb.entities;
  const rows = kb.value.length;
  const entity = new Int32Array(rows);
  const attribute = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    entity[r] = r % n;
    attribute[r] = Math.floor(r / n);
  }
  return {
    columns: [
      { name: 'entity', type: 'INT32', data: entity },
      { name: 'attribute', type: 'INT32', data: attribute },
      { name: 'value', type: 'INT32', data: Int32Array.from(kb.value) },
    ],
  };
}

/**
 * Reads a knowledge base back from its `kb.parquet` table. N and A come from the table; V must be
 * given (it is a param of `generate`: a value may never occur).
 * @throws Error when the table is not a complete KB in the documented order, or a value is
 *   outside `[0, values)`.
 */
export function kbFromTable(table: Table, values: number): KnowledgeBase {
  const entity = column(table, 'entity', 'INT32');
  const attribute = column(table, 'attribute', 'INT32');
  const value = column(table, 'value', 'INT32');
  const rows = numRows(table);
  if (rows === 0) throw new Error('kb.parquet: the knowledge base is empty');
  const attributes = attribute[rows - 1] + 1;
  const entities = rows / attributes;
  if (!Number.isInteger(entities))
    throw new Error(`kb.parquet: ${rows} rows is not a multiple of ${attributes} attributes`);
  checkDims({ entities, attributes, values });
  for (let r = 0; r < rows; r++) {
    if (entity[r] !== r % entities || attribute[r] !== Math.floor(r / entities)) {
      throw new Error(
        `kb.parquet: row ${r} is (entity ${entity[r]}, attribute ${attribute[r]}); expected rows ordered by attribute then entity`,
      );
    }
    if (value[r] < 0 || value[r] >= values)
      throw new Error(`kb.parquet: row ${r} has value ${value[r]} outside [0, ${values})`);
  }
  return { entities, attributes, values, value: Int32Array.from(value) };
}

/**
 * Columnar sets of facts: the in-memory form of `split`'s `train.parquet` and `test.parquet`
 * (docs/artifacts.md): `type STRING, attribute INT32, e1 INT32, e2 INT32, label INT32`.
 *
 * An atomic fact `(e, a) -> value` is stored as `e1 = e, e2 = -1, label = value`; an inferred fact
 * `(a, e1, e2) -> <, =, >` as `label` 0, 1, 2 (see `labels.ts`). Types are small codes into a list
 * of names, so no per-row object or string exists until the table is built.
 */
import type { Table } from '../table/table.js';
import { column, numRows } from '../table/table.js';

/** Fact types of `train.parquet`, in code order. */
export const TRAIN_TYPES = ['atomic', 'inferred'] as const;

/**
 * Fact types of `test.parquet`, in code order (also the order of the rows): a sample of the
 * training inferred facts, ID atomic, OOD atomic, held-out ID inferred, OOD inferred.
 */
export const TEST_TYPES = ['train_inferred', 'id_atomic', 'ood_atomic', 'id_inferred', 'ood_inferred'] as const;

/** A set of facts, one entry per row in each array (all of the same length). */
export interface FactColumns {
  /** Names of the type codes (`TRAIN_TYPES` or `TEST_TYPES`). */
  readonly typeNames: readonly string[];
  /** Type code of each row: an index into `typeNames`. */
  readonly type: Uint8Array;
  /** Attribute index of each row. */
  readonly attribute: Int32Array;
  /** Entity (atomic) or first entity (inferred) of each row. */
  readonly e1: Int32Array;
  /** Second entity of an inferred fact; -1 for atomic facts. */
  readonly e2: Int32Array;
  /** Value (atomic) or comparison label 0/1/2 (inferred). */
  readonly label: Int32Array;
}

/** An empty-valued fact set of `rows` rows (to be filled in place). */
export function allocFacts(typeNames: readonly string[], rows: number): FactColumns {
  return {
    typeNames,
    type: new Uint8Array(rows),
    attribute: new Int32Array(rows),
    e1: new Int32Array(rows),
    e2: new Int32Array(rows),
    label: new Int32Array(rows),
  };
}

/** Number of rows of `facts`. */
export function factCount(facts: FactColumns): number {
  return facts.type.length;
}

/** Number of rows of each type, by type name (every name of `typeNames`, 0 when absent). */
export function countByType(facts: FactColumns): Record<string, number> {
  const counts = new Array<number>(facts.typeNames.length).fill(0);
  for (let i = 0; i < facts.type.length; i++) counts[facts.type[i]]++;
  return Object.fromEntries(facts.typeNames.map((name, i) => [name, counts[i]]));
}

/** The table of `facts` in the documented column order (`type, attribute, e1, e2, label`). */
export function factsToTable(facts: FactColumns): Table {
  const n = factCount(facts);
  const type = new Array<string>(n);
  for (let i = 0; i < n; i++) type[i] = facts.typeNames[facts.type[i]];
  return {
    columns: [
      { name: 'type', type: 'STRING', data: type },
      { name: 'attribute', type: 'INT32', data: facts.attribute },
      { name: 'e1', type: 'INT32', data: facts.e1 },
      { name: 'e2', type: 'INT32', data: facts.e2 },
      { name: 'label', type: 'INT32', data: facts.label },
    ],
  };
}

/**
 * Reads a fact table (`split`'s `train.parquet` or `test.parquet`) into columns.
 * @throws Error when a column is missing or of the wrong type, or a row's type is not in `typeNames`.
 */
export function factsFromTable(table: Table, typeNames: readonly string[]): FactColumns {
  const n = numRows(table);
  const names = column(table, 'type', 'STRING');
  const facts: FactColumns = {
    typeNames,
    type: new Uint8Array(n),
    attribute: Int32Array.from(column(table, 'attribute', 'INT32')),
    e1: Int32Array.from(column(table, 'e1', 'INT32')),
    e2: Int32Array.from(column(table, 'e2', 'INT32')),
    label: Int32Array.from(column(table, 'label', 'INT32')),
  };
  const code = new Map(typeNames.map((name, i) => [name, i]));
  for (let i = 0; i < n; i++) {
    const c = code.get(names[i]);
    if (c === undefined) throw new Error(`row ${i} has type "${names[i]}"; expected one of ${typeNames.join(', ')}`);
    facts.type[i] = c;
  }
  return facts;
}

/**
 * The weight norms of a run's curve (Omnigrok, Liu et al. 2022, arXiv 2210.01117): the L2 norm of
 * all the weights, of each block's and of the rest, at every evaluation step, as `train` writes
 * them into `curve.parquet` (`weight_norm`, `weight_norm_block_<i>`, `weight_norm_other`; curves of
 * train version 1 have none). Pure functions, no I/O.
 */
import type { Table } from '../table/table.js';
import { column, numRows } from '../table/table.js';
import { WEIGHT_NORM } from './files.js';

/** One run's weight norms by step. */
export interface WeightNormCurve {
  /** Evaluation steps (steps), increasing, one per step. */
  step: number[];
  /** The norm columns in the table's order (`weight_norm` first), each with one value per step. */
  parts: { name: string; norm: number[] }[];
}

/** Whether `name` is a weight-norm column of a curve table. */
export function isWeightNormColumn(name: string): boolean {
  return name === WEIGHT_NORM || name.startsWith(`${WEIGHT_NORM}_`);
}

/**
 * Reads the weight norms of a `curve.parquet` table: one value per step (the rows of a step carry
 * the same norms; the last row of a step wins, as in `buildCurve`).
 * @returns undefined when the table has no `weight_norm` column.
 * @throws TableError when a norm column is not DOUBLE.
 */
export function weightNormsFromTable(table: Table): WeightNormCurve | undefined {
  const names = table.columns.map((c) => c.name).filter(isWeightNormColumn);
  if (!names.includes(WEIGHT_NORM)) return undefined;
  const step = column(table, 'step', 'INT32');
  const values = names.map((name) => column(table, name, 'DOUBLE'));
  const rowOf = new Map<number, number>();
  for (let i = 0; i < numRows(table); i++) rowOf.set(step[i], i);
  const steps = [...rowOf.keys()].sort((a, b) => a - b);
  return {
    step: steps,
    parts: names.map((name, k) => ({ name, norm: steps.map((s) => values[k][rowOf.get(s) as number]) })),
  };
}

/**
 * The norm columns of several runs (a union; a run may lack norms, runs may differ in depth), in
 * order: `weight_norm`, the blocks by index, then the rest.
 */
export function normColumnNames(norms: readonly (WeightNormCurve | undefined)[]): string[] {
  const names: string[] = [];
  for (const n of norms) for (const p of n?.parts ?? []) if (!names.includes(p.name)) names.push(p.name);
  const rank = (name: string) => (name === WEIGHT_NORM ? -1 : Number(/_block_(\d+)$/.exec(name)?.[1] ?? Infinity));
  return names.sort((a, b) => rank(a) - rank(b) || 0);
}

/** The legend label of a norm column: `all weights`, `block 0`, ..., `outside blocks`. */
export function weightNormLabel(name: string): string {
  if (name === WEIGHT_NORM) return 'all weights';
  const block = /_block_(\d+)$/.exec(name);
  if (block) return `block ${block[1]}`;
  return name === `${WEIGHT_NORM}_other` ? 'outside blocks' : name.slice(WEIGHT_NORM.length + 1);
}

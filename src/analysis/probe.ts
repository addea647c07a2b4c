/**
 * The logit lens's table (`probe.parquet`, written by the `probe` stage; docs/artifacts.md
 * "probe"): per kept checkpoint (step), test type and layer, how well the residual stream at the
 * answer position, decoded through the final norm and the unembedding, already gives the answer.
 * Pure functions: the rows as a table and back, and the summary lines the CLI prints.
 */
import type { Table } from '../table/table.js';
import { column, numRows } from '../table/table.js';

/** One row of `probe.parquet`. */
export interface ProbeRow {
  /** Optimizer steps of the checkpoint read. */
  step: number;
  /** 0 = the embedding, k = after block k (`n_layers` = the model's own output). */
  layer: number;
  /** Test type (`id_inferred`, `ood_inferred`, ...). */
  type: string;
  /** Facts read. */
  n: number;
  /** Fraction of facts whose decoded argmax is the target (NaN when `n` is 0). */
  accuracy: number;
  /** Mean cross-entropy of the target (nats). */
  loss: number;
  /** Mean rank of the target among the vocabulary (0 = argmax). */
  rank: number;
}

/** The rows as `probe.parquet`: `step INT32, layer INT32, type STRING, n INT32, accuracy, loss, rank DOUBLE`. */
export function probeTable(rows: readonly ProbeRow[]): Table {
  return {
    columns: [
      { name: 'step', type: 'INT32', data: Int32Array.from(rows, (r) => r.step) },
      { name: 'layer', type: 'INT32', data: Int32Array.from(rows, (r) => r.layer) },
      { name: 'type', type: 'STRING', data: rows.map((r) => r.type) },
      { name: 'n', type: 'INT32', data: Int32Array.from(rows, (r) => r.n) },
      { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from(rows, (r) => r.accuracy) },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(rows, (r) => r.loss) },
      { name: 'rank', type: 'DOUBLE', data: Float64Array.from(rows, (r) => r.rank) },
    ],
  };
}

/**
 * The rows of a `probe.parquet` table.
 * @throws TableError when a column is missing or of another type.
 */
export function probeRows(table: Table): ProbeRow[] {
  const step = column(table, 'step', 'INT32');
  const layer = column(table, 'layer', 'INT32');
  const type = column(table, 'type', 'STRING');
  const n = column(table, 'n', 'INT32');
  const accuracy = column(table, 'accuracy', 'DOUBLE');
  const loss = column(table, 'loss', 'DOUBLE');
  const rank = column(table, 'rank', 'DOUBLE');
  return Array.from({ length: numRows(table) }, (_, i) => ({
    step: step[i],
    layer: layer[i],
    type: type[i],
    n: n[i],
    accuracy: accuracy[i],
    loss: loss[i],
    rank: rank[i],
  }));
}

/**
 * Summary lines: per type, at the last step read, the lens's accuracy at each layer, and the first
 * layer from which it stays ≥ `threshold` (the layer at which the answer becomes readable).
 */
export function probeSummary(rows: readonly ProbeRow[], threshold = 0.9): string[] {
  if (rows.length === 0) return [];
  const last = Math.max(...rows.map((r) => r.step));
  const types = [...new Set(rows.map((r) => r.type))];
  return types.map((type) => {
    const byLayer = rows.filter((r) => r.step === last && r.type === type).sort((a, b) => a.layer - b.layer);
    const acc = byLayer.map((r) => `${(100 * r.accuracy).toFixed(0)}%`).join(' ');
    let from = byLayer.length;
    while (from > 0 && byLayer[from - 1].accuracy >= threshold - 1e-9) from--;
    const readable =
      from < byLayer.length ? `readable (≥ ${threshold}) from layer ${byLayer[from].layer}` : `never ≥ ${threshold}`;
    return `${type} at step ${last}: lens accuracy by layer ${acc}; ${readable}`;
  });
}

/**
 * Aggregation of a sweep's metrics over replicate runs (seeds): for each combination of the
 * knobs that are not seeds, the mean and spread of every metric of `metrics.parquet` over the runs
 * that share it (pure functions, no I/O). This is `analyze`'s `sweep.parquet`.
 */
import type { Column, Table } from '../table/table.js';
import type { AnalyzedRun, Knob } from './tables.js';
import { knobText, metricColumnNames, metricsTable, sweepKnobs } from './tables.js';
import { GENERALISATION_TYPES } from './metrics.js';

/** Whether a knob only replicates a run (a random seed: its name contains `seed`). */
export function isSeedKnob(name: string): boolean {
  return /seed/i.test(name);
}

/** Runs that share the values of every non-seed knob. */
export interface RunGroup {
  /** Text of each non-seed knob's value (`knobText`), by knob name. */
  readonly key: Readonly<Record<string, string>>;
  /** Indices of the runs in the group, in run order. */
  readonly runs: readonly number[];
}

/**
 * Groups runs by the values of the knobs that are not seeds (`isSeedKnob`), groups in order of
 * their first run. Without such knobs every run is in one group.
 */
export function groupReplicates(runs: readonly AnalyzedRun[], knobs: readonly Knob[]): RunGroup[] {
  const by = knobs.filter((k) => !isSeedKnob(k.name));
  const groups = new Map<string, { key: Record<string, string>; runs: number[] }>();
  runs.forEach((r, i) => {
    const key: Record<string, string> = {};
    for (const k of by) key[k.name] = knobText(r.matrix[k.name]);
    const id = JSON.stringify(by.map((k) => key[k.name]));
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { key, runs: [] }));
    g.runs.push(i);
  });
  return [...groups.values()];
}

/** Mean and spread of the defined values of a metric over a group. */
export interface Spread {
  /** Runs in the group. */
  n: number;
  /** Runs with a value (metric reached / defined). */
  reached: number;
  /** Mean of the values (NaN when none). */
  mean: number;
  /** Sample standard deviation (n − 1 denominator; NaN with fewer than two values). */
  std: number;
  /** Smallest and largest value (NaN when none). */
  min: number;
  max: number;
}

/** Mean, sample standard deviation, min and max of the finite values among `values`. */
export function spreadOf(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  const k = v.length;
  const mean = k > 0 ? v.reduce((a, b) => a + b, 0) / k : Number.NaN;
  const std = k > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1)) : Number.NaN;
  return {
    n: values.length,
    reached: k,
    mean,
    std,
    min: k > 0 ? Math.min(...v) : Number.NaN,
    max: k > 0 ? Math.max(...v) : Number.NaN,
  };
}

/** A DOUBLE column with NULL where a value is NaN (undefined). */
function nullable(name: string, values: readonly number[]): Column {
  return {
    name,
    type: 'DOUBLE',
    data: Float64Array.from(values, (v) => (Number.isNaN(v) ? 0 : v)),
    nulls: values.map(Number.isNaN),
  };
}

/** Whether some runs differ only in their seeds (a group of `groupReplicates` has 2+ runs). */
export function hasReplicates(runs: readonly AnalyzedRun[], thresholds: readonly number[]): boolean {
  return groupReplicates(runs, sweepKnobs(runs, thresholds)).some((g) => g.runs.length > 1);
}

/** The columns of `sweep.parquet` after the knobs (a knob of one of these names gets `matrix_`). */
export const SWEEP_COLUMNS: readonly string[] = ['runs', 'metric', 'reached', 'mean', 'std', 'min', 'max'];

/**
 * Builds `sweep.parquet`, long format: one row per group of runs that share every non-seed knob
 * (`groupReplicates`) and per metric column of `metrics.parquet` (`metricColumnNames`, in that
 * order). Columns:
 * - one per non-seed knob, named and typed as in `metrics.parquet` (DOUBLE or STRING;
 *   `matrix_<knob>` when the name is one of `SWEEP_COLUMNS`);
 * - `runs INT32`: runs in the group (the seeds);
 * - `metric STRING`: the `metrics.parquet` column (`memorise_step`, `id_step_0.9`, ...);
 * - `reached INT32`: runs with a value (not NULL: reached, defined);
 * - `mean DOUBLE`, `std DOUBLE` (sample standard deviation; NULL with fewer than two values),
 *   `min DOUBLE`, `max DOUBLE`: over the runs with a value, in the metric's unit (steps, epochs,
 *   ratio, accuracy); NULL when no run has one.
 */
export function sweepTable(runs: readonly AnalyzedRun[], thresholds: readonly number[]): Table {
  const knobs = sweepKnobs(runs, thresholds);
  const groups = groupReplicates(runs, knobs);
  const metrics = metricsTable(runs, thresholds);
  const names = metricColumnNames(thresholds);
  const byName = new Map(metrics.columns.map((c) => [c.name, c]));
  const rows: { group: RunGroup; metric: string; s: Spread }[] = [];
  for (const group of groups) {
    for (const metric of names) {
      const c = byName.get(metric) as Column;
      const values = group.runs.map((i) => (c.nulls?.[i] ? Number.NaN : (c.data[i] as number)));
      rows.push({ group, metric, s: spreadOf(values) });
    }
  }
  const columns: Column[] = [];
  for (const k of knobs.filter((x) => !isSeedKnob(x.name))) {
    const first = (g: RunGroup) => runs[g.runs[0]].matrix[k.name];
    const name = SWEEP_COLUMNS.includes(k.column) ? `matrix_${k.name}` : k.column;
    if (k.numeric)
      columns.push({ name, type: 'DOUBLE', data: Float64Array.from(rows, (r) => first(r.group) as number) });
    else columns.push({ name, type: 'STRING', data: rows.map((r) => r.group.key[k.name]) });
  }
  columns.push(
    { name: 'runs', type: 'INT32', data: Int32Array.from(rows, (r) => r.s.n) },
    { name: 'metric', type: 'STRING', data: rows.map((r) => r.metric) },
    { name: 'reached', type: 'INT32', data: Int32Array.from(rows, (r) => r.s.reached) },
    ...(['mean', 'std', 'min', 'max'] as const).map((k) =>
      nullable(
        k,
        rows.map((r) => r.s[k]),
      ),
    ),
  );
  return { columns };
}

const fmtSpread = (s: Spread, digits = 0): string =>
  s.reached === 0 ? '' : `${s.mean.toFixed(digits)}${Number.isNaN(s.std) ? '' : ` ± ${s.std.toFixed(digits)}`}`;

/**
 * One line per group of runs that share every non-seed knob (`groupReplicates`), for the CLI: how
 * many of its runs memorised and generalised (ID, OOD) at the lowest threshold, and the mean ± sample
 * standard deviation of the step over those that did (and of the OOD ratio to memorisation), e.g.
 * `values=2 (3 runs): memorised 3/3, step 400 ± 0; OOD ≥0.9 3/3, step 1533 ± 208 (3.8 ± 0.5× memorisation); ID ≥0.9 3/3, step 400 ± 0`.
 * When some run's first crossing (`./metrics.ts`) is earlier than the step θ was held from, the
 * split's part goes on with the first crossings' count and spread:
 * `OOD ≥0.9 2/3, step 4600 ± 1273 (6.6 ± 1.8× memorisation), first reached 3/3: step 733 ± 58`.
 * Empty when no group has two runs.
 */
export function groupLines(runs: readonly AnalyzedRun[], thresholds: readonly number[]): string[] {
  const knobs = sweepKnobs(runs, thresholds);
  const groups = groupReplicates(runs, knobs);
  if (!groups.some((g) => g.runs.length > 1)) return [];
  const t = Math.min(...thresholds);
  return groups.map((g) => {
    const members = g.runs.map((i) => runs[i]);
    const label =
      Object.entries(g.key)
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || 'all';
    const parts: string[] = [];
    const mem = spreadOf(members.map((r) => r.metrics.memorise?.step ?? Number.NaN));
    parts.push(`memorised ${mem.reached}/${mem.n}${mem.reached > 0 ? `, step ${fmtSpread(mem)}` : ''}`);
    for (const { type, label: split } of [...GENERALISATION_TYPES].reverse()) {
      const gen = members.map((r) => r.metrics.generalise.find((e) => e.type === type && e.threshold === t));
      const step = spreadOf(gen.map((e) => e?.at?.step ?? Number.NaN));
      const ratio = spreadOf(gen.map((e) => e?.ratio ?? Number.NaN));
      const rel = type === 'ood_inferred' && ratio.reached > 0 ? ` (${fmtSpread(ratio, 1)}× memorisation)` : '';
      const first = spreadOf(gen.map((e) => e?.first?.step ?? Number.NaN));
      const differs = gen.some((e) => e?.first && e.first.step !== e.at?.step);
      const onset = differs ? `, first reached ${first.reached}/${first.n}: step ${fmtSpread(first)}` : '';
      parts.push(
        `${split} ≥${t} ${step.reached}/${step.n}${step.reached > 0 ? `, step ${fmtSpread(step)}${rel}` : ''}${onset}`,
      );
    }
    return `${label} (${members.length} runs): ${parts.join('; ')}`;
  });
}

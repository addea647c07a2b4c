/**
 * Tables and human-readable summaries of analysed runs (pure functions, no I/O): the rows of
 * `analyze`'s `metrics.parquet` and `curves.parquet`, the CLI summary lines and the manifest record.
 * Metric definitions: `./metrics.ts` (Wang et al. 2024 §2).
 */
import type { Json } from '../engine/stage.js';
import type { Column, Table } from '../table/table.js';
import type { Curve, RunMetrics } from './metrics.js';
import { ACCURACY_TYPES, DEFAULT_GENERALISE_THRESHOLDS, GENERALISATION_TYPES } from './metrics.js';
import { normColumnNames } from './weight-norms.js';
import type { WeightNormCurve } from './weight-norms.js';

/** One analysed run: its name, sweep values, curve and metrics. */
export interface AnalyzedRun {
  /** Run label, e.g. `entities=400,seed=1` (see `runName`). */
  name: string;
  /** Matrix values of the run (empty outside a sweep). */
  matrix: Readonly<Record<string, Json>>;
  /** The grokking curve (from `curve.parquet`). */
  curve: Curve;
  /** Metrics computed from the curve. */
  metrics: RunMetrics;
  /** The weight norms at each evaluation step, when the curve has them (train version 2 on). */
  norms?: WeightNormCurve;
  /**
   * Accuracy of the final model per test type from evaluate's `accuracy.parquet` (full test sets);
   * empty when the input has no such table.
   */
  evaluated: Readonly<Record<string, number>>;
}

/** Text of one matrix value: strings as they are, numbers and booleans printed, others as JSON. */
export function knobText(value: Json | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * Label of a run from its matrix values, `k=v` joined by commas in the matrix's key order
 * (`entities=400,seed=1`); `fallback` when the matrix is empty.
 */
export function runName(matrix: Readonly<Record<string, Json>>, fallback: string): string {
  const parts = Object.entries(matrix).map(([k, v]) => `${k}=${knobText(v)}`);
  return parts.length > 0 ? parts.join(',') : fallback;
}

/** A sweep knob: its name and whether every run's value is a number. */
export interface Knob {
  /** Matrix key (`entities`, `seed`, ...). */
  name: string;
  /** Column name in `metrics.parquet` (the key, or `matrix_<key>` on a clash with a metric). */
  column: string;
  /** True when every run has a number for it (then the column is DOUBLE, else STRING). */
  numeric: boolean;
  /** Number of distinct values over the runs (a knob with 2+ values is "swept"). */
  distinct: number;
}

/** Threshold as written in column names (`0.9`, `0.95`, `0.99`). */
export function thresholdText(threshold: number): string {
  return String(threshold);
}

/**
 * Names of the four columns of one crossing of one test type at one threshold text `x`: the step
 * θ was held from (`id_step_0.9`, `id_epoch_0.9`, `id_delay_0.9`, `id_ratio_0.9`) or, with `first`,
 * the first crossing (`id_first_0.9`, `id_first_epoch_0.9`, `id_first_delay_0.9`, `id_first_ratio_0.9`).
 */
function crossingColumnNames(short: string, x: string, first: boolean): [string, string, string, string] {
  const p = first ? `${short}_first` : short;
  return [first ? `${p}_${x}` : `${p}_step_${x}`, `${p}_epoch_${x}`, `${p}_delay_${x}`, `${p}_ratio_${x}`];
}

/** Names of the metric columns of `metrics.parquet`, in order, for the given thresholds. */
export function metricColumnNames(thresholds: readonly number[]): string[] {
  const crossings = (first: boolean): string[] =>
    GENERALISATION_TYPES.flatMap(({ short }) =>
      thresholds.flatMap((t) => crossingColumnNames(short, thresholdText(t), first)),
    );
  return [
    'memorise_step',
    'memorise_epoch',
    ...crossings(false),
    ...ACCURACY_TYPES.map((type) => `final_${type}`),
    'last_step',
    'last_epoch',
    ...crossings(true),
  ];
}

/** The knobs of a set of runs: the union of their matrix keys, in first-seen order. */
export function sweepKnobs(runs: readonly AnalyzedRun[], thresholds: readonly number[]): Knob[] {
  const reserved = new Set(['run', ...metricColumnNames(thresholds)]);
  const keys: string[] = [];
  for (const r of runs) for (const k of Object.keys(r.matrix)) if (!keys.includes(k)) keys.push(k);
  return keys.map((name) => {
    const values = runs.map((r) => r.matrix[name]);
    return {
      name,
      column: reserved.has(name) ? `matrix_${name}` : name,
      numeric: values.every((v) => typeof v === 'number'),
      distinct: new Set(values.map((v) => knobText(v))).size,
    };
  });
}

/** Final accuracy of a run for a type: evaluate's value, else the curve's last point, else NaN. */
export function finalAccuracy(run: AnalyzedRun, type: string): number {
  return run.evaluated[type] ?? run.metrics.final[type] ?? Number.NaN;
}

/** Whether a metric has no value: not reached, undefined, or not measured (`null`, NaN). */
const missing = (v: number | null | undefined): boolean => v === null || v === undefined || Number.isNaN(v);

/**
 * One column per matrix knob of the runs (`sweepKnobs`): DOUBLE when every run's value is a
 * number, else STRING (`knobText`); NULL for a run without the knob.
 */
export function knobColumns(runs: readonly AnalyzedRun[], thresholds: readonly number[]): Column[] {
  return sweepKnobs(runs, thresholds).map((knob): Column => {
    const nulls = runs.map((r) => r.matrix[knob.name] === undefined);
    if (knob.numeric) {
      const data = Float64Array.from(runs, (r) => (r.matrix[knob.name] as number | undefined) ?? 0);
      return { name: knob.column, type: 'DOUBLE', data, nulls };
    }
    return { name: knob.column, type: 'STRING', data: runs.map((r) => knobText(r.matrix[knob.name])), nulls };
  });
}

/**
 * Builds `metrics.parquet`: one row per run. Columns, in order:
 * - `run STRING`: the run label;
 * - one column per matrix knob: DOUBLE when every run's value is a number, else STRING
 *   (`knobText`); named after the knob (`matrix_<knob>` if that clashes with a metric column);
 * - `memorise_step INT32` (steps; NULL = `train_inferred` never reached the threshold),
 *   `memorise_epoch DOUBLE` (epochs; NULL = never);
 * - per type `id`, `ood` and threshold θ (e.g. `0.9`): `<t>_step_θ INT32` (first step from which
 *   accuracy stays ≥ θ; NULL = not generalised), `<t>_epoch_θ DOUBLE` (NULL = not generalised),
 *   `<t>_delay_θ DOUBLE` (generalisation − memorisation, steps; may be negative; NULL = undefined),
 *   `<t>_ratio_θ DOUBLE` (generalisation / memorisation step; NULL = undefined);
 * - `final_<type> DOUBLE` for `train_inferred, id_inferred, ood_inferred, id_atomic, ood_atomic`:
 *   the final model's accuracy (evaluate's `accuracy.parquet`; the curve's last point when a type
 *   is missing there; NULL when absent from both);
 * - `last_step INT32`, `last_epoch DOUBLE`: the last evaluation of the curve (NULL if empty),
 *   i.e. how long the run had to reach a threshold;
 * - per type `id`, `ood` and threshold θ, the first crossing (analyze version 8 on):
 *   `<t>_first_θ INT32` (first step at which accuracy reached θ, whatever follows; NULL = never),
 *   `<t>_first_epoch_θ DOUBLE`, `<t>_first_delay_θ DOUBLE`, `<t>_first_ratio_θ DOUBLE` (as for
 *   `<t>_step_θ`). `<t>_step_θ` is when θ was held to the end, decided by the last dip below it;
 *   `<t>_first_θ` is the onset, which a dip cannot move (definitions: `./metrics.ts`).
 * NULL, not −1 or NaN, so that SQL aggregates skip what was not reached (`avg("ood_step_0.9")`).
 */
export function metricsTable(runs: readonly AnalyzedRun[], thresholds: readonly number[]): Table {
  const columns: Column[] = [
    { name: 'run', type: 'STRING', data: runs.map((r) => r.name) },
    ...knobColumns(runs, thresholds),
  ];
  const int = (name: string, f: (r: AnalyzedRun) => number | null | undefined): void => {
    const values = runs.map(f);
    columns.push({ name, type: 'INT32', data: Int32Array.from(values, (v) => v ?? 0), nulls: values.map(missing) });
  };
  const dbl = (name: string, f: (r: AnalyzedRun) => number | null | undefined): void => {
    const values = runs.map(f);
    columns.push({ name, type: 'DOUBLE', data: Float64Array.from(values, (v) => v ?? 0), nulls: values.map(missing) });
  };
  const crossings = (first: boolean): void => {
    for (const { type, short } of GENERALISATION_TYPES) {
      for (const t of thresholds) {
        const [step, epoch, delay, ratio] = crossingColumnNames(short, thresholdText(t), first);
        const g = (r: AnalyzedRun) => r.metrics.generalise.find((e) => e.type === type && e.threshold === t);
        const at = (r: AnalyzedRun) => (first ? g(r)?.first : g(r)?.at);
        int(step, (r) => at(r)?.step);
        dbl(epoch, (r) => at(r)?.epoch);
        dbl(delay, (r) => (first ? g(r)?.firstDelay : g(r)?.delay));
        dbl(ratio, (r) => (first ? g(r)?.firstRatio : g(r)?.ratio));
      }
    }
  };
  int('memorise_step', (r) => r.metrics.memorise?.step);
  dbl('memorise_epoch', (r) => r.metrics.memorise?.epoch);
  crossings(false);
  for (const type of ACCURACY_TYPES) dbl(`final_${type}`, (r) => finalAccuracy(r, type));
  int('last_step', (r) => r.metrics.last?.step);
  dbl('last_epoch', (r) => r.metrics.last?.epoch);
  crossings(true);
  return { columns };
}

/**
 * Builds `curves.parquet`: every run's curve stacked, `run STRING`, one column per matrix knob (as
 * in `metrics.parquet`, so a curve can be grouped by knob without a join), `step INT32, epoch
 * DOUBLE, type STRING, accuracy DOUBLE, loss DOUBLE`, ordered by run, then type, then step (one row
 * per run, type and step; duplicate steps of the input collapsed, last wins); then, when some run
 * has them, the weight-norm columns of every run (`weightNormColumns`).
 */
export function curvesTable(
  runs: readonly AnalyzedRun[],
  thresholds: readonly number[] = DEFAULT_GENERALISE_THRESHOLDS,
): Table {
  const rowRun: number[] = [];
  const rowStep: number[] = [];
  const run: string[] = [];
  const type: string[] = [];
  const step: number[] = [];
  const epoch: number[] = [];
  const accuracy: number[] = [];
  const loss: number[] = [];
  for (const [k, r] of runs.entries()) {
    for (const [t, s] of Object.entries(r.curve)) {
      for (let i = 0; i < s.step.length; i++) {
        rowRun.push(k);
        rowStep.push(s.step[i]);
        run.push(r.name);
        type.push(t);
        step.push(s.step[i]);
        epoch.push(s.epoch[i]);
        accuracy.push(s.accuracy[i]);
        loss.push(s.loss[i]);
      }
    }
  }
  const knobs = knobColumns(runs, thresholds).map((c) => repeatRows(c, rowRun));
  return {
    columns: [
      { name: 'run', type: 'STRING', data: run },
      ...knobs,
      { name: 'step', type: 'INT32', data: Int32Array.from(step) },
      { name: 'epoch', type: 'DOUBLE', data: Float64Array.from(epoch) },
      { name: 'type', type: 'STRING', data: type },
      { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from(accuracy) },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(loss) },
      ...weightNormColumns(runs, rowRun, rowStep),
    ],
  };
}

/**
 * The weight-norm columns of stacked curves (`rows[i]`, `steps[i]`: the run and step of row `i`):
 * the union of the runs' norm columns, `weight_norm` first, then the blocks in order, then the
 * others; DOUBLE, NULL where a run has no such column or no norm at that step. None when no run
 * has norms (curves of train version 1).
 */
export function weightNormColumns(
  runs: readonly AnalyzedRun[],
  rows: readonly number[],
  steps: readonly number[],
): Column[] {
  const names = normColumnNames(runs.map((r) => r.norms));
  const at = runs.map((r) => new Map(r.norms?.step.map((s, i) => [s, i]) ?? []));
  return names.map((name): Column => {
    const parts = runs.map((r) => r.norms?.parts.find((p) => p.name === name));
    const value = (i: number): number | undefined => {
      const j = at[rows[i]].get(steps[i]);
      return j === undefined ? undefined : parts[rows[i]]?.norm[j];
    };
    const values = rows.map((_, i) => value(i));
    return { name, type: 'DOUBLE', data: Float64Array.from(values, (v) => v ?? 0), nulls: values.map(missing) };
  });
}

/** A per-run column expanded to one row per curve point (`rows[i]`: the run of point `i`). */
function repeatRows(c: Column, rows: readonly number[]): Column {
  const nulls = c.nulls ? rows.map((i) => c.nulls?.[i] ?? false) : undefined;
  if (c.type === 'DOUBLE') return { ...c, data: Float64Array.from(rows, (i) => c.data[i]), nulls };
  if (c.type === 'STRING') return { ...c, data: rows.map((i) => c.data[i]), nulls };
  throw new Error(`internal: knob column ${c.name} of type ${c.type}`);
}

const fmtAcc = (a: number): string => (Number.isNaN(a) ? 'n/a' : a.toFixed(3));
const fmtEpoch = (e: number): string => (Number.isNaN(e) ? '?' : e >= 100 ? e.toFixed(0) : e.toFixed(1));
const fmtRatio = (x: number): string => (x >= 10 ? x.toFixed(0) : x.toFixed(1));

/**
 * Human-readable summary, one block of two lines per run, for the CLI to print at the end
 * (`ctx.record('summary', ...)`). The first line gives memorisation and ID/OOD generalisation at
 * the lowest threshold, e.g.
 * `entities=400,seed=1: memorised at step 1200 (epoch 40.1); ID ≥0.9 at step 3400 (2.8× memorisation); OOD ≥0.9 at step 5200 (4.3× memorisation)`;
 * where the first crossing (`./metrics.ts`) is earlier than the step θ was held from, it follows:
 * `OOD ≥0.9 at step 3700 (5.3× memorisation), first reached at step 700`, or
 * `OOD not ≥0.9 to the end, first reached at step 700`. The second line gives the final accuracies.
 */
export function summaryLines(runs: readonly AnalyzedRun[], thresholds: readonly number[]): string[] {
  const t = Math.min(...thresholds);
  const lines: string[] = [];
  for (const r of runs) {
    const m = r.metrics;
    const parts: string[] = [];
    let missing = false;
    if (m.memorise) {
      parts.push(`memorised at step ${m.memorise.step} (epoch ${fmtEpoch(m.memorise.epoch)})`);
    } else {
      missing = true;
      parts.push(
        m.maxTrainAccuracy === null
          ? 'not memorised (no train_inferred evaluations)'
          : `not memorised (train accuracy peaked at ${fmtAcc(m.maxTrainAccuracy)} < ${m.memoriseThreshold})`,
      );
    }
    for (const { type, label } of GENERALISATION_TYPES) {
      const g = m.generalise.find((e) => e.type === type && e.threshold === t);
      if (!g) continue;
      const first = g.first && g.first.step !== g.at?.step ? `, first reached at step ${g.first.step}` : '';
      if (g.at) {
        const rel = g.ratio !== null ? ` (${fmtRatio(g.ratio)}× memorisation)` : '';
        parts.push(`${label} ≥${t} at step ${g.at.step}${rel}${first}`);
      } else {
        missing = true;
        parts.push(`${label} not ≥${t} to the end${first}`);
      }
    }
    const end = missing && m.last ? ` (run ended at step ${m.last.step})` : '';
    lines.push(`${r.name}: ${parts.join('; ')}${end}`);
    const finals = ACCURACY_TYPES.map((type) => `${type} ${fmtAcc(finalAccuracy(r, type))}`);
    lines.push(`  final accuracy: ${finals.join(', ')}`);
  }
  return lines;
}

const jsonNumber = (x: number | null | undefined): Json =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x;

/**
 * The numbers for the manifest (`ctx.record('metrics', ...)`): `{ <run>: { matrix, memorise_step,
 * memorise_epoch, <t>_step_θ, <t>_epoch_θ, <t>_delay_θ, <t>_ratio_θ, final_<type>, last_step,
 * last_epoch, <t>_first_θ, <t>_first_epoch_θ, <t>_first_delay_θ, <t>_first_ratio_θ } }` with `null` where `metrics.parquet` has NULL.
 */
export function metricsRecord(runs: readonly AnalyzedRun[], thresholds: readonly number[]): Json {
  const table = metricsTable(runs, thresholds);
  const names = new Set(metricColumnNames(thresholds));
  const out: Record<string, Json> = {};
  runs.forEach((r, i) => {
    const entry: Record<string, Json> = { matrix: { ...r.matrix } };
    for (const c of table.columns) {
      if (!names.has(c.name)) continue;
      entry[c.name] = c.nulls?.[i] ? null : jsonNumber(c.data[i] as number);
    }
    out[r.name] = entry;
  });
  return out;
}

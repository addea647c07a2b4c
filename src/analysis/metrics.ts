/**
 * Grokking metrics of one training run, computed from its grokking curve (pure functions, no I/O).
 *
 * Definitions follow Wang et al. 2024, "Grokked Transformers are Implicit Reasoners" (§2, Fig. 1):
 * grokking is generalisation that happens *long after* the model has fitted its training data.
 *
 * - **Memorisation** (the start of grokking, §2): the first evaluation step at which the accuracy
 *   on a sample of the *training* inferred facts (curve type `train_inferred`) reaches the
 *   memorisation threshold (default 0.99). Only the first crossing counts: a later dip does not
 *   move it (training accuracy rarely falls back once fitted, and the onset is what matters).
 * - **Generalisation** at threshold θ, for the held-out ID (`id_inferred`) and OOD
 *   (`ood_inferred`) test facts: the first evaluation step from which the accuracy is ≥ θ at
 *   *every* remaining evaluation step of the run ("reaches θ and stays there"). Equivalently: the
 *   evaluation step just after the last one below θ. So a test accuracy that crosses θ, falls back
 *   and crosses again is credited with the *later* crossing; one that is below θ at the last
 *   evaluation has not generalised (`null`), whatever it reached before. Noisy crossings are
 *   handled by this rule alone, with no smoothing: a single evaluation below θ resets the clock.
 * - **First crossing** at θ, reported beside generalisation: the first evaluation step at which the
 *   test accuracy reaches θ, whatever follows (`firstReach`, as for memorisation). Both exist
 *   because they answer different questions: the strict step says when θ was *held*, but an
 *   accuracy that reaches θ early and then hovers around it (OOD on the base configuration of
 *   docs/findings.md, "Train code version 3": ≥ 0.9 at step 700–800, dips to 0.866–0.897 until
 *   3,700 or later) has its strict step decided by its last dip, which float rounding alone can
 *   move by thousands of steps; the first crossing is the onset, and a dip cannot move it. It is
 *   never later than the strict step, equal when the accuracy never falls back below θ.
 * - **Delay** = generalisation step − memorisation step (steps; negative when the test accuracy
 *   stays above θ before the training accuracy reaches its threshold, e.g. ID atomic facts).
 *   **Ratio** = generalisation step / memorisation step (dimensionless; the paper's "grokking
 *   takes k× longer than memorisation"). Both are `null` when either step is `null`; the ratio is
 *   also `null` when memorisation happened at step 0. The first crossing has its own delay and
 *   ratio, defined the same way.
 *
 * Steps are optimizer steps (as logged in `curve.parquet`'s `step`), epochs are passes over the
 * training set (`epoch`, fractional). Accuracies are fractions in [0, 1]. A value "reaches" a
 * threshold when `accuracy >= threshold - THRESHOLD_TOLERANCE`, so that e.g. 2970/3000 counts as
 * 0.99 despite floating-point rounding; NaN accuracies never reach anything.
 */
import type { Table } from '../table/table.js';
import { column, numRows } from '../table/table.js';

/** Absolute slack when comparing an accuracy with a threshold (absorbs float rounding). */
export const THRESHOLD_TOLERANCE = 1e-9;

/** Curve type whose accuracy defines memorisation (a sample of the training inferred facts). */
export const TRAIN_TYPE = 'train_inferred';

/** Curve type of the mean training-batch loss/accuracy since the previous evaluation. */
export const TRAIN_BATCH_TYPE = 'train_batch';

/** Test types whose generalisation is measured, with the short names used in column names. */
export const GENERALISATION_TYPES = [
  { type: 'id_inferred', short: 'id', label: 'ID' },
  { type: 'ood_inferred', short: 'ood', label: 'OOD' },
] as const;

/** Curve types whose accuracy is reported (and plotted), in display order. */
export const ACCURACY_TYPES = ['train_inferred', 'id_inferred', 'ood_inferred', 'id_atomic', 'ood_atomic'] as const;

/** Default memorisation threshold on `train_inferred` accuracy (Wang et al. 2024 §2). */
export const DEFAULT_MEMORISE_THRESHOLD = 0.99;

/** Default generalisation thresholds on ID / OOD test accuracy. */
export const DEFAULT_GENERALISE_THRESHOLDS: readonly number[] = [0.9, 0.95, 0.99];

/** One curve type's evaluations, sorted by step with at most one point per step. */
export interface CurveSeries {
  /** Optimizer steps (steps), strictly increasing. */
  step: number[];
  /** Epoch at each step (passes over the training set, fractional). */
  epoch: number[];
  /** Accuracy at each step, in [0, 1] (NaN when not measured). */
  accuracy: number[];
  /** Loss at each step (NaN when not measured). */
  loss: number[];
}

/** A run's grokking curve: one series per curve type (`train_batch`, `train_inferred`, ...). */
export type Curve = Record<string, CurveSeries>;

/** Where a threshold was reached: the evaluation step (steps) and its epoch (epochs). */
export interface Crossing {
  step: number;
  epoch: number;
}

/** One point of a curve before grouping, as read from `curve.parquet`. */
export interface CurvePoint {
  type: string;
  step: number;
  epoch: number;
  accuracy: number;
  loss?: number;
}

/**
 * Groups curve points by type and sorts each series by step. When a step occurs more than once for
 * a type (e.g. the last step also falls on an `eval_every` boundary), the last row wins.
 */
export function buildCurve(points: Iterable<CurvePoint>): Curve {
  const byType = new Map<string, Map<number, CurvePoint>>();
  for (const p of points) {
    let m = byType.get(p.type);
    if (!m) byType.set(p.type, (m = new Map()));
    m.set(p.step, p);
  }
  const curve: Curve = {};
  for (const [type, m] of byType) {
    const pts = [...m.values()].sort((a, b) => a.step - b.step);
    curve[type] = {
      step: pts.map((p) => p.step),
      epoch: pts.map((p) => p.epoch),
      accuracy: pts.map((p) => p.accuracy),
      loss: pts.map((p) => p.loss ?? Number.NaN),
    };
  }
  return curve;
}

/**
 * Reads a curve from a `curve.parquet` table (`step INT32, epoch DOUBLE, type STRING,
 * accuracy DOUBLE`, optional `loss DOUBLE`; docs/artifacts.md, train).
 * @throws TableError when a required column is missing or of the wrong type.
 */
export function curveFromTable(table: Table): Curve {
  const step = column(table, 'step', 'INT32');
  const epoch = column(table, 'epoch', 'DOUBLE');
  const type = column(table, 'type', 'STRING');
  const accuracy = column(table, 'accuracy', 'DOUBLE');
  const loss = table.columns.some((c) => c.name === 'loss') ? column(table, 'loss', 'DOUBLE') : undefined;
  const n = numRows(table);
  const points: CurvePoint[] = [];
  for (let i = 0; i < n; i++) {
    points.push({
      type: type[i],
      step: step[i],
      epoch: epoch[i],
      accuracy: accuracy[i],
      loss: loss ? loss[i] : undefined,
    });
  }
  return buildCurve(points);
}

/** Whether `accuracy` reaches `threshold` (with `THRESHOLD_TOLERANCE`; NaN never does). */
export function reaches(accuracy: number, threshold: number): boolean {
  return accuracy >= threshold - THRESHOLD_TOLERANCE;
}

/**
 * The first evaluation at which `series` reaches `threshold`, or `null` when it never does (or the
 * series is empty or missing). Used for memorisation and for the first crossing of a test accuracy.
 */
export function firstReach(series: CurveSeries | undefined, threshold: number): Crossing | null {
  if (!series) return null;
  for (let i = 0; i < series.step.length; i++) {
    if (reaches(series.accuracy[i], threshold)) return { step: series.step[i], epoch: series.epoch[i] };
  }
  return null;
}

/**
 * The first evaluation from which `series` stays at or above `threshold` until its last evaluation,
 * or `null` when its last evaluation is below it (or the series is empty or missing). Used for
 * generalisation: a crossing that is lost again does not count; a later re-crossing that holds does.
 */
export function stableReach(series: CurveSeries | undefined, threshold: number): Crossing | null {
  if (!series || series.step.length === 0) return null;
  let i = series.step.length;
  while (i > 0 && reaches(series.accuracy[i - 1], threshold)) i--;
  if (i === series.step.length) return null;
  return { step: series.step[i], epoch: series.epoch[i] };
}

/** Generalisation of one test type at one threshold, relative to memorisation. */
export interface Generalisation {
  /** Curve type (`id_inferred` or `ood_inferred`). */
  type: string;
  /** Short name used in column names (`id`, `ood`). */
  short: string;
  /** Accuracy threshold θ. */
  threshold: number;
  /** First step from which accuracy stays ≥ θ (see `stableReach`); `null` = not generalised. */
  at: Crossing | null;
  /** `at.step − memorisation step` (steps); `null` when either is `null`. */
  delay: number | null;
  /** `at.step / memorisation step`; `null` when either is `null` or memorisation was at step 0. */
  ratio: number | null;
  /**
   * First step at which accuracy reached θ, whatever follows (see `firstReach`; a later dip does
   * not move it); `null` = never reached. Never later than `at`.
   */
  first: Crossing | null;
  /** `first.step − memorisation step` (steps); `null` when either is `null`. */
  firstDelay: number | null;
  /** `first.step / memorisation step`; `null` when either is `null` or memorisation was at step 0. */
  firstRatio: number | null;
}

/** The grokking metrics of one run. */
export interface RunMetrics {
  /** Memorisation threshold used on `train_inferred` accuracy. */
  memoriseThreshold: number;
  /** First step (and epoch) at which `train_inferred` accuracy reached it; `null` = never. */
  memorise: Crossing | null;
  /** One entry per generalisation type (ID, then OOD) and threshold (in the order given). */
  generalise: Generalisation[];
  /** Accuracy at the last evaluation of each of `ACCURACY_TYPES` (`null` = type absent or NaN). */
  final: Record<string, number | null>;
  /** Highest `train_inferred` accuracy seen on the curve (`null` when there is none). */
  maxTrainAccuracy: number | null;
  /** Last evaluation step and epoch of the curve, over all types (`null` for an empty curve). */
  last: Crossing | null;
}

/** Options of `computeRunMetrics`. */
export interface MetricOptions {
  /** Threshold on `train_inferred` accuracy for memorisation (default 0.99). */
  memoriseThreshold?: number;
  /** Thresholds on ID/OOD accuracy for generalisation (default [0.9, 0.95, 0.99]). */
  generaliseThresholds?: readonly number[];
}

/** Delay (steps) and ratio of a crossing to memorisation (module header); `null` where undefined. */
function relativeTo(at: Crossing | null, memorise: Crossing | null): [number | null, number | null] {
  if (!at || !memorise) return [null, null];
  return [at.step - memorise.step, memorise.step > 0 ? at.step / memorise.step : null];
}

/**
 * Computes a run's grokking metrics from its curve (definitions in this module's header).
 * An empty curve gives `null` everywhere.
 */
export function computeRunMetrics(curve: Curve, options: MetricOptions = {}): RunMetrics {
  const memoriseThreshold = options.memoriseThreshold ?? DEFAULT_MEMORISE_THRESHOLD;
  const thresholds = options.generaliseThresholds ?? DEFAULT_GENERALISE_THRESHOLDS;
  const memorise = firstReach(curve[TRAIN_TYPE], memoriseThreshold);
  const generalise: Generalisation[] = [];
  for (const { type, short } of GENERALISATION_TYPES) {
    for (const threshold of thresholds) {
      const at = stableReach(curve[type], threshold);
      const first = firstReach(curve[type], threshold);
      const [delay, ratio] = relativeTo(at, memorise);
      const [firstDelay, firstRatio] = relativeTo(first, memorise);
      generalise.push({ type, short, threshold, at, delay, ratio, first, firstDelay, firstRatio });
    }
  }
  const final: Record<string, number | null> = {};
  for (const type of ACCURACY_TYPES) {
    const s = curve[type];
    const a = s && s.accuracy.length > 0 ? s.accuracy[s.accuracy.length - 1] : Number.NaN;
    final[type] = Number.isNaN(a) ? null : a;
  }
  const train = curve[TRAIN_TYPE];
  let maxTrainAccuracy: number | null = null;
  for (const a of train?.accuracy ?? []) {
    if (!Number.isNaN(a) && (maxTrainAccuracy === null || a > maxTrainAccuracy)) maxTrainAccuracy = a;
  }
  let last: Crossing | null = null;
  for (const s of Object.values(curve)) {
    const n = s.step.length;
    if (n > 0 && (last === null || s.step[n - 1] > last.step)) last = { step: s.step[n - 1], epoch: s.epoch[n - 1] };
  }
  return { memoriseThreshold, memorise, generalise, final, maxTrainAccuracy, last };
}

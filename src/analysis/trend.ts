/**
 * The trend of a study: how steps-to-generalise move with a knob, over every run of the sweep
 * (pure functions, no I/O). This is `analyze`'s `trend.parquet` and the trend statement `run` prints.
 *
 * - **Statistic**: Spearman's rank correlation ρ (Spearman 1904) between the knob's value and the
 *   step from which OOD (and ID) accuracy stays ≥ θ, over all runs (every seed of every value):
 *   the Pearson correlation of their mid-ranks (tied values share the mean of the ranks they span,
 *   as scipy.stats.spearmanr). A run that never generalised is *censored*: it is ranked after
 *   every run that did (its step is taken as +∞), tied with the other censored runs, so that
 *   "never" counts as "slower than any", not as missing. The same statistic is computed on the
 *   *first crossing* of θ (`firstReach` in `./metrics.ts`), which a dip below θ after the onset
 *   cannot move, where the "stays" step is decided by the last dip (docs/findings.md, "Train code
 *   version 3": float rounding alone flipped three studies' verdicts on the "stays" step).
 * - **Confidence interval**: percentile bootstrap over runs (Efron & Tibshirani 1993, *An
 *   Introduction to the Bootstrap*, ch. 13): `BOOTSTRAP_RESAMPLES` resamples of the runs with
 *   replacement, ρ of each (resamples in which the knob or the steps are constant have no ρ and
 *   are left out), the `BOOTSTRAP_LEVEL` interval between the matching quantiles. Seeded
 *   (`BOOTSTRAP_SEED`, xoroshiro128+ from `pure-rand`), so the same runs give the same interval.
 *
 * Written here rather than taken from simple-statistics: its `sampleRankCorrelation` ranks tied
 * values by sort position, and a study's knob is all ties (three seeds per value).
 */
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Column, Table } from '../table/table.js';
import { isSeedKnob } from './aggregate.js';
import { GENERALISATION_TYPES } from './metrics.js';
import type { AnalyzedRun } from './tables.js';
import { sweepKnobs, thresholdText } from './tables.js';

/** Bootstrap resamples per trend. */
export const BOOTSTRAP_RESAMPLES = 2000;
/** Coverage of the bootstrap interval. */
export const BOOTSTRAP_LEVEL = 0.95;
/** Seed of the bootstrap's random stream. */
export const BOOTSTRAP_SEED = 0;

/**
 * Mid-ranks of `values`, 1-based: the smallest value has rank 1, tied values share the mean of the
 * ranks they span; `+Infinity` ranks after every finite value (ties among themselves).
 * @throws Error on NaN (a missing value must be made +Infinity, or left out, by the caller).
 */
export function midRanks(values: readonly number[]): number[] {
  if (values.some((v) => Number.isNaN(v))) throw new Error('midRanks: NaN value');
  const order = values.map((_, i) => i).sort((a, b) => (values[a] < values[b] ? -1 : values[a] > values[b] ? 1 : 0));
  const ranks = new Array<number>(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

/** Pearson correlation of two equally long lists; NaN when either is constant or shorter than 2. */
function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n < 2) return Number.NaN;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? Number.NaN : sxy / Math.sqrt(sxx * syy);
}

/**
 * Spearman's ρ of `x` and `y` (Pearson correlation of their mid-ranks, `midRanks`); NaN when
 * either is constant. `+Infinity` in `y` is a censored value (ranked last).
 */
export function spearman(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new Error(`spearman: ${x.length} x values, ${y.length} y values`);
  return pearson(midRanks(x), midRanks(y));
}

/** ρ with its percentile-bootstrap interval. */
export interface RankTrend {
  /** Spearman's ρ over all the pairs (NaN when undefined). */
  rho: number;
  /** Lower and upper end of the `BOOTSTRAP_LEVEL` interval (NaN when no resample has a ρ). */
  low: number;
  high: number;
  /** Resamples that had a ρ (out of `BOOTSTRAP_RESAMPLES`). */
  resamples: number;
}

/** The `q` quantile of sorted values, linearly interpolated (type 7 of Hyndman & Fan 1996). */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  return sorted[lo] + (h - lo) * ((sorted[Math.min(lo + 1, sorted.length - 1)] ?? sorted[lo]) - sorted[lo]);
}

/** Spearman's ρ of `x` and `y` and its seeded percentile-bootstrap interval (module comment). */
export function rankTrend(x: readonly number[], y: readonly number[], seed = BOOTSTRAP_SEED): RankTrend {
  const rho = spearman(x, y);
  const n = x.length;
  const rng = xoroshiro128plus(seed);
  const draws: number[] = [];
  for (let b = 0; b < BOOTSTRAP_RESAMPLES && n > 1; b++) {
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = 0; i < n; i++) {
      const k = uniformInt(rng, 0, n - 1);
      xs.push(x[k]);
      ys.push(y[k]);
    }
    const r = spearman(xs, ys);
    if (!Number.isNaN(r)) draws.push(r);
  }
  draws.sort((a, b) => a - b);
  const tail = (1 - BOOTSTRAP_LEVEL) / 2;
  return { rho, low: quantile(draws, tail), high: quantile(draws, 1 - tail), resamples: draws.length };
}

/** The trend of one split's steps-to-generalise against one knob, over every run of a study. */
export interface StudyTrend {
  /** The knob (a numeric matrix variable that varies and is not a seed). */
  knob: string;
  /** `metrics.parquet` column of the steps (`ood_step_0.9`, `id_step_0.9`). */
  metric: string;
  /** `ID` or `OOD`. */
  split: string;
  /** θ. */
  threshold: number;
  /** Runs with a value of the knob, and how many of them reached θ. */
  runs: number;
  reached: number;
  /** ρ and its bootstrap interval (`rankTrend`). */
  trend: RankTrend;
  /** One line: ρ, the interval, the counts and what it says (`trendStatement`). */
  statement: string;
  /** The same trend on the first crossing of θ instead of the step θ was held from. */
  first: FirstCrossingTrend;
}

/** The trend of the first-crossing steps (`firstReach`), beside a `StudyTrend`. */
export interface FirstCrossingTrend {
  /** `metrics.parquet` column of the steps (`ood_first_0.9`, `id_first_0.9`). */
  metric: string;
  /** Runs (of the `StudyTrend`'s) that reached θ at some evaluation. */
  reached: number;
  /** ρ and its bootstrap interval (`rankTrend`, same seed). */
  trend: RankTrend;
  /** One line, e.g. `OOD first ≥0.9 vs values: Spearman ρ = …` (`trendStatement`). */
  statement: string;
  /** Whether some run's first crossing differs from its held step (else the trends coincide). */
  differs: boolean;
}

const signed = (x: number): string => (Number.isNaN(x) ? 'n/a' : `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}`);

/**
 * The sentence of a trend, e.g. `OOD ≥0.9 vs values: Spearman ρ = +0.86, 95% CI [+0.62, +0.97]
 * (9 runs, 7 reached; never = slowest): later as values grows`; with `first`, of the trend of the
 * first crossing (`OOD first ≥0.9 vs values: ...`).
 */
export function trendStatement(t: Omit<StudyTrend, 'statement' | 'first'>, first = false): string {
  const { rho, low, high } = t.trend;
  const head = `${t.split}${first ? ' first' : ''} ≥${t.threshold} vs ${t.knob}: Spearman ρ = ${signed(rho)}`;
  const counts = `${t.runs} runs, ${t.reached} reached${t.reached < t.runs ? '; never = slowest' : ''}`;
  if (Number.isNaN(rho)) {
    const why = t.reached === 0 ? 'no run reached θ' : 'the steps do not vary';
    return `${head} (${counts}): no trend measurable, ${why}`;
  }
  const ci = `${Math.round(BOOTSTRAP_LEVEL * 100)}% CI [${signed(low)}, ${signed(high)}]`;
  const says =
    low > 0
      ? `later as ${t.knob} grows`
      : high < 0
        ? `sooner as ${t.knob} grows`
        : 'no clear trend (the interval includes 0)';
  return `${head}, ${ci} (${counts}): ${says}`;
}

/**
 * The trends of a study (module comment): for each numeric knob that varies and is not a seed
 * (`sweepKnobs`, `isSeedKnob`), OOD then ID steps-to-generalise at the lowest threshold, over every
 * run that has a value of the knob, each with the same trend on the first crossing of θ (`first`).
 * Empty when no such knob varies (e.g. a sweep over `arch`).
 */
export function studyTrends(runs: readonly AnalyzedRun[], thresholds: readonly number[]): StudyTrend[] {
  const threshold = Math.min(...thresholds);
  const out: StudyTrend[] = [];
  for (const knob of sweepKnobs(runs, thresholds)) {
    if (!knob.numeric || knob.distinct < 2 || isSeedKnob(knob.name)) continue;
    for (const { type, short, label } of [...GENERALISATION_TYPES].reverse()) {
      const x: number[] = [];
      const y: number[] = [];
      const yFirst: number[] = [];
      for (const r of runs) {
        const v = r.matrix[knob.name];
        if (typeof v !== 'number') continue;
        const g = r.metrics.generalise.find((e) => e.type === type && e.threshold === threshold);
        x.push(v);
        y.push(g?.at ? g.at.step : Number.POSITIVE_INFINITY);
        yFirst.push(g?.first ? g.first.step : Number.POSITIVE_INFINITY);
      }
      const reached = y.filter(Number.isFinite).length;
      const x0 = thresholdText(threshold);
      const base = { knob: knob.name, split: label, threshold, runs: x.length };
      const t = { ...base, metric: `${short}_step_${x0}`, reached, trend: rankTrend(x, y) };
      const f = { ...base, metric: `${short}_first_${x0}`, reached: yFirst.filter(Number.isFinite).length };
      const ft = { ...f, trend: rankTrend(x, yFirst) };
      const differs = y.some((s, i) => s !== yFirst[i]);
      const first = {
        metric: f.metric,
        reached: f.reached,
        trend: ft.trend,
        statement: trendStatement(ft, true),
        differs,
      };
      out.push({ ...t, statement: trendStatement(t), first });
    }
  }
  return out;
}

/**
 * The summary's trend statements: each trend's, followed by its first-crossing trend's when some
 * run's first crossing differs from its held step (else the two say the same).
 */
export function trendLines(trends: readonly StudyTrend[]): string[] {
  return trends.flatMap((t) => (t.first.differs ? [t.statement, t.first.statement] : [t.statement]));
}

/**
 * `trend.parquet`, one row per trend: `knob STRING, metric STRING, threshold DOUBLE, runs INT32,
 * reached INT32, rho DOUBLE, ci_low DOUBLE, ci_high DOUBLE` (NULL when undefined), `level DOUBLE`,
 * `resamples INT32` (resamples that had a ρ), `seed INT32`, `statement STRING`; then the same
 * trend on the first crossing of θ (analyze version 8 on): `first_metric STRING` (`ood_first_0.9`),
 * `first_reached INT32`, `first_rho DOUBLE`, `first_ci_low DOUBLE`, `first_ci_high DOUBLE`,
 * `first_resamples INT32`, `first_statement STRING` (same runs, level and seed).
 */
export function trendTable(trends: readonly StudyTrend[]): Table {
  const num = (name: string, f: (t: StudyTrend) => number): Column => {
    const values = trends.map(f);
    return {
      name,
      type: 'DOUBLE',
      data: Float64Array.from(values, (v) => (Number.isNaN(v) ? 0 : v)),
      nulls: values.map(Number.isNaN),
    };
  };
  return {
    columns: [
      { name: 'knob', type: 'STRING', data: trends.map((t) => t.knob) },
      { name: 'metric', type: 'STRING', data: trends.map((t) => t.metric) },
      { name: 'threshold', type: 'DOUBLE', data: Float64Array.from(trends, (t) => t.threshold) },
      { name: 'runs', type: 'INT32', data: Int32Array.from(trends, (t) => t.runs) },
      { name: 'reached', type: 'INT32', data: Int32Array.from(trends, (t) => t.reached) },
      num('rho', (t) => t.trend.rho),
      num('ci_low', (t) => t.trend.low),
      num('ci_high', (t) => t.trend.high),
      { name: 'level', type: 'DOUBLE', data: Float64Array.from(trends, () => BOOTSTRAP_LEVEL) },
      { name: 'resamples', type: 'INT32', data: Int32Array.from(trends, (t) => t.trend.resamples) },
      { name: 'seed', type: 'INT32', data: Int32Array.from(trends, () => BOOTSTRAP_SEED) },
      { name: 'statement', type: 'STRING', data: trends.map((t) => t.statement) },
      { name: 'first_metric', type: 'STRING', data: trends.map((t) => t.first.metric) },
      { name: 'first_reached', type: 'INT32', data: Int32Array.from(trends, (t) => t.first.reached) },
      num('first_rho', (t) => t.first.trend.rho),
      num('first_ci_low', (t) => t.first.trend.low),
      num('first_ci_high', (t) => t.first.trend.high),
      { name: 'first_resamples', type: 'INT32', data: Int32Array.from(trends, (t) => t.first.trend.resamples) },
      { name: 'first_statement', type: 'STRING', data: trends.map((t) => t.first.statement) },
    ],
  };
}

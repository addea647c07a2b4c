import { describe, expect, it } from 'vitest';
import type { CurvePoint } from '../src/analysis/metrics.js';
import { buildCurve, computeRunMetrics } from '../src/analysis/metrics.js';
import type { AnalyzedRun } from '../src/analysis/tables.js';
import { metricColumnNames, metricsRecord, metricsTable, summaryLines } from '../src/analysis/tables.js';
import { groupLines, sweepTable } from '../src/analysis/aggregate.js';
import { studyTrends, trendLines, trendTable } from '../src/analysis/trend.js';
import { toRows } from '../src/table/table.js';

const STEPS = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];
const thresholds = [0.9];

/**
 * OOD accuracy 0.1 before `first`, 0.95 from it on, except 0.85 at the steps in `dips` (below 0.9);
 * `first` = null: 0.5 throughout (never reaches 0.9).
 */
const hovering = (first: number | null, dips: number[] = []) =>
  STEPS.map((s) => (first === null ? 0.5 : s < first ? 0.1 : dips.includes(s) ? 0.85 : 0.95));

/** A run memorising at step 100, ID ≥ 0.9 from step 300 on, OOD as given. */
function run(matrix: Record<string, number>, ood: number[]): AnalyzedRun {
  const series: Record<string, number[]> = {
    train_inferred: STEPS.map((s) => (s >= 100 ? 1 : 0.1)),
    id_inferred: STEPS.map((s) => (s >= 300 ? 1 : 0.1)),
    ood_inferred: ood,
  };
  const points: CurvePoint[] = [];
  for (const [type, acc] of Object.entries(series))
    acc.forEach((a, i) => points.push({ type, step: STEPS[i], epoch: STEPS[i] / 10, accuracy: a, loss: 1 - a }));
  const curve = buildCurve(points);
  const name = Object.entries(matrix)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return {
    name,
    matrix,
    curve,
    metrics: computeRunMetrics(curve, { generaliseThresholds: thresholds }),
    evaluated: {},
  };
}

const ood = (r: AnalyzedRun) => r.metrics.generalise.find((g) => g.type === 'ood_inferred')!;

describe('first crossing of θ', () => {
  it('a dip after the first crossing moves the held step, not the first crossing', () => {
    const g = ood(run({}, hovering(200, [500, 800])));
    expect(g.at).toEqual({ step: 900, epoch: 90 });
    expect(g.first).toEqual({ step: 200, epoch: 20 });
    expect([g.delay, g.ratio, g.firstDelay, g.firstRatio]).toEqual([800, 9, 100, 2]);
  });

  it('never reaching θ: null first crossing, delay and ratio', () => {
    const g = ood(run({}, hovering(null)));
    expect([g.at, g.first, g.firstDelay, g.firstRatio]).toEqual([null, null, null, null]);
  });

  it('reaching θ only at the last evaluation: first crossing = held step = the last step', () => {
    const g = ood(run({}, hovering(1000)));
    expect(g.first).toEqual({ step: 1000, epoch: 100 });
    expect(g.at).toEqual(g.first);
  });

  it('reached, then below θ at the end: first crossing kept, held step null', () => {
    const g = ood(run({}, hovering(300, [1000])));
    expect(g.at).toBeNull();
    expect(g.first?.step).toBe(300);
    expect(g.firstRatio).toBe(3);
  });

  it('metrics.parquet: first-crossing columns appended after the existing ones', () => {
    const runs = [run({ v: 1 }, hovering(200, [500])), run({ v: 2 }, hovering(null))];
    const names = metricColumnNames(thresholds);
    expect(names.slice(-8)).toEqual([
      'id_first_0.9',
      'id_first_epoch_0.9',
      'id_first_delay_0.9',
      'id_first_ratio_0.9',
      'ood_first_0.9',
      'ood_first_epoch_0.9',
      'ood_first_delay_0.9',
      'ood_first_ratio_0.9',
    ]);
    expect(names.slice(0, 4)).toEqual(['memorise_step', 'memorise_epoch', 'id_step_0.9', 'id_epoch_0.9']);
    expect(names[names.indexOf('last_epoch') + 1]).toBe('id_first_0.9');
    const table = metricsTable(runs, thresholds);
    expect(table.columns.find((c) => c.name === 'ood_first_0.9')?.type).toBe('INT32');
    const rows = toRows(table);
    expect(rows[0]).toMatchObject({ 'ood_step_0.9': 600, 'ood_first_0.9': 200, 'ood_first_epoch_0.9': 20 });
    expect(rows[0]).toMatchObject({ 'ood_first_delay_0.9': 100, 'ood_first_ratio_0.9': 2, 'id_first_0.9': 300 });
    expect(rows[1]).toMatchObject({ 'ood_first_0.9': null, 'ood_first_ratio_0.9': null });
    const record = metricsRecord(runs, thresholds) as Record<string, Record<string, unknown>>;
    expect(record['v=1']['ood_first_0.9']).toBe(200);
    expect(record['v=2']['ood_first_0.9']).toBeNull();
  });

  it('summary lines name the first crossing where it differs, and only there', () => {
    const runs = [
      run({ v: 1 }, hovering(200, [500])),
      run({ v: 2 }, hovering(300, [1000])),
      run({ v: 3 }, hovering(700)),
      run({ v: 4 }, hovering(null)),
    ];
    const lines = summaryLines(runs, thresholds);
    expect(lines[0]).toBe(
      'v=1: memorised at step 100 (epoch 10.0); ID ≥0.9 at step 300 (3.0× memorisation); OOD ≥0.9 at step 600 (6.0× memorisation), first reached at step 200',
    );
    expect(lines[2]).toBe(
      'v=2: memorised at step 100 (epoch 10.0); ID ≥0.9 at step 300 (3.0× memorisation); OOD not ≥0.9 to the end, first reached at step 300 (run ended at step 1000)',
    );
    expect(lines[4]).toMatch(/OOD ≥0\.9 at step 700 \(7\.0× memorisation\)$/);
    expect(lines[6]).toMatch(/OOD not ≥0\.9 to the end \(run ended at step 1000\)$/);
  });

  // values 1, 2, 3 with two seeds each: the first crossing comes later as values grows, while the
  // dips make the held step come sooner.
  const study = [
    run({ values: 1, seed: 0 }, hovering(200, [900])),
    run({ values: 1, seed: 1 }, hovering(300, [800])),
    run({ values: 2, seed: 0 }, hovering(400, [700])),
    run({ values: 2, seed: 1 }, hovering(500, [600])),
    run({ values: 3, seed: 0 }, hovering(600)),
    run({ values: 3, seed: 1 }, hovering(700)),
  ];

  it('over seeds: the first crossings count and spread', () => {
    const lines = groupLines(study, thresholds);
    expect(lines[0]).toBe(
      'values=1 (2 runs): memorised 2/2, step 100 ± 0; OOD ≥0.9 2/2, step 950 ± 71 (9.5 ± 0.7× memorisation), first reached 2/2: step 250 ± 71; ID ≥0.9 2/2, step 300 ± 0',
    );
    expect(lines[2]).toBe(
      'values=3 (2 runs): memorised 2/2, step 100 ± 0; OOD ≥0.9 2/2, step 650 ± 71 (6.5 ± 0.7× memorisation); ID ≥0.9 2/2, step 300 ± 0',
    );
    const rows = toRows(sweepTable(study, thresholds));
    expect(rows.find((r) => r.values === 1 && r.metric === 'ood_first_0.9')).toMatchObject({ reached: 2, mean: 250 });
  });

  it('the trend of the first crossing, beside the held step', () => {
    const [o, id] = studyTrends(study, thresholds);
    expect(o.metric).toBe('ood_step_0.9');
    expect(o.trend.rho).toBeLessThan(0);
    expect(o.first.metric).toBe('ood_first_0.9');
    expect(o.first.differs).toBe(true);
    expect(o.first.reached).toBe(6);
    // ranks of values (1.5, 1.5, 3.5, 3.5, 5.5, 5.5) against 1..6: ρ = 16 / sqrt(16 × 17.5)
    expect(o.first.trend.rho).toBeCloseTo(16 / Math.sqrt(16 * 17.5), 12);
    expect(o.first.statement).toMatch(
      /^OOD first ≥0\.9 vs values: Spearman ρ = \+0\.96, 95% CI \[\+\d\.\d\d, \+\d\.\d\d\] \(6 runs, 6 reached\): later as values grows$/,
    );
    expect(id.first.differs).toBe(false);
    expect(id.first.trend.rho).toBeNaN();
    const rows = toRows(trendTable([o, id]));
    expect(rows.map((r) => [r.metric, r.first_metric, r.first_reached])).toEqual([
      ['ood_step_0.9', 'ood_first_0.9', 6],
      ['id_step_0.9', 'id_first_0.9', 6],
    ]);
    expect(rows[0].first_rho).toBeCloseTo(o.first.trend.rho, 12);
    expect(rows[1].first_rho).toBeNull();
    expect(rows[0].first_statement).toBe(o.first.statement);
    // the summary: the first-crossing statement follows the held step's where they differ
    expect(trendLines([o, id])).toEqual([o.statement, o.first.statement, id.statement]);
  });
});

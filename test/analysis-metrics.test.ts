import { describe, expect, it } from 'vitest';
import type { Curve, CurvePoint } from '../src/analysis/metrics.js';
import { buildCurve, computeRunMetrics, curveFromTable, firstReach, stableReach } from '../src/analysis/metrics.js';
import type { AnalyzedRun } from '../src/analysis/tables.js';
import { curvesTable, metricsRecord, metricsTable, runName, summaryLines, sweepKnobs } from '../src/analysis/tables.js';
import type { Table } from '../src/table/table.js';
import { toRows } from '../src/table/table.js';

const STEPS = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];
/** 30 steps an epoch, so epoch = step / 30. */
const epochOf = (step: number) => step / 30;

/** A curve from accuracy arrays per type, all on `steps`. */
function curveOf(series: Record<string, number[]>, steps = STEPS): Curve {
  const points: CurvePoint[] = [];
  for (const [type, acc] of Object.entries(series)) {
    acc.forEach((a, i) => points.push({ type, step: steps[i], epoch: epochOf(steps[i]), accuracy: a, loss: 1 - a }));
  }
  return buildCurve(points);
}

// Clean grokking: train memorises at 300, ID stays >= 0.9 from 500, OOD from 800.
const clean = {
  train_inferred: [0.1, 0.5, 0.9, 0.995, 1, 1, 1, 1, 1, 1, 1],
  id_inferred: [0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 0.93, 0.96, 0.97, 0.99, 1],
  ood_inferred: [0.1, 0.1, 0.2, 0.2, 0.3, 0.5, 0.7, 0.85, 0.92, 0.96, 0.991],
  id_atomic: [0.1, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1],
};

const gen = (m: ReturnType<typeof computeRunMetrics>, type: string, t: number) =>
  m.generalise.find((g) => g.type === type && g.threshold === t)!;

describe('grokking metrics', () => {
  it('clean grokking: memorisation, stable crossings, delay and ratio', () => {
    const m = computeRunMetrics(curveOf(clean));
    expect(m.memorise).toEqual({ step: 300, epoch: 10 });
    expect(gen(m, 'id_inferred', 0.9).at).toEqual({ step: 500, epoch: 500 / 30 });
    expect(gen(m, 'id_inferred', 0.95).at?.step).toBe(700);
    expect(gen(m, 'id_inferred', 0.99).at?.step).toBe(900);
    const ood = gen(m, 'ood_inferred', 0.9);
    expect(ood.at?.step).toBe(800);
    expect(ood.delay).toBe(500);
    expect(ood.ratio).toBeCloseTo(800 / 300, 12);
    expect(gen(m, 'ood_inferred', 0.99).at?.step).toBe(1000);
    expect(m.final).toEqual({ train_inferred: 1, id_inferred: 1, ood_inferred: 0.991, id_atomic: 1, ood_atomic: null });
    expect(m.last).toEqual({ step: 1000, epoch: 1000 / 30 });
    expect(m.maxTrainAccuracy).toBe(1);
  });

  it('never reached: null step, delay and ratio', () => {
    const m = computeRunMetrics(
      curveOf({ ...clean, ood_inferred: STEPS.map(() => 0.5), train_inferred: STEPS.map(() => 0.98) }),
    );
    expect(m.memorise).toBeNull();
    expect(m.maxTrainAccuracy).toBe(0.98);
    const ood = gen(m, 'ood_inferred', 0.9);
    expect(ood).toMatchObject({ at: null, delay: null, ratio: null });
    // ID generalises but memorisation never happened: step known, delay/ratio undefined.
    expect(gen(m, 'id_inferred', 0.9)).toMatchObject({ at: { step: 500 }, delay: null, ratio: null });
  });

  it('reached then lost: the later re-crossing counts; lost at the end gives null', () => {
    const regained = [0.1, 0.5, 0.92, 0.95, 0.85, 0.91, 0.93, 0.95, 0.97, 0.97, 0.98];
    const lost = [0.1, 0.5, 0.92, 0.95, 0.96, 0.97, 0.97, 0.97, 0.97, 0.97, 0.8];
    const m = computeRunMetrics(curveOf({ ...clean, id_inferred: regained, ood_inferred: lost }));
    expect(gen(m, 'id_inferred', 0.9).at?.step).toBe(500);
    expect(gen(m, 'ood_inferred', 0.9).at).toBeNull();
    // first reach (memorisation) is not moved by a later dip
    const train = [0.1, 0.995, 0.9, 0.9, 1, 1, 1, 1, 1, 1, 1];
    expect(computeRunMetrics(curveOf({ train_inferred: train })).memorise?.step).toBe(100);
  });

  it('noisy crossings: the step after the last evaluation below the threshold', () => {
    const noisy = [0.5, 0.89, 0.91, 0.88, 0.905, 0.899, 0.92, 0.9, 0.93, 0.91, 0.95];
    const series = curveOf({ ood_inferred: noisy }).ood_inferred;
    expect(stableReach(series, 0.9)?.step).toBe(600);
    expect(firstReach(series, 0.9)?.step).toBe(200);
    expect(stableReach(series, 0.95)?.step).toBe(1000);
    expect(stableReach(series, 0.96)).toBeNull();
  });

  it('float tolerance: 2970/3000 reaches 0.99; NaN never reaches', () => {
    const series = curveOf({ id_inferred: [2970 / 3000, 0.1 + 0.2 + 0.69] }, [0, 10]).id_inferred;
    expect(stableReach(series, 0.99)?.step).toBe(0);
    const nan = curveOf({ id_inferred: [1, Number.NaN, 1] }, [0, 10, 20]).id_inferred;
    expect(stableReach(nan, 0.9)?.step).toBe(20);
  });

  it('single point and empty curves', () => {
    const one = computeRunMetrics(curveOf({ train_inferred: [1], id_inferred: [0.95], ood_inferred: [0.2] }, [0]));
    expect(one.memorise).toEqual({ step: 0, epoch: 0 });
    expect(gen(one, 'id_inferred', 0.9)).toMatchObject({ at: { step: 0 }, delay: 0, ratio: null });
    expect(gen(one, 'id_inferred', 0.99).at).toBeNull();
    expect(gen(one, 'ood_inferred', 0.9).at).toBeNull();

    const empty = computeRunMetrics({});
    expect(empty.memorise).toBeNull();
    expect(empty.last).toBeNull();
    expect(empty.maxTrainAccuracy).toBeNull();
    expect(empty.generalise).toHaveLength(6);
    expect(empty.generalise.every((g) => g.at === null && g.delay === null && g.ratio === null)).toBe(true);
    expect(Object.values(empty.final).every((v) => v === null)).toBe(true);
    expect(firstReach(undefined, 0.5)).toBeNull();
    expect(stableReach({ step: [], epoch: [], accuracy: [], loss: [] }, 0.5)).toBeNull();
  });

  it('buildCurve sorts by step and keeps the last row of a repeated step', () => {
    const c = buildCurve([
      { type: 'id_inferred', step: 200, epoch: 2, accuracy: 0.3 },
      { type: 'id_inferred', step: 0, epoch: 0, accuracy: 0.1 },
      { type: 'id_inferred', step: 200, epoch: 2, accuracy: 0.95 },
      { type: 'id_inferred', step: 100, epoch: 1, accuracy: 0.2 },
    ]);
    expect(c.id_inferred.step).toEqual([0, 100, 200]);
    expect(c.id_inferred.accuracy).toEqual([0.1, 0.2, 0.95]);
    expect(c.id_inferred.loss.every(Number.isNaN)).toBe(true);
  });

  it('curveFromTable reads the curve.parquet columns', () => {
    const t: Table = {
      columns: [
        { name: 'step', type: 'INT32', data: Int32Array.from([100, 0, 100]) },
        { name: 'epoch', type: 'DOUBLE', data: Float64Array.from([1, 0, 1]) },
        { name: 'type', type: 'STRING', data: ['train_inferred', 'train_inferred', 'train_batch'] },
        { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from([1, 0.1, 0.9]) },
        { name: 'loss', type: 'DOUBLE', data: Float64Array.from([0.01, 3, 0.2]) },
      ],
    };
    const c = curveFromTable(t);
    expect(c.train_inferred).toEqual({ step: [0, 100], epoch: [0, 1], accuracy: [0.1, 1], loss: [3, 0.01] });
    expect(c.train_batch.loss).toEqual([0.2]);
  });
});

describe('metric tables and summary', () => {
  const run = (
    name: string,
    matrix: Record<string, number | string>,
    series: Record<string, number[]>,
    evaluated = {},
  ): AnalyzedRun => {
    const curve = curveOf(series);
    return { name, matrix, curve, metrics: computeRunMetrics(curve), evaluated };
  };
  const runs = [
    run('entities=100,seed=0', { entities: 100, seed: 0 }, clean, { ood_inferred: 0.97, id_atomic: 1 }),
    run(
      'entities=200,seed=0',
      { entities: 200, seed: 0 },
      { ...clean, ood_inferred: STEPS.map(() => 0.4), train_inferred: STEPS.map(() => 0.5) },
    ),
  ];
  const thresholds = [0.9, 0.95, 0.99];

  it('metricsTable: one row per run, sentinels for never', () => {
    const t = metricsTable(runs, thresholds);
    const types = Object.fromEntries(t.columns.map((c) => [c.name, c.type]));
    expect(types).toMatchObject({
      run: 'STRING',
      entities: 'DOUBLE',
      seed: 'DOUBLE',
      memorise_step: 'INT32',
      memorise_epoch: 'DOUBLE',
      'id_step_0.9': 'INT32',
      'ood_ratio_0.99': 'DOUBLE',
      final_ood_inferred: 'DOUBLE',
      last_step: 'INT32',
    });
    const [a, b] = toRows(t);
    expect(a).toMatchObject({
      run: 'entities=100,seed=0',
      entities: 100,
      memorise_step: 300,
      memorise_epoch: 10,
      'id_step_0.9': 500,
      'ood_step_0.9': 800,
      'ood_delay_0.9': 500,
      final_ood_inferred: 0.97,
      final_id_inferred: 1,
      last_step: 1000,
    });
    expect(a['ood_ratio_0.9']).toBeCloseTo(8 / 3, 12);
    // Not reached / undefined is NULL (issue 15: was -1 and NaN, which SQL aggregates averaged in).
    expect(a.final_ood_atomic).toBeNull();
    expect(b).toMatchObject({ memorise_step: null, 'ood_step_0.9': null, 'id_step_0.9': 500 });
    expect(b.memorise_epoch).toBeNull();
    expect(b['id_delay_0.9']).toBeNull();
  });

  it('knob columns: STRING when not all numeric, renamed on a clash', () => {
    const mixed = [run('a', { arch: 'gpt2', run: 1 }, clean), run('b', { arch: 'llama', run: 2 }, clean)];
    const knobs = sweepKnobs(mixed, thresholds);
    expect(knobs).toEqual([
      { name: 'arch', column: 'arch', numeric: false, distinct: 2 },
      { name: 'run', column: 'matrix_run', numeric: true, distinct: 2 },
    ]);
    const t = metricsTable(mixed, thresholds);
    expect(t.columns.slice(0, 3).map((c) => `${c.name}:${c.type}`)).toEqual([
      'run:STRING',
      'arch:STRING',
      'matrix_run:DOUBLE',
    ]);
    expect(runName({ model: { arch: 'gpt2' }, seed: 1 }, 'x')).toBe('model={"arch":"gpt2"},seed=1');
    expect(runName({}, 'scores')).toBe('scores');
  });

  it('curvesTable stacks runs; summary and record read well', () => {
    const c = curvesTable(runs);
    expect(c.columns.map((x) => x.name)).toEqual([
      'run',
      'entities',
      'seed',
      'step',
      'epoch',
      'type',
      'accuracy',
      'loss',
    ]);
    expect(c.columns[0].data.length).toBe(2 * 4 * STEPS.length);
    const lines = summaryLines(runs, thresholds);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(
      'entities=100,seed=0: memorised at step 300 (epoch 10.0); ID ≥0.9 at step 500 (1.7× memorisation); OOD ≥0.9 at step 800 (2.7× memorisation)',
    );
    expect(lines[1]).toContain('ood_inferred 0.970');
    expect(lines[2]).toBe(
      'entities=200,seed=0: not memorised (train accuracy peaked at 0.500 < 0.99); ID ≥0.9 at step 500; OOD not ≥0.9 to the end (run ended at step 1000)',
    );
    const rec = metricsRecord(runs, thresholds) as Record<string, Record<string, unknown>>;
    expect(rec['entities=100,seed=0']).toMatchObject({
      matrix: { entities: 100, seed: 0 },
      memorise_step: 300,
      'ood_step_0.9': 800,
      final_ood_atomic: null,
    });
    expect(rec['entities=200,seed=0']).toMatchObject({
      memorise_step: null,
      memorise_epoch: null,
      'ood_step_0.9': null,
    });
    expect(JSON.parse(JSON.stringify(rec))).toEqual(rec);
  });
});

import { describe, expect, it } from 'vitest';
import type { Curve, CurvePoint } from '../src/analysis/metrics.js';
import { buildCurve, computeRunMetrics } from '../src/analysis/metrics.js';
import type { AnalyzedRun } from '../src/analysis/tables.js';
import { sweepKnobs } from '../src/analysis/tables.js';
import { groupReplicates, hasReplicates, isSeedKnob, spreadOf, sweepTable } from '../src/analysis/aggregate.js';
import { metricsSpec } from '../src/plot/sweep.js';
import { renderChart } from '../src/plot/render.js';
import { toRows } from '../src/table/table.js';

const STEPS = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];

/** A step function: 0.1 before `at`, 1 from `at` on (`at` = null: never). */
const stepUp = (at: number | null) => STEPS.map((s) => (at !== null && s >= at ? 1 : 0.1));

function run(
  matrix: Record<string, number | string>,
  mem: number | null,
  id: number | null,
  ood: number | null,
): AnalyzedRun {
  const points: CurvePoint[] = [];
  const series: Record<string, number[]> = {
    train_inferred: stepUp(mem),
    id_inferred: stepUp(id),
    ood_inferred: stepUp(ood),
  };
  for (const [type, acc] of Object.entries(series))
    acc.forEach((a, i) => points.push({ type, step: STEPS[i], epoch: STEPS[i] / 10, accuracy: a, loss: 1 - a }));
  const curve: Curve = buildCurve(points);
  const name = Object.entries(matrix)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return { name, matrix, curve, metrics: computeRunMetrics(curve), evaluated: {} };
}

const thresholds = [0.9, 0.99];

describe('aggregation over seeds', () => {
  it('spreadOf: mean, sample std, min, max over finite values only', () => {
    const s = spreadOf([100, 300, Number.NaN]);
    expect(s).toMatchObject({ n: 3, reached: 2, mean: 200, min: 100, max: 300 });
    expect(s.std).toBeCloseTo(Math.sqrt(20000), 9);
    const one = spreadOf([5]);
    expect(one).toMatchObject({ n: 1, reached: 1, mean: 5, min: 5, max: 5 });
    expect(Number.isNaN(one.std)).toBe(true);
    const none = spreadOf([Number.NaN, Number.NaN]);
    expect(none.reached).toBe(0);
    expect([none.mean, none.std, none.min, none.max].every(Number.isNaN)).toBe(true);
  });

  it('groups runs by their non-seed knobs', () => {
    expect(isSeedKnob('seed')).toBe(true);
    expect(isSeedKnob('data_seed')).toBe(true);
    expect(isSeedKnob('entities')).toBe(false);
    const runs = [
      run({ entities: 100, seed: 0 }, 200, 400, 800),
      run({ entities: 200, seed: 0 }, 200, 400, 800),
      run({ entities: 100, seed: 1 }, 200, 400, 800),
    ];
    const groups = groupReplicates(runs, sweepKnobs(runs, thresholds));
    expect(groups).toEqual([
      { key: { entities: '100' }, runs: [0, 2] },
      { key: { entities: '200' }, runs: [1] },
    ]);
    expect(hasReplicates(runs, thresholds)).toBe(true);
    expect(hasReplicates(runs.slice(0, 2), thresholds)).toBe(false);
  });

  it('sweepTable: one row per knob value and metric; never-reached runs excluded from the mean', () => {
    const runs = [
      run({ entities: 100, seed: 0 }, 200, 400, 600),
      run({ entities: 100, seed: 1 }, 300, 600, null), // OOD never generalises
      run({ entities: 100, seed: 2 }, 100, 500, 900),
      run({ entities: 400, seed: 0 }, 100, 200, null),
      run({ entities: 400, seed: 1 }, 100, 300, null),
    ];
    const t = sweepTable(runs, thresholds);
    expect(t.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'entities:DOUBLE',
      'runs:INT32',
      'metric:STRING',
      'reached:INT32',
      'mean:DOUBLE',
      'std:DOUBLE',
      'min:DOUBLE',
      'max:DOUBLE',
    ]);
    const rows = toRows(t);
    const metricsPerGroup = rows.length / 2;
    expect(rows.filter((r) => r.entities === 100)).toHaveLength(metricsPerGroup);
    const get = (entities: number, metric: string) => rows.find((r) => r.entities === entities && r.metric === metric)!;
    expect(get(100, 'memorise_step')).toMatchObject({ runs: 3, reached: 3, mean: 200, min: 100, max: 300 });
    expect(get(100, 'memorise_step').std).toBeCloseTo(100, 9);
    expect(get(100, 'id_step_0.9')).toMatchObject({ reached: 3, mean: 500, min: 400, max: 600 });
    expect(get(100, 'ood_step_0.9')).toMatchObject({ reached: 2, mean: 750, min: 600, max: 900 });
    expect(get(100, 'ood_ratio_0.9')).toMatchObject({ reached: 2, mean: (3 + 9) / 2 });
    expect(get(400, 'ood_step_0.9')).toMatchObject({ runs: 2, reached: 0 });
    expect(get(400, 'ood_step_0.9').mean).toBeNull();
    expect(get(400, 'id_delay_0.99')).toMatchObject({ reached: 2, mean: 150, min: 100, max: 200 });
    expect(get(400, 'last_step')).toMatchObject({ mean: 1000 });
  });

  it('sweepTable: string knobs kept, seeds dropped, clashing knob names prefixed', () => {
    const runs = [
      run({ arch: 'gpt2', mean: 1, seed: 0 }, 100, 200, 300),
      run({ arch: 'gpt2', mean: 1, seed: 1 }, 100, 200, 300),
    ];
    const t = sweepTable(runs, thresholds);
    expect(t.columns.slice(0, 3).map((c) => `${c.name}:${c.type}`)).toEqual([
      'arch:STRING',
      'matrix_mean:DOUBLE',
      'runs:INT32',
    ]);
    expect(toRows(t)[0]).toMatchObject({
      arch: 'gpt2',
      matrix_mean: 1,
      runs: 2,
      metric: 'memorise_step',
      mean: 100,
      std: 0,
    });
  });

  it('metricsSpec: a row of panels per knob, one line per split, spread bars with seeds', async () => {
    const runs = [
      run({ entities: 100, seed: 0 }, 200, 400, 600),
      run({ entities: 100, seed: 1 }, 300, 600, null),
      run({ entities: 400, seed: 0 }, 100, 200, 300),
      run({ entities: 400, seed: 1 }, 100, 300, 500),
    ];
    const knobs = sweepKnobs(runs, thresholds);
    const spec = metricsSpec(runs, knobs, 0.9) as unknown as {
      concat: { title: { text: string; subtitle: string | string[] }; layer: { mark: { type: string } }[] }[];
      data: { values: Record<string, unknown>[] };
    };
    expect(spec.concat).toHaveLength(3);
    expect(spec.concat.map((p) => p.layer.map((l) => l.mark.type))).toEqual([
      ['rule', 'line', 'point'],
      ['rule', 'line', 'point'],
      ['rule', 'line', 'point'],
    ]);
    expect(spec.concat.map((p) => p.title.text)).toEqual([
      'steps vs entities',
      'ratio vs entities',
      'final accuracy vs entities',
    ]);
    expect(spec.concat[0].title.subtitle).toEqual([
      'memorised: train ≥0.99; generalised: ≥0.9',
      'never reached: OOD 1/4',
    ]);
    const splits = new Set(spec.data.values.filter((v) => v.measure === 'step').map((v) => v.split));
    expect([...splits]).toEqual(['train', 'ID', 'OOD']);
    const svg = (await renderChart(spec as never, { formats: ['svg'] })).svg;
    expect(svg).toContain('class="mark-rule role-mark');
    expect(svg).toContain('class="mark-symbol role-mark');
    // without replicates: no spread bars
    const single = metricsSpec(
      runs.filter((r) => r.matrix.seed === 0),
      knobs,
      0.9,
    ) as unknown as { concat: { layer: unknown[] }[] };
    expect(single.concat[0].layer).toHaveLength(2);
    // only seeds vary: nothing to plot against
    expect(metricsSpec(runs.slice(0, 2), sweepKnobs(runs.slice(0, 2), thresholds), 0.9)).toBeNull();
  });
});

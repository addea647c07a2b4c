/**
 * Progress measures in the grokking curve: the weight norms (Omnigrok, Liu et al. 2022) against a
 * hand computation, recorded by training at every evaluation (and equal to the final model's at
 * the last step), written as `curve.parquet` columns, read back and stacked by `analyze`
 * (`curves.parquet`: NULL for a run without norms), and drawn below the accuracy with the loss of
 * each type.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CurvePoint } from '../src/analysis/metrics.js';
import { buildCurve, computeRunMetrics } from '../src/analysis/metrics.js';
import type { AnalyzedRun } from '../src/analysis/tables.js';
import { curvesTable } from '../src/analysis/tables.js';
import { weightNormLabel, weightNormsFromTable } from '../src/analysis/weight-norms.js';
import { initBackend } from '../src/models/backend.js';
import { trainModel } from '../src/models/train/trainer.js';
import { blockOf, weightNorms } from '../src/models/train/weight-norms.js';
import { grokkingSpec } from '../src/plot/grokking.js';
import { renderChart } from '../src/plot/render.js';
import { curveTable } from '../src/stages/train.js';
import { column } from '../src/table/table.js';
import { tinyConfig, tinyFacts } from './model-arch-helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('weight norms', () => {
  it('match a hand computation: per block by the `.<i>.` name component, the rest apart', async () => {
    const params = new Map<string, tf.Variable>([
      ['transformer.wte.weight', tf.variable(tf.tensor1d([0, 12]))],
      ['transformer.h.0.attn.c_attn.weight', tf.variable(tf.tensor1d([3, 4]))],
      [
        'transformer.h.1.mlp.c_fc.weight',
        tf.variable(
          tf.tensor2d([
            [1, 2],
            [2, 0],
          ]),
        ),
      ],
      ['transformer.h.1.ln_1.bias', tf.variable(tf.tensor1d([0]))],
      ['transformer.ln_f.weight', tf.variable(tf.tensor1d([5]))],
    ]);
    const n = await weightNorms(params);
    expect(n.blocks).toEqual([5, 3]);
    expect(n.other).toBeCloseTo(13, 12);
    expect(n.total).toBeCloseTo(Math.sqrt(144 + 25 + 9 + 25), 12);
    expect([
      blockOf('model.layers.11.mlp.up_proj.weight'),
      blockOf('blocks.0.att.time_decay'),
      blockOf('lm_head.weight'),
    ]).toEqual([11, 0, undefined]);
    tf.dispose([...params.values()]);
  });

  it('are recorded at every evaluation, those of the last step the final weights’, as curve.parquet columns', async () => {
    const train = tinyFacts(30, 1);
    const model = tinyConfig('gpt2');
    const optimizer = {
      lr: 1e-2,
      weight_decay: 0.1,
      beta1: 0.9,
      beta2: 0.98,
      eps: 1e-8,
      warmup_steps: 0,
      grad_clip: 1,
    };
    const config = {
      model,
      optimizer,
      batchSize: 10,
      maxSteps: 6,
      evalEvery: 3,
      evalSize: 30,
      seed: 1,
      checkpointEvery: 0,
    };
    const r = await trainModel(config, train, new Map([['id_inferred', train]]));
    const final = await weightNorms(r.model.params);
    const at = (step: number) => r.curve.filter((x) => x.step === step);
    expect(at(6).map((x) => x.norms)).toEqual([final, final]);
    expect(at(0)[0].norms.total).not.toBe(final.total);
    expect(final.blocks).toHaveLength(model.n_layers);
    const table = curveTable(r.curve);
    expect(table.columns.map((c) => c.name)).toEqual([
      'step',
      'epoch',
      'type',
      'accuracy',
      'loss',
      'weight_norm',
      ...final.blocks.map((_, i) => `weight_norm_block_${i}`),
      'weight_norm_other',
    ]);
    expect(Array.from(column(table, 'weight_norm', 'DOUBLE')).at(-1)).toBe(final.total);
    const back = weightNormsFromTable(table);
    expect(back?.step).toEqual([0, 3, 6]);
    expect(back?.parts.map((p) => weightNormLabel(p.name))).toEqual([
      'all weights',
      ...final.blocks.map((_, i) => `block ${i}`),
      'outside blocks',
    ]);
    expect(back?.parts[0].norm.at(-1)).toBe(final.total);
    r.model.dispose();
  });
});

/** A run of steps 0..1000 whose accuracies rise to 1 at step 500; with `norms`, a falling total norm and 2 blocks. */
function run(name: string, norms: boolean): AnalyzedRun {
  const steps = [0, 250, 500, 750, 1000];
  const points: CurvePoint[] = [];
  for (const type of ['train_batch', 'train_inferred', 'id_inferred', 'ood_inferred'])
    steps.forEach((step) =>
      points.push({ type, step, epoch: step / 10, accuracy: step >= 500 ? 1 : 0.3, loss: 1.05 - step / 1000 }),
    );
  const curve = buildCurve(points);
  const parts = [
    { name: 'weight_norm', norm: steps.map((s) => 40 - s / 100) },
    { name: 'weight_norm_block_0', norm: steps.map((s) => 20 - s / 200) },
    { name: 'weight_norm_block_1', norm: steps.map((s) => 21 - s / 200) },
    { name: 'weight_norm_other', norm: steps.map(() => 25) },
  ];
  return {
    name,
    matrix: { seed: name === 'a' ? 0 : 1 },
    curve,
    metrics: computeRunMetrics(curve),
    evaluated: {},
    ...(norms && { norms: { step: steps, parts } }),
  };
}

describe('weight norms in analyze', () => {
  it('curves.parquet: norm columns after the curve, NULL for a run without norms (a train version 1 curve)', () => {
    const t = curvesTable([run('a', true), run('b', false)]);
    expect(t.columns.map((c) => c.name).slice(-4)).toEqual([
      'weight_norm',
      'weight_norm_block_0',
      'weight_norm_block_1',
      'weight_norm_other',
    ]);
    const total = t.columns.find((c) => c.name === 'weight_norm')!;
    const runCol = column(t, 'run', 'STRING');
    const stepCol = column(t, 'step', 'INT32');
    runCol.forEach((r, i) => {
      expect(total.nulls?.[i]).toBe(r === 'b');
      if (r === 'a') expect(total.data[i]).toBe(40 - stepCol[i] / 100);
    });
    expect(curvesTable([run('b', false)]).columns.some((c) => c.name.startsWith('weight_norm'))).toBe(false);
  });

  it('the grokking plot draws the loss of each type and, when present, the weight norms below the accuracy', async () => {
    const spec = grokkingSpec([run('a', true)], { threshold: 0.9 }) as unknown as { vconcat: object[] };
    expect(spec.vconcat).toHaveLength(3);
    const svg = (
      await renderChart(grokkingSpec([run('a', true), run('b', false)], { threshold: 0.9 }), { formats: ['svg'] })
    ).svg;
    const texts = new Set([...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]));
    for (const t of [
      'loss',
      'weight norm (L2)',
      'all weights',
      'block 0',
      'block 1',
      'outside blocks',
      'train batches',
    ])
      expect(texts.has(t), t).toBe(true);
    const without = grokkingSpec([run('b', false)], { threshold: 0.9 }) as unknown as { vconcat: object[] };
    expect(without.vconcat).toHaveLength(2);
  });
});

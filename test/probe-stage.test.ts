/**
 * The `probe` stage (the logit lens) end to end on a tiny task, through the test stand-in for the
 * engine: a train run with kept checkpoints (a fixture: a copy of the run with the contract's
 * `checkpoints/step-XXXXXXX.safetensors` beside its weights, made of a fresh model at step 0, a
 * shorter training's weights at step 6, and a copy of the final weights at the last step), the
 * table's rows and columns as docs/artifacts.md says, the top layer at each step equal to what
 * `evaluate` measures on that step's weights, the heatmap files, and a run without checkpoints.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { probeRows, probeSummary } from '../src/analysis/probe.js';
import type { ProbeRow } from '../src/analysis/probe.js';
import { createModel } from '../src/models/arch/factories.js';
import type { ModelConfig } from '../src/models/arch/registry.js';
import { initBackend } from '../src/models/backend.js';
import { makeRng } from '../src/models/train-rng.js';
import { modelToSafetensors } from '../src/models/weights.js';
import { evaluateStage } from '../src/stages/evaluate.js';
import { keptCheckpointFile as checkpointFile } from '../src/stages/files.js';
import { generateStage } from '../src/stages/generate.js';
import { probeStage } from '../src/stages/probe.js';
import { splitStage } from '../src/stages/split.js';
import { tokenizeStage } from '../src/stages/tokenize.js';
import { trainStage } from '../src/stages/train.js';
import { weightsByStep } from '../src/stages/trained.js';
import type { InputArtifact, Json } from '../src/engine/stage.js';
import { column, numRows } from '../src/table/table.js';
import type { Table } from '../src/table/table.js';
import type { FakeRun } from './data-context.js';
import { ARCHS, perturbParams, tinyConfig } from './model-arch-helpers.js';
import { fillParams, runFake } from './data-context.js';

const TYPES = ['train_inferred', 'id_atomic', 'ood_atomic', 'id_inferred', 'ood_inferred'];
const TRAIN: Record<string, Json> = {
  model: { n_layers: 2, d_model: 16, n_heads: 2 },
  optimizer: { batch_size: 32, warmup_steps: 2, lr: 0.01 },
  eval_every: 6,
  eval_size: 8,
  // the checkpoints below are made by hand, at steps of the test's choosing
  keep_checkpoints: 'none',
};

/** `trained` as a train artifact that also lists `extra` files (written into `dir`). */
function withFiles(trained: FakeRun, dir: string, extra: string[]): InputArtifact {
  const files = [...trained.files, ...extra];
  return {
    ...trained,
    files,
    path: (file) => (extra.includes(file) ? join(dir, file) : trained.path(file)),
    readTable: (file, columns) => trained.readTable(file, columns),
  };
}

/** Accuracy and loss by type of an `accuracy.parquet`. */
function byType(acc: Table): Map<string, { accuracy: number; loss: number; n: number }> {
  const t = column(acc, 'type', 'STRING');
  const a = column(acc, 'accuracy', 'DOUBLE');
  const l = column(acc, 'loss', 'DOUBLE');
  const n = column(acc, 'n', 'INT32');
  return new Map(t.map((type, i) => [type, { accuracy: a[i], loss: l[i], n: n[i] }]));
}

describe('probe stage', () => {
  let tokens: FakeRun;
  let trained: FakeRun;
  let short: FakeRun;
  let withCheckpoints: InputArtifact;
  let config: ModelConfig;

  beforeAll(async () => {
    const kb = await runFake(generateStage, { entities: 30, attributes: 2, values: 4, seed: 0 });
    const facts = await runFake(splitStage, { phi: 2, test_size: 10 }, [kb]);
    tokens = await runFake(tokenizeStage, {}, [facts]);
    trained = await runFake(trainStage, { ...TRAIN, max_steps: 12 }, [tokens]);
    short = await runFake(trainStage, { ...TRAIN, max_steps: 6 }, [tokens]);
    config = JSON.parse(readFileSync(trained.path('model.json'), 'utf8')) as ModelConfig;
    // The fixture: checkpoints as the train stage keeps them (written with models/weights.ts).
    const dir = mkdtempSync(join(tmpdir(), 'gp-probe-ckpt-'));
    mkdirSync(join(dir, 'checkpoints'));
    await initBackend('wasm');
    const fresh = createModel(config, makeRng(0));
    writeFileSync(join(dir, checkpointFile(0)), await modelToSafetensors(fresh));
    fresh.dispose();
    copyFileSync(short.path('weights.safetensors'), join(dir, checkpointFile(6)));
    copyFileSync(trained.path('weights.safetensors'), join(dir, checkpointFile(12)));
    withCheckpoints = withFiles(trained, dir, [checkpointFile(12), checkpointFile(0), checkpointFile(6)]);
  }, 120_000);

  it('fills its defaults and accepts only the test types split writes', () => {
    expect(fillParams(probeStage, {})).toEqual({ max_per_type: 1000, batch_size: 1024, formats: ['svg', 'png'] });
    expect(() => fillParams(probeStage, { types: ['ood'] })).toThrow(/allowed values/);
    expect(() => fillParams(probeStage, { types: [] })).toThrow();
  });

  it('lists the weights by step: kept checkpoints, then the final weights at the last step', () => {
    expect(weightsByStep(withCheckpoints, 12)).toEqual([
      { step: 0, file: 'checkpoints/step-0000000.safetensors' },
      { step: 6, file: 'checkpoints/step-0000006.safetensors' },
      { step: 12, file: 'weights.safetensors' },
    ]);
    expect(weightsByStep(trained, 12)).toEqual([{ step: 12, file: 'weights.safetensors' }]);
  });

  it('reads every checkpoint and layer per type; the top layer is what evaluate measures', async () => {
    const probe = await runFake(probeStage, { batch_size: 7 }, [withCheckpoints, tokens]);
    expect([...probe.files].sort()).toEqual(['probe.parquet', 'probe.png', 'probe.svg']);
    const table = probe.tables['probe.parquet'];
    expect(table.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'step:INT32',
      'layer:INT32',
      'type:STRING',
      'n:INT32',
      'accuracy:DOUBLE',
      'loss:DOUBLE',
      'rank:DOUBLE',
    ]);
    const rows = probeRows(table);
    // 3 steps × 5 types × 3 layers, by step, then type (test.parquet order), then layer
    expect(rows.map((r) => `${r.step}/${r.type}/${r.layer}`)).toEqual(
      [0, 6, 12].flatMap((s) => TYPES.flatMap((t) => [0, 1, 2].map((l) => `${s}/${t}/${l}`))),
    );
    const test = tokens.tables['test.parquet'];
    const counts = column(test, 'type', 'STRING').reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map());
    for (const r of rows) {
      expect(r.n).toBe(counts.get(r.type));
      expect(r.accuracy).toBeGreaterThanOrEqual(0);
      expect(r.accuracy).toBeLessThanOrEqual(1);
      expect(r.rank).toBeGreaterThanOrEqual(0);
      expect(r.rank).toBeLessThan(config.vocab_size);
      if (r.accuracy === 1) expect(r.rank).toBe(0);
    }
    // At the top layer the lens is the model itself: evaluate's accuracy and loss of those weights.
    for (const [step, run] of [
      [12, trained],
      [6, short],
    ] as const) {
      const scores = byType((await runFake(evaluateStage, {}, [run, tokens])).tables['accuracy.parquet']);
      for (const r of rows.filter((x) => x.step === step && x.layer === config.n_layers)) {
        const e = scores.get(r.type)!;
        expect(r.accuracy, `${step} ${r.type}`).toBe(e.accuracy);
        expect(r.loss).toBeCloseTo(e.loss, 5);
      }
    }
    // the layers differ: the embedding alone does not give the trained model's answers
    const at = (step: number, layer: number) => rows.filter((r) => r.step === step && r.layer === layer);
    expect(at(12, 0).map((r) => r.loss)).not.toEqual(at(12, 2).map((r) => r.loss));
    expect(probe.records.summary).toEqual(probeSummary(rows));
    expect(probe.records.backend).toBeTruthy();
    const svg = readFileSync(probe.path('probe.svg'), 'utf8');
    for (const label of ['OOD test (inferred)', 'ID test (inferred)', 'layer 0: the embedding', 'lens accuracy'])
      expect(svg).toContain(label);
  }, 120_000);

  it('caps the facts per type, keeps the types asked for in their order, writes the formats asked for', async () => {
    const probe = await runFake(
      probeStage,
      { types: ['ood_inferred', 'id_inferred'], max_per_type: 4, formats: ['svg'] },
      [trained, tokens],
    );
    expect([...probe.files].sort()).toEqual(['probe.parquet', 'probe.svg']);
    const rows = probeRows(probe.tables['probe.parquet']);
    expect(rows.map((r) => `${r.step}/${r.type}/${r.layer}/${r.n}`)).toEqual(
      ['ood_inferred', 'id_inferred'].flatMap((t) => [0, 1, 2].map((l) => `12/${t}/${l}/4`)),
    );
    expect(numRows(probe.tables['probe.parquet'])).toBe(6);
  }, 60_000);

  it.each(ARCHS)('reads every layer of %s; its top layer is what evaluate measures', async (arch) => {
    // an untrained network of the task's vocabulary, as a train artifact (trained's curve: last step 12)
    const dir = mkdtempSync(join(tmpdir(), `gp-probe-${arch}-`));
    const archConfig = tinyConfig(arch, config.vocab_size, config.seq_len);
    const model = createModel(archConfig, makeRng(11));
    perturbParams(model, 12);
    writeFileSync(join(dir, 'weights.safetensors'), await modelToSafetensors(model));
    model.dispose();
    writeFileSync(join(dir, 'model.json'), JSON.stringify(archConfig));
    const run = withFiles({ ...trained, files: ['curve.parquet'] }, dir, ['weights.safetensors', 'model.json']);
    const probe = await runFake(probeStage, { types: ['id_inferred', 'ood_atomic'], formats: [] }, [run, tokens]);
    const rows = probeRows(probe.tables['probe.parquet']);
    expect(rows.map((r) => `${r.step}/${r.type}/${r.layer}`)).toEqual(
      ['id_inferred', 'ood_atomic'].flatMap((t) => [0, 1, 2].map((l) => `12/${t}/${l}`)),
    );
    const scores = byType((await runFake(evaluateStage, {}, [run, tokens])).tables['accuracy.parquet']);
    for (const r of rows.filter((x) => x.layer === archConfig.n_layers)) {
      expect(r.accuracy).toBe(scores.get(r.type)!.accuracy);
      expect(r.loss).toBeCloseTo(scores.get(r.type)!.loss, 5);
    }
  });

  it('gives the same accuracies and ranks whatever the batch size, and losses to float rounding', async () => {
    const rows = async (batch: number) =>
      probeRows(
        (await runFake(probeStage, { batch_size: batch, formats: [] }, [withCheckpoints, tokens])).tables[
          'probe.parquet'
        ],
      );
    const [a, b] = [await rows(3), await rows(1024)];
    expect(a.map((r) => [r.step, r.type, r.layer, r.n, r.accuracy, r.rank])).toEqual(
      b.map((r) => [r.step, r.type, r.layer, r.n, r.accuracy, r.rank]),
    );
    a.forEach((r, k) => expect(Math.abs(r.loss - b[k].loss)).toBeLessThan(1e-6 * Math.max(1, b[k].loss)));
  }, 60_000);

  it('names the layer from which the answer is readable', () => {
    const row = (layer: number, accuracy: number, type = 'ood_inferred'): ProbeRow => ({
      step: 100,
      layer,
      type,
      n: 10,
      accuracy,
      loss: 1,
      rank: 0,
    });
    const rows = [row(0, 0.3), row(1, 0.95), row(2, 0.8), row(3, 0.97), row(0, 1, 'id_inferred')];
    rows.push({ ...row(3, 0.1), step: 50 });
    expect(probeSummary(rows)).toEqual([
      'ood_inferred at step 100: lens accuracy by layer 30% 95% 80% 97%; readable (≥ 0.9) from layer 3',
      'id_inferred at step 100: lens accuracy by layer 100%; readable (≥ 0.9) from layer 0',
    ]);
    expect(probeSummary([row(0, 0.2)])).toEqual(['ood_inferred at step 100: lens accuracy by layer 20%; never ≥ 0.9']);
  });

  it('keeps TF.js out of the stage module until run', () => {
    const src = readFileSync(new URL('../src/stages/probe.ts', import.meta.url), 'utf8');
    expect(src).not.toMatch(/^import (?!type)[^;]*(tensorflow|vega|resvg|models\/(?!arch\/registry\.js))/m);
  });
});

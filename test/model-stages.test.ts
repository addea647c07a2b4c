/**
 * The `train` and `evaluate` stages end to end on a tiny task (generate → split → tokenize →
 * train → evaluate, through the test stand-in for the engine): output files and table schemas
 * exactly as docs/artifacts.md, params validation, and TF.js loaded only inside `run`.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateStage } from '../src/stages/evaluate.js';
import { generateStage } from '../src/stages/generate.js';
import { splitStage } from '../src/stages/split.js';
import { tokenizeStage } from '../src/stages/tokenize.js';
import { trainStage } from '../src/stages/train.js';
import type { TrainParams } from '../src/stages/train.js';
import { BACKEND_PREFERENCE } from '../src/models/backend-names.js';
import { decodeSafetensors } from '../src/models/safetensors.js';
import { column, numRows } from '../src/table/table.js';
import type { Table } from '../src/table/table.js';
import type { FakeRun } from './data-context.js';
import { fillParams, runFake } from './data-context.js';

const schemaOf = (t: Table) => t.columns.map((c) => `${c.name}:${c.type}`);

describe('train and evaluate stages', () => {
  let tokens: FakeRun;
  let trained: FakeRun;
  let scores: FakeRun;

  beforeAll(async () => {
    const kb = await runFake(generateStage, { entities: 30, attributes: 2, values: 4, seed: 0 });
    const facts = await runFake(splitStage, { phi: 2, test_size: 10 }, [kb]);
    tokens = await runFake(tokenizeStage, {}, [facts]);
    trained = await runFake(
      trainStage,
      {
        model: { n_layers: 1, d_model: 16, n_heads: 2 },
        optimizer: { batch_size: 32, warmup_steps: 2 },
        max_steps: 12,
        eval_every: 5,
        eval_size: 8,
      },
      [tokens],
    );
    scores = await runFake(evaluateStage, {}, [trained, tokens]);
  }, 120_000);

  it('fills defaults and checks d_model against n_heads', () => {
    const p = fillParams(trainStage, {});
    expect(p).toEqual({
      model: { arch: 'gpt2', n_layers: 2, d_model: 128, n_heads: 4 },
      optimizer: {
        lr: 0.001,
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-8,
        warmup_steps: 100,
        batch_size: 512,
        grad_clip: 1,
      },
      max_steps: 10000,
      eval_every: 100,
      eval_size: 1000,
      seed: 0,
      checkpoint_every: 1000,
      keep_checkpoints: 'log',
    } satisfies TrainParams);
    expect(trainStage.check?.(p, [])).toEqual([]);
    const bad = fillParams(trainStage, { model: { d_model: 30, n_heads: 4 } });
    expect(trainStage.check?.(bad, [])).toEqual([
      { path: '/model/d_model', message: expect.stringMatching(/divisible/) as string },
    ]);
    expect(() => fillParams(trainStage, { model: { arch: 'transformer-xl' } })).toThrow();
    expect(() => fillParams(trainStage, { model: { arch: 'mamba', n_heads: 4 } })).toThrow(); // a knob mamba does not have
    expect(fillParams(evaluateStage, {})).toEqual({ batch_size: 1024 });
  });

  it('writes weights, model.json and the curve as documented', () => {
    const kept = [0, 1, 2, 5, 10].map((s) => `checkpoints/step-${String(s).padStart(7, '0')}.safetensors`);
    const state = ['state/checkpoint-000000012.json', 'state/checkpoint-000000012.safetensors'];
    expect([...trained.files].sort()).toEqual([
      ...kept,
      'curve.parquet',
      'model.json',
      ...state,
      'weights.safetensors',
    ]);
    for (const file of kept) {
      const c = decodeSafetensors(readFileSync(trained.path(file)));
      const w = decodeSafetensors(readFileSync(trained.path('weights.safetensors')));
      expect(c.metadata).toEqual(w.metadata); // same layout and metadata as the final weights
      expect([...c.tensors].map(([k, t]) => [k, t.shape])).toEqual([...w.tensors].map(([k, t]) => [k, t.shape]));
    }
    const config = JSON.parse(readFileSync(trained.path('model.json'), 'utf8')) as Record<string, unknown>;
    const vocab = numRows(tokens.tables['vocab.parquet']);
    expect(config).toEqual({
      arch: 'gpt2',
      n_layers: 1,
      d_model: 16,
      n_heads: 2,
      d_mlp: 64,
      vocab_size: vocab,
      seq_len: 5,
    });
    const st = decodeSafetensors(readFileSync(trained.path('weights.safetensors')));
    expect(st.tensors.get('transformer.wte.weight')?.shape).toEqual([vocab, 16]);
    expect(st.metadata.format).toBe('pt');

    const curve = trained.tables['curve.parquet'];
    // The curve's columns, then (train version 2) the weight norms of its one block and of the rest.
    expect(schemaOf(curve).slice(0, 5)).toEqual([
      'step:INT32',
      'epoch:DOUBLE',
      'type:STRING',
      'accuracy:DOUBLE',
      'loss:DOUBLE',
    ]);
    expect(schemaOf(curve).slice(5)).toEqual([
      'weight_norm:DOUBLE',
      'weight_norm_block_0:DOUBLE',
      'weight_norm_other:DOUBLE',
    ]);
    const steps = [...new Set(column(curve, 'step', 'INT32'))];
    expect(steps).toEqual([0, 5, 10, 12]);
    const types = [...new Set(column(curve, 'type', 'STRING'))];
    expect(types[0]).toBe('train_batch');
    expect(types.slice(1).sort()).toEqual(['id_atomic', 'id_inferred', 'ood_atomic', 'ood_inferred', 'train_inferred']);
    expect(numRows(curve)).toBe(4 * 6);
    expect(BACKEND_PREFERENCE).toContain(trained.records.backend);
    expect(trained.records.steps_per_second).toBeGreaterThan(0);
    expect(Object.keys(trained.records.final_accuracy as object)).toHaveLength(6);
  });

  it('evaluates every test fact and passes the curve on', () => {
    const test = tokens.tables['test.parquet'];
    const pred = scores.tables['predictions.parquet'];
    expect(schemaOf(pred)).toEqual([
      'type:STRING',
      'input:STRING',
      'target:STRING',
      'prediction:STRING',
      'correct:BOOLEAN',
      'loss:DOUBLE',
    ]);
    expect(numRows(pred)).toBe(numRows(test));
    const input = column(pred, 'input', 'STRING');
    const type = column(pred, 'type', 'STRING');
    const i = type.indexOf('ood_inferred');
    expect(input[i]).toMatch(/^<attr_\d+> <q> <e_\d+> <mask> <e_\d+>$/);
    expect(input[type.indexOf('id_atomic')]).toMatch(/^<e_\d+> <attr_\d+>$/);
    const correct = column(pred, 'correct', 'BOOLEAN');
    const target = column(pred, 'target', 'STRING');
    const prediction = column(pred, 'prediction', 'STRING');
    correct.forEach((c, k) => expect(c).toBe(target[k] === prediction[k]));

    const acc = scores.tables['accuracy.parquet'];
    expect(schemaOf(acc)).toEqual(['type:STRING', 'n:INT32', 'accuracy:DOUBLE', 'loss:DOUBLE']);
    const n = column(acc, 'n', 'INT32');
    expect(n.reduce((a, b) => a + b, 0)).toBe(numRows(test));
    expect(scores.hashes['curve.parquet']).toBe(trained.hashes['curve.parquet']);
  });

  it('keeps TF.js out of the stage modules until run', () => {
    for (const f of ['train', 'evaluate', 'examples']) {
      const src = readFileSync(new URL(`../src/stages/${f}.ts`, import.meta.url), 'utf8');
      // models/arch/registry.ts (the architectures' declarations: config, checks, sizes) and
      // models/memory.ts (the wasm heap planner) are the model modules allowed: they import nothing
      // but each other and types.
      expect(src).not.toMatch(/^import (?!type)[^;]*(tensorflow|models\/(?!arch\/registry\.js|memory\.js))/m);
    }
    // The registry and the declarations import only each other (`./gpt2.js`, not `./gpt2-model.js`).
    for (const f of ['registry', 'architecture', 'gpt2', 'llama', 'rwkv', 'mamba']) {
      const declaration = readFileSync(new URL(`../src/models/arch/${f}.ts`, import.meta.url), 'utf8');
      expect(declaration).not.toMatch(/^import (?!type)(?![^;]*'\.\/[a-z0-9]+\.js')/m);
    }
    const memory = readFileSync(new URL('../src/models/memory.ts', import.meta.url), 'utf8');
    expect(memory).not.toMatch(/^import (?!type)(?![^;]*'\.\/arch\/registry\.js')/m);
  });
});

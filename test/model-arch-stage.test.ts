/**
 * The four architectures through the train stage: the `model:` schema (per-architecture knobs and
 * defaults, unknown knobs rejected, GPT-2's params unchanged), the filled-in config, the size
 * record, a tiny train → evaluate run of each new architecture, and the architecture pipelines.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compilePipeline } from '../src/engine/pipeline/pipeline.js';
import { createRegistry } from '../src/engine/registry.js';
import { ParamsValidator } from '../src/engine/pipeline/validate.js';
import { countModel } from '../src/models/arch/registry.js';
import { evaluateStage } from '../src/stages/evaluate.js';
import { generateStage } from '../src/stages/generate.js';
import { builtinStages } from '../src/stages/index.js';
import { splitStage } from '../src/stages/split.js';
import { tokenizeStage } from '../src/stages/tokenize.js';
import { modelConfig } from '../src/models/arch/registry.js';
import { trainStage } from '../src/stages/train.js';
import type { TrainParams } from '../src/stages/train.js';
import { numRows } from '../src/table/table.js';
import type { FakeRun } from './data-context.js';
import { fillParams, runFake } from './data-context.js';

const modelOf = (model: Record<string, unknown>) => fillParams(trainStage, { model } as never).model;

describe('train params: model', () => {
  it('fills each architecture’s own defaults', () => {
    expect(modelOf({})).toEqual({ arch: 'gpt2', n_layers: 2, d_model: 128, n_heads: 4 });
    expect(modelOf({ arch: 'llama' })).toEqual({
      arch: 'llama',
      n_layers: 2,
      d_model: 128,
      n_heads: 4,
      tie_embeddings: false,
      rope_base: 10000,
    });
    expect(modelOf({ arch: 'rwkv' })).toEqual({ arch: 'rwkv', n_layers: 2, d_model: 128 });
    expect(modelOf({ arch: 'mamba' })).toEqual({
      arch: 'mamba',
      n_layers: 2,
      d_model: 128,
      d_state: 16,
      expand: 2,
      d_conv: 4,
      tie_embeddings: true,
    });
  });

  it('rejects knobs of another architecture, naming the field and the allowed ones', () => {
    const v = new ParamsValidator();
    const problems = (model: Record<string, unknown>) => v.validate(trainStage as never, { model } as never).problems;
    expect(problems({ arch: 'mamba', n_heads: 4 })).toEqual([
      {
        path: ['model', 'n_heads'],
        message: 'unknown field (allowed: arch, n_layers, d_model, d_state, expand, d_conv, dt_rank, tie_embeddings)',
        atKey: true,
      },
    ]);
    expect(problems({ arch: 'gpt2', d_state: 4 })[0].path).toEqual(['model', 'd_state']);
    expect(problems({ arch: 'rwkv', tie_embeddings: true })[0].path).toEqual(['model', 'tie_embeddings']);
    expect(problems({ arch: 'llama', rope_base: 1 })[0].path).toEqual(['model', 'rope_base']);
    expect(problems({ arch: 'lstm' })[0].message).toMatch(/must be one of "gpt2", "llama", "rwkv", "mamba"/);
    expect(problems({ arch: 'mamba', d_state: 8, expand: 1, d_conv: 2, dt_rank: 3, tie_embeddings: false })).toEqual(
      [],
    );
  });

  it('checks head widths: divisible for GPT-2 and LLaMA, even for LLaMA', () => {
    const check = (model: Record<string, unknown>) =>
      trainStage.check?.(fillParams(trainStage, { model } as never), []);
    expect(check({ arch: 'llama', d_model: 24, n_heads: 8 })).toEqual([
      { path: '/model/n_heads', message: expect.stringMatching(/even/) as string },
    ]);
    expect(check({ arch: 'llama', d_model: 30, n_heads: 4 })?.[0].path).toBe('/model/d_model');
    expect(check({ arch: 'rwkv', d_model: 30 })).toEqual([]);
    expect(check({ arch: 'mamba', d_model: 30 })).toEqual([]);
  });

  it('fills the widths that depend on d_model', () => {
    const filled = (model: Record<string, unknown>) =>
      modelConfig(fillParams(trainStage, { model } as never).model, 50, 5);
    expect(filled({ arch: 'gpt2', d_model: 64 })).toEqual({
      arch: 'gpt2',
      n_layers: 2,
      d_model: 64,
      n_heads: 4,
      d_mlp: 256,
      vocab_size: 50,
      seq_len: 5,
    });
    expect(filled({ arch: 'llama', d_model: 64 })).toMatchObject({ d_mlp: 176 });
    expect(filled({ arch: 'rwkv', d_model: 64 })).toMatchObject({ d_mlp: 256 });
    expect(filled({ arch: 'mamba', d_model: 100 })).toMatchObject({ dt_rank: 7, d_state: 16 });
  });
});

describe.each(['llama', 'rwkv', 'mamba'] as const)('train and evaluate stages with %s', (arch) => {
  let trained: FakeRun;
  let scores: FakeRun;
  beforeAll(async () => {
    const kb = await runFake(generateStage, { entities: 20, attributes: 2, values: 4, seed: 0 });
    const facts = await runFake(splitStage, { phi: 2, test_size: 6 }, [kb]);
    const tokens = await runFake(tokenizeStage, {}, [facts]);
    trained = await runFake(
      trainStage,
      {
        model: { arch, n_layers: 1, d_model: 16 },
        optimizer: { batch_size: 16, warmup_steps: 2 },
        max_steps: 4,
        eval_every: 2,
        eval_size: 4,
      },
      [tokens],
    );
    scores = await runFake(evaluateStage, {}, [trained, tokens]);
  }, 60_000);

  it('writes the full config and records the size', () => {
    const config = JSON.parse(readFileSync(trained.path('model.json'), 'utf8')) as Parameters<typeof countModel>[0];
    expect(config.arch).toBe(arch);
    expect(trained.records.model_size).toEqual(countModel(config));
    expect(trained.records.parameters).toBe(countModel(config).parameters);
    expect(numRows(scores.tables['accuracy.parquet'])).toBe(5);
  });
});

describe('architecture pipelines', () => {
  const registry = createRegistry(builtinStages);

  it('architectures.yaml shares the data stages and trains the four architectures on them', () => {
    const p = compilePipeline(new URL('../pipelines/architectures.yaml', import.meta.url).pathname, registry);
    const ids = (stage: string) => p.runs.filter((r) => r.stageId === stage).map((r) => r.id);
    for (const data of ['kb', 'facts', 'tokens']) expect(ids(data)).toEqual([data]);
    expect(ids('model')).toEqual(['model[arch=gpt2]', 'model[arch=llama]', 'model[arch=rwkv]', 'model[arch=mamba]']);
    const models = p.runs.filter((r) => r.stageId === 'model');
    expect(models.map((r) => (r.params as unknown as TrainParams).model.arch)).toEqual([
      'gpt2',
      'llama',
      'rwkv',
      'mamba',
    ]);
    for (const r of models) expect(r.inputs.map((u) => u.id)).toEqual(['tokens']);
    const report = p.runs.find((r) => r.stageId === 'report');
    expect(report?.inputs.map((u) => u.id)).toEqual([
      'scores[arch=gpt2]',
      'scores[arch=llama]',
      'scores[arch=rwkv]',
      'scores[arch=mamba]',
    ]);
  });

  it('paper/architectures.yaml is at the published scale', () => {
    const p = compilePipeline(new URL('../pipelines/paper/architectures.yaml', import.meta.url).pathname, registry);
    const trains = p.runs.filter((r) => r.stage.name === 'train').map((r) => r.params as unknown as TrainParams);
    expect(trains.map((t) => t.model.arch)).toEqual(['gpt2', 'llama', 'rwkv', 'mamba']);
    for (const t of trains) {
      expect(t.model).toMatchObject({ n_layers: 8, d_model: 768 });
      expect(t.optimizer).toMatchObject({ lr: 1e-4, warmup_steps: 2000, weight_decay: 0.1, batch_size: 512 });
      expect(t.optimizer).toMatchObject({ beta1: 0.9, beta2: 0.999 }); // Wang et al.'s GrokkedTransformer
    }
    expect(trains.filter((t) => 'n_heads' in t.model).map((t) => (t.model as { n_heads: number }).n_heads)).toEqual([
      12, 12,
    ]);
    const kb = p.runs.find((r) => r.stageId === 'kb');
    expect(kb?.params).toMatchObject({ entities: 1000, attributes: 20, values: 20 });
    expect(p.runs.find((r) => r.stageId === 'facts')?.params).toMatchObject({ phi: 12.6 });
  });
});

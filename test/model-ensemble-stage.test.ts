/**
 * The train stage's group (`StageDefinition.group`, docs/design.md §5 "Ensembles"): which runs may
 * train together (the group key), and a group's outputs: each run's weights, model.json, curve,
 * kept checkpoints and final state exactly those of the run alone (on `wasm-blas` where the addon is built, else `cpu`: both bit for
 * bit), a group whose data disagree in shape split into parts, and a run whose data cannot be read
 * failing alone.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Json, StageContext } from '../src/engine/stage.js';
import { loadNativeBlas } from '../src/models/native-blas.js';
import { generateStage } from '../src/stages/generate.js';
import { splitStage } from '../src/stages/split.js';
import { tokenizeStage } from '../src/stages/tokenize.js';
import { trainGroupKey, trainStage } from '../src/stages/train.js';
import type { TrainParams } from '../src/stages/train.js';
import { fakeContext, fillParams, runFake } from './data-context.js';
import type { FakeRun } from './data-context.js';

const BACKEND = 'error' in loadNativeBlas() ? 'cpu' : 'wasm-blas';

const params = (over: Record<string, Json> = {}): Record<string, Json> => ({
  model: { arch: 'gpt2', n_layers: 1, d_model: 16, n_heads: 2 },
  optimizer: { lr: 3e-3, warmup_steps: 2, batch_size: 16 },
  max_steps: 6,
  eval_every: 3,
  eval_size: 8,
  ...over,
});
const key = (over: Record<string, Json> = {}) => trainGroupKey(fillParams<TrainParams>(trainStage, params(over)));

describe('train group key', () => {
  it('is equal for runs that differ in seed, lr and weight decay only', () => {
    const base = key();
    expect(base).toBeDefined();
    expect(key({ seed: 7 })).toBe(base);
    expect(key({ optimizer: { lr: 1e-4, weight_decay: 0.5, warmup_steps: 2, batch_size: 16 } })).toBe(base);
    expect(key({ keep_checkpoints: 'none' })).toBe(base); // kept per member
    // Key order of the params does not matter (canonical JSON).
    expect(key({ eval_size: 8, max_steps: 6 })).toBe(base);
  });

  it('differs for anything that changes shapes or schedule', () => {
    const base = key();
    for (const over of [
      { model: { arch: 'gpt2', n_layers: 2, d_model: 16, n_heads: 2 } },
      { model: { arch: 'gpt2', n_layers: 1, d_model: 32, n_heads: 2 } },
      { model: { arch: 'llama', n_layers: 1, d_model: 16, n_heads: 2 } },
      { optimizer: { lr: 3e-3, warmup_steps: 2, batch_size: 32 } },
      { optimizer: { lr: 3e-3, warmup_steps: 5, batch_size: 16 } },
      { optimizer: { lr: 3e-3, warmup_steps: 2, batch_size: 16, micro_batch_size: 8 } },
      {
        optimizer: { lr: 3e-3, warmup_steps: 2, batch_size: 16, grad_filter: { kind: 'ema', alpha: 0.98, lambda: 2 } },
      },
      { max_steps: 7 },
      { eval_every: 2 },
      { eval_size: 9 },
      { checkpoint_every: 3 },
    ] as Record<string, Json>[])
      expect(key(over), JSON.stringify(over)).not.toBe(base);
  });

  it('is undefined (always alone) for RWKV and Mamba', () => {
    expect(key({ model: { arch: 'rwkv', n_layers: 1, d_model: 16 } })).toBeUndefined();
    expect(key({ model: { arch: 'mamba', n_layers: 1, d_model: 16 } })).toBeUndefined();
  });
});

describe(`train group on ${BACKEND}`, () => {
  let tokens: FakeRun[];
  beforeAll(async () => {
    // Two data sets of one vocabulary (seeds 0 and 1) and one of another (more entities).
    tokens = [];
    for (const [entities, seed] of [
      [20, 0],
      [20, 1],
      [24, 0],
    ]) {
      const kb = await runFake(generateStage, { entities, attributes: 2, values: 4, seed });
      const facts = await runFake(splitStage, { phi: 2, test_size: 6 }, [kb]);
      tokens.push(await runFake(tokenizeStage, {}, [facts]));
    }
  }, 60_000);

  /**
   * Each run's outputs: every file's bytes (weights, model.json, kept checkpoints, final state),
   * each table's hash (the curve), and the final accuracies it recorded.
   */
  const outputs = (r: FakeRun) => ({
    files: Object.fromEntries(
      [...r.files].sort().map((f) => [f, r.hashes[f] ?? readFileSync(r.path(f)).toString('base64')]),
    ),
    final: r.records.final_accuracy,
  });

  it("writes each run's outputs exactly as the run alone, splitting runs whose vocabularies differ", async () => {
    const runs: [Record<string, Json>, FakeRun][] = [
      [params({ seed: 1 }), tokens[0]],
      [params({ seed: 2, optimizer: { lr: 1e-3, weight_decay: 0, warmup_steps: 2, batch_size: 16 } }), tokens[1]],
      [params({ seed: 3, optimizer: { lr: 5e-3, weight_decay: 0.5, warmup_steps: 2, batch_size: 16 } }), tokens[0]],
      [params({ seed: 4 }), tokens[2]],
    ];
    const made = runs.map(([p, input]) => fakeContext(trainStage, p, [input]));
    const ctxs = made.map((m) => ({ ...m.ctx, options: { backend: BACKEND, threads: 1 } }));
    const logs: string[][] = ctxs.map(() => []);
    ctxs.forEach((ctx, i) => (ctx.log = (line: string) => logs[i].push(line)));
    const outcome = await trainStage.group!.run(ctxs as StageContext<TrainParams>[]);
    expect(outcome).toEqual([null, null, null, null]);
    const grouped = made.map((m) => m.finish());
    expect(logs[1][0]).toMatch(/member 2 of an ensemble of 3$/);
    expect(logs[3][0]).not.toMatch(/ensemble/); // its vocabulary differs: it trained alone
    expect(grouped[0].records.ensemble_members).toBe(3);
    for (const [i, [p, input]] of runs.entries()) {
      const alone = await runFake(trainStage, p, [input], 'parquet', { options: { backend: BACKEND, threads: 1 } });
      expect(outputs(grouped[i]), `run ${i}`).toEqual(outputs(alone));
    }
  }, 120_000);

  it('fails only the run whose data cannot be read', async () => {
    const broken = { ...tokens[0], readTable: () => Promise.reject(new Error('damaged table')) };
    const made = [
      fakeContext(trainStage, params({ seed: 1 }), [tokens[0]]),
      fakeContext(trainStage, params({ seed: 2 }), [broken]),
    ];
    const ctxs = made.map((m) => ({ ...m.ctx, options: { backend: BACKEND, threads: 1 } }));
    const outcome = await trainStage.group!.run(ctxs as StageContext<TrainParams>[]);
    expect(outcome[0]).toBeNull();
    expect((outcome[1] as Error).message).toBe('damaged table');
    await expect(trainStage.group!.run([ctxs[1]] as StageContext<TrainParams>[])).rejects.toThrow('damaged table');
  }, 60_000);
});

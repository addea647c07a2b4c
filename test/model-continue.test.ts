/**
 * Prefix reuse of training, for real: a run continued from a shorter run's final state ends with
 * the same bytes as one trained from step 0 on the same backend (wasm): weights, curve, final
 * state and kept checkpoints. In the trainer (the shorter run ending on and off the evaluation
 * schedule) and through the CLI with the built-in stages (`run`, then `--set
 * model.with.max_steps=<larger>`: content hashes equal to a fresh store's, `why` and the run
 * summary name the run continued). And the kept checkpoints of an interrupted run, resumed.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { makeRng, permutation } from '../src/models/train-rng.js';
import type { Examples } from '../src/models/train/examples.js';
import { trainModel } from '../src/models/train/trainer.js';
import type { TrainerConfig } from '../src/models/train/trainer.js';
import { modelToSafetensors } from '../src/models/weights.js';
import type { ProgressUpdate } from '../src/engine/stage.js';
import { generateStage } from '../src/stages/generate.js';
import { builtinStages } from '../src/stages/index.js';
import { splitStage } from '../src/stages/split.js';
import { tokenizeStage } from '../src/stages/tokenize.js';
import { trainStage } from '../src/stages/train.js';
import { runFake } from './data-context.js';
import { cli, writeFileIn } from './fixtures/engine-harness.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gp-continue-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `n` facts `a b <q> -> y` over a vocabulary of 24 (as test/model-train.test.ts). */
function facts(n: number, seed: number): Examples {
  const rng = makeRng(seed);
  const pairs = permutation(rng, 81);
  const tokens = new Int32Array(n * 3);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    tokens.set([3 + (pairs[i] % 9), 3 + Math.floor(pairs[i] / 9), 1], i * 3);
    targets[i] = 12 + ((rng.next() >>> 0) % 12);
  }
  return { tokens, positions: new Int32Array(n).fill(2), targets, n, seqLen: 3 };
}

const config = (maxSteps: number): TrainerConfig => ({
  model: { arch: 'gpt2', n_layers: 1, d_model: 16, n_heads: 2, d_mlp: 32, vocab_size: 24, seq_len: 3 },
  optimizer: { lr: 3e-3, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 40, grad_clip: 1 },
  batchSize: 16,
  maxSteps,
  evalEvery: 10,
  evalSize: 20,
  seed: 5,
  checkpointEvery: 0,
});
const train = facts(48, 1);
const tests = new Map([['id_inferred', facts(10, 2)]]);
const KEEP = [0, 1, 2, 5, 10, 20, 25, 50];

/** Trains `maxSteps` (continuing from `from` when given); returns every file it produced, by name. */
async function trainFiles(maxSteps: number, from?: string): Promise<{ files: Map<string, string>; dir: string }> {
  const files = new Map<string, string>();
  const dir = tempDir();
  const result = await trainModel(config(maxSteps), train, tests, {
    continueFrom: from,
    onFinalState: async (state) => {
      for (const [name, bytes] of state) {
        writeFileSync(join(dir, name), bytes);
        files.set(`state/${name}`, Buffer.from(bytes).toString('base64'));
      }
    },
    keep: {
      steps: KEEP,
      save: async (step, model) =>
        void files.set(`kept ${step}`, Buffer.from(await modelToSafetensors(model)).toString('base64')),
    },
  });
  files.set('weights', Buffer.from(await modelToSafetensors(result.model)).toString('base64'));
  files.set('curve', JSON.stringify(result.curve));
  files.set('resumed', String(result.resumedFrom));
  result.model.dispose();
  return { files, dir };
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('a continued training run', () => {
  it('ends as one trained from step 0, bit for bit, whether the shorter run ended on the evaluation schedule or not', async () => {
    const scratch = (await trainFiles(60)).files;
    expect(scratch.get('resumed')).toBe('0');
    for (const first of [30, 25]) {
      const short = await trainFiles(first);
      const long = (await trainFiles(60, short.dir)).files;
      expect(long.get('resumed')).toBe(String(first));
      // Kept checkpoints up to the shorter run's end are its own (the stage copies them over).
      const expected = new Map([...scratch].filter(([k]) => !(k.startsWith('kept ') && Number(k.slice(5)) <= first)));
      expected.set('resumed', String(first));
      expect(new Map([...long].sort()), `continued from step ${first}`).toEqual(new Map([...expected].sort()));
      for (const step of KEEP.filter((s) => s < first))
        expect(short.files.get(`kept ${step}`), `kept ${step}`).toBe(scratch.get(`kept ${step}`));
    }
  }, 120_000);

  it('ignores a final state of another configuration, and one that does not lie before its end', async () => {
    const short = await trainFiles(20);
    const logs: string[] = [];
    const other = await trainModel({ ...config(30), seed: 6 }, train, tests, {
      continueFrom: short.dir,
      events: { onLog: (m) => logs.push(m) },
    });
    expect(other.resumedFrom).toBe(0);
    expect(other.continued).toBe(false);
    expect(logs).toContain('ignoring checkpoint at step 20: made by another run configuration');
    other.model.dispose();
    const same = await trainModel(config(20), train, tests, { continueFrom: short.dir });
    expect(same.resumedFrom).toBe(0);
    same.model.dispose();
  }, 60_000);
});

const PIPELINE = `
name: tiny
stages:
  kb:
    uses: generate
    with: { entities: 24, attributes: 2, values: 4, seed: 0 }
  facts:
    uses: split
    needs: [kb]
    with: { phi: 2, test_size: 10 }
  tokens:
    uses: tokenize
    needs: [facts]
  model:
    uses: train
    needs: [tokens]
    with:
      model: { n_layers: 1, d_model: 16, n_heads: 2 }
      optimizer: { batch_size: 32, warmup_steps: 5 }
      max_steps: 25
      eval_every: 10
      eval_size: 8
      keep_checkpoints: [0, 5, 25, 40] # 25: the shorter run's final weights
`;

interface Manifest {
  content_hash: string;
  outputs: { name: string; content_hash: string }[];
  info: Record<string, unknown>;
}

const run = async (file: string, store: string, ...args: string[]) => {
  const r = await cli(['run', file, '--store', store, '--backend', 'wasm', '--json', ...args], {
    stages: builtinStages,
  });
  expect(r.code, r.stderr).toBe(0);
  const m = r.run('model');
  const manifest = JSON.parse(readFileSync(join(store, 'train', m.key as string, 'manifest.json'), 'utf8')) as Manifest;
  return { ...m, manifest };
};

describe('prefix reuse through the CLI', () => {
  it('trains only the extra steps and stores what a fresh store computes', async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'tiny.yaml', PIPELINE);
    const store = join(dir, 'store');
    const short = await run(file, store);
    const why = await cli(['why', file, '--store', store, '--set', 'model.with.max_steps=60'], {
      stages: builtinStages,
    });
    const key = short.key?.slice(0, 12);
    expect(why.stdout).toContain(`model: with.max_steps 25 -> 60; will continue from ${key} at step 25`);
    const long = await run(file, store, '--set', 'model.with.max_steps=60');
    expect(long.reason).toBe(`with.max_steps 25 -> 60; continued from ${key} at step 25`);
    expect(long.manifest.info.resumed_from_step).toBe(25);
    expect(long.manifest.info.continued_from).toEqual({ key: short.key, step: 25 });

    const fresh = await run(file, join(dir, 'fresh'), '--set', 'model.with.max_steps=60');
    expect(fresh.manifest.info.resumed_from_step).toBe(0);
    expect(fresh.key).toBe(long.key);
    expect(long.manifest.outputs).toEqual(fresh.manifest.outputs);
    expect(long.manifest.content_hash).toBe(fresh.manifest.content_hash);
    const names = long.manifest.outputs.map((o) => o.name);
    expect(names.filter((n) => n.startsWith('checkpoints/'))).toEqual(
      [0, 5, 25, 40].map((s) => `checkpoints/step-${String(s).padStart(7, '0')}.safetensors`),
    );
    expect(readdirSync(join(store, 'train', long.key as string, 'state'))).toEqual([
      'checkpoint-000000060.json',
      'checkpoint-000000060.safetensors',
    ]);
  }, 180_000);
});

describe('kept checkpoints of an interrupted run', () => {
  it('are all there after it resumes, as in an uninterrupted run', async () => {
    const kb = await runFake(generateStage, { entities: 24, attributes: 2, values: 4, seed: 0 });
    const facts = await runFake(splitStage, { phi: 2, test_size: 10 }, [kb]);
    const tokens = await runFake(tokenizeStage, {}, [facts]);
    const params = {
      model: { n_layers: 1, d_model: 16, n_heads: 2 },
      optimizer: { batch_size: 32, warmup_steps: 5 },
      max_steps: 30,
      eval_every: 10,
      eval_size: 8,
      checkpoint_every: 5,
    };
    const whole = await runFake(trainStage, params, [tokens]);
    const checkpointDir = join(tempDir(), 'ckpt');
    const controller = new AbortController();
    const progress = (u: ProgressUpdate) => {
      if (u.step === 12) controller.abort(new Error('interrupted'));
    };
    await expect(
      runFake(trainStage, params, [tokens], 'parquet', { checkpointDir, signal: controller.signal, progress }),
    ).rejects.toThrow('interrupted');
    expect(readdirSync(checkpointDir).filter((f) => f.startsWith('kept-'))).toHaveLength(5); // 0, 1, 2, 5, 10
    const resumed = await runFake(trainStage, params, [tokens], 'parquet', { checkpointDir });
    expect(resumed.records.resumed_from_step).toBe(12);
    expect([...resumed.files].sort()).toEqual([...whole.files].sort());
    for (const file of whole.files.filter((f) => !f.endsWith('.parquet')))
      expect(readFileSync(resumed.path(file)).equals(readFileSync(whole.path(file))), file).toBe(true);
    expect(resumed.hashes['curve.parquet']).toBe(whole.hashes['curve.parquet']);
  }, 120_000);
});

/**
 * AdamW and the training loop on the wasm backend: decay only where it belongs, the update formula,
 * learning a tiny data set to 100 %, no tensor leak per step, and checkpoint/resume giving the same
 * weights bit for bit as an uninterrupted run: after an abort (at step 0 too), a crash, and a full
 * disk while a checkpoint is written (a real 1 MiB tmpfs where the test may mount one, and ENOSPC
 * injected into the write everywhere), which must leave no temporary behind.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import type * as Fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AdamW, learningRate } from '../src/models/adamw.js';
import type { AdamWConfig } from '../src/models/adamw.js';
import { initBackend } from '../src/models/backend.js';
import { decodeSafetensors } from '../src/models/safetensors.js';
import { createModel } from '../src/models/arch/factories.js';
import { makeRng, permutation } from '../src/models/train-rng.js';
import { BatchSampler } from '../src/models/train/examples.js';
import { trainModel } from '../src/models/train/trainer.js';
import type { Examples } from '../src/models/train/examples.js';
import type { TrainerConfig, TrainOptions, TrainResult } from '../src/models/train/trainer.js';

/** While `on`, writes of temporaries (`*.tmp-<pid>`) stop half-way with ENOSPC: a full disk. */
const inject = vi.hoisted(() => ({ on: false }));
vi.mock('node:fs', async (original) => {
  const fs = await original<typeof Fs>();
  const writeFileSync = (path: unknown, data: unknown, ...rest: unknown[]): void => {
    if (inject.on && typeof path === 'string' && /\.tmp-\d+$/.test(path) && data instanceof Uint8Array) {
      fs.writeFileSync(path, data.subarray(0, data.byteLength >> 1));
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
    }
    (fs.writeFileSync as (...a: unknown[]) => void)(path, data, ...rest);
  };
  return { ...fs, default: { ...fs, writeFileSync }, writeFileSync };
});

const VOCAB = 24;
const SEQ = 3;

/**
 * `n` distinct facts `a b <q> -> y`: (a, b) a pair of tokens in [3, 12) (at most 81), the answer at
 * position 2, and an arbitrary target in [12, 24) that must be memorised.
 */
function facts(n: number, seed: number): Examples {
  const rng = makeRng(seed);
  const pairs = permutation(rng, 81);
  const tokens = new Int32Array(n * SEQ);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    tokens[i * SEQ] = 3 + (pairs[i] % 9);
    tokens[i * SEQ + 1] = 3 + Math.floor(pairs[i] / 9);
    tokens[i * SEQ + 2] = 1;
    targets[i] = 12 + ((rng.next() >>> 0) % 12);
  }
  return { tokens, positions: new Int32Array(n).fill(2), targets, n, seqLen: SEQ };
}

const optimizer: AdamWConfig = {
  lr: 3e-3,
  weight_decay: 0.1,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-8,
  warmup_steps: 5,
  grad_clip: 1,
};

function config(over: Partial<TrainerConfig> = {}): TrainerConfig {
  return {
    model: { arch: 'gpt2', n_layers: 2, d_model: 32, n_heads: 4, d_mlp: 64, vocab_size: VOCAB, seq_len: SEQ },
    optimizer,
    batchSize: 16,
    maxSteps: 30,
    evalEvery: 5,
    evalSize: 20,
    seed: 3,
    checkpointEvery: 0,
    ...over,
  };
}

const train = facts(48, 1);
const tests = new Map([
  ['train_inferred', { ...facts(48, 1), n: 20 }],
  ['id_inferred', facts(10, 2)],
]);
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gp-ckpt-'));
  dirs.push(d);
  return d;
};

async function weights(r: TrainResult): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of r.model.params) out.set(name, (await p.data()) as Float32Array);
  return out;
}

beforeAll(async () => {
  await initBackend('wasm');
});
const unmount: string[] = [];
afterAll(async () => {
  for (const m of unmount) await execa('umount', [m], { reject: false });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('AdamW', () => {
  it('decays weight matrices and embeddings, never biases or LayerNorm parameters', () => {
    const model = createModel(config().model, makeRng(0));
    const opt = new AdamW(model.params, { ...optimizer, lr: 0.1, weight_decay: 0.5, warmup_steps: 0 }, (n) =>
      model.decays(n),
    );
    const before = new Map([...model.params].map(([n, p]) => [n, p.dataSync().slice()]));
    const zeros = new Map([...model.params].map(([n, p]) => [n, tf.zerosLike(p) as tf.Tensor]));
    opt.apply(zeros).dispose();
    for (const [name, p] of model.params) {
      const after = p.dataSync();
      const b = before.get(name) as Float32Array;
      if (/\.bias$|ln_/.test(name)) {
        expect(model.decays(name), name).toBe(false);
        expect(Array.from(after), name).toEqual(Array.from(b));
      } else {
        expect(model.decays(name), name).toBe(true);
        expect(after[0], name).toBeCloseTo(b[0] * (1 - 0.1 * 0.5), 6);
      }
    }
    tf.dispose([...zeros.values()]);
    opt.dispose();
    model.dispose();
  });

  it('follows the PyTorch AdamW update, warmup and clipping', () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const c: AdamWConfig = {
      lr: 0.1,
      weight_decay: 0.2,
      beta1: 0.9,
      beta2: 0.99,
      eps: 1e-8,
      warmup_steps: 4,
      grad_clip: 1,
    };
    const opt = new AdamW(new Map([['w', p]]), c, () => true);
    expect([1, 2, 4, 9].map((t) => learningRate(c, t))).toEqual([0.025, 0.05, 0.1, 0.1]);
    const ref = [1, -2];
    const m = [0, 0];
    const v = [0, 0];
    for (let t = 1; t <= 3; t++) {
      const g = [3, 4]; // norm 5: clipped to norm 1
      const norm = opt.apply(new Map([['w', tf.tensor1d(g)]]));
      expect(norm.dataSync()[0]).toBeCloseTo(5, 5);
      norm.dispose();
      const lr = learningRate(c, t);
      for (let i = 0; i < 2; i++) {
        const gi = g[i] * (1 / (5 + 1e-6));
        ref[i] *= 1 - lr * c.weight_decay;
        m[i] = 0.9 * m[i] + 0.1 * gi;
        v[i] = 0.99 * v[i] + 0.01 * gi * gi;
        ref[i] -= (lr / (1 - 0.9 ** t)) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(1 - 0.99 ** t) + 1e-8));
      }
      const got = p.dataSync();
      expect(got[0]).toBeCloseTo(ref[0], 5);
      expect(got[1]).toBeCloseTo(ref[1], 5);
    }
    opt.dispose();
    p.dispose();
  });
});

describe('trainModel', () => {
  it('draws each epoch as a permutation and restores its state', () => {
    const s = new BatchSampler(10, makeRng(1));
    const first = Array.from(s.next(10)).sort((a, b) => a - b);
    expect(first).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    s.next(3);
    const copy = BatchSampler.fromState(10, s.state());
    expect(Array.from(copy.next(25))).toEqual(Array.from(s.next(25)));
  });

  it('learns a tiny data set to 100 % training accuracy without leaking tensors', async () => {
    const counts: number[] = [];
    const before = tf.memory().numTensors;
    const r = await trainModel(
      config({ maxSteps: 150, evalEvery: 50, batchSize: 48, optimizer: { ...optimizer, lr: 1e-2 } }),
      train,
      tests,
      {
        events: { onStep: () => counts.push(tf.memory().numTensors) },
      },
    );
    const rows = (type: string) => r.curve.filter((x) => x.type === type);
    expect([...new Set(r.curve.map((x) => x.step))]).toEqual([0, 50, 100, 150]);
    expect(r.curve.slice(0, 3).map((x) => x.type)).toEqual(['train_batch', 'train_inferred', 'id_inferred']);
    expect(r.curve.find((x) => x.step === 50)?.epoch).toBe(50);
    const batch = rows('train_batch');
    expect(batch.at(-1)!.loss).toBeLessThan(batch[0].loss / 10);
    expect(rows('train_inferred').at(-1)!.accuracy).toBe(1);
    expect(batch.at(-1)!.accuracy).toBe(1);
    // Same number of live tensors after every step (variables only).
    expect(new Set(counts.slice(1)).size, JSON.stringify(counts.slice(0, 60))).toBe(1);
    r.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('resumes from a checkpoint to the same weights as an uninterrupted run', async () => {
    const c = config({ maxSteps: 30, evalEvery: 5, checkpointEvery: 10 });
    const plain = await trainModel(c, train, tests);
    const want = await weights(plain);
    plain.model.dispose();

    // 1. Interrupted by an abort after step 17: a checkpoint is written at 17, then it rejects.
    const dir = tempDir();
    const ctrl = new AbortController();
    await expect(
      trainModel(c, train, tests, {
        checkpointDir: dir,
        signal: ctrl.signal,
        events: { onStep: (s) => s.step === 17 && ctrl.abort(new Error('stop')) },
      }),
    ).rejects.toThrow('stop');
    expect(readdirSync(dir).sort()).toEqual(['checkpoint-000000017.json', 'checkpoint-000000017.safetensors']);
    const resumed = await trainModel(c, train, tests, { checkpointDir: dir });
    expect(resumed.resumedFrom).toBe(17);
    expect(resumed.stepsRun).toBe(13);
    for (let i = 0; i < plain.curve.length; i++) expect(resumed.curve[i], `row ${i}`).toEqual(plain.curve[i]);
    expect(await weights(resumed)).toEqual(want);
    resumed.model.dispose();

    // 2. Killed without warning at step 25: the periodic checkpoint of step 20 is used.
    const dir2 = tempDir();
    await expect(
      trainModel(c, train, tests, {
        checkpointDir: dir2,
        events: {
          onStep: (s) => {
            if (s.step === 25) throw new Error('killed');
          },
        },
      }),
    ).rejects.toThrow('killed');
    const again = await trainModel(c, train, tests, { checkpointDir: dir2 });
    expect(again.resumedFrom).toBe(20);
    expect(await weights(again)).toEqual(want);
    again.model.dispose();

    // 3. A checkpoint of another configuration is ignored.
    const other = await trainModel({ ...c, seed: 4 }, train, tests, { checkpointDir: dir2 });
    expect(other.resumedFrom).toBe(0);
    other.model.dispose();
  });

  it('resumes from a step-0 checkpoint (interrupted before step 1 ended) to the same curve and weights', async () => {
    // Aborted right after the step-0 evaluation: the checkpoint of step 0 already holds its rows.
    const ctrl = new AbortController();
    const { plain, resumed, files } = await interruptedThenResumed(
      config({ maxSteps: 12, evalEvery: 4, checkpointEvery: 100 }),
      tempDir(),
      {
        signal: ctrl.signal,
        events: { onStep: (s) => s.step === 0 && ctrl.abort(new Error('stop')) },
      },
    );
    expect(files).toEqual(['checkpoint-000000000.json', 'checkpoint-000000000.safetensors']);
    expect(resumed.resumedFrom).toBe(0);
    // The whole curve, not a prefix: the step-0 rows appear once.
    expect(resumed.curve).toEqual(plain.curve);
    expect(resumed.weights).toEqual(plain.weights);
  });
});

describe('trainModel with the Grokfast filter', () => {
  const grokfast = (lambda: number): Partial<TrainerConfig> => ({ gradFilter: { kind: 'ema', alpha: 0.98, lambda } });

  it('changes training at λ 2 and leaves it bit for bit unchanged at λ 0', async () => {
    const c = config({ maxSteps: 12, evalEvery: 4 });
    const plain = await finish(await trainModel(c, train, tests));
    const zero = await finish(await trainModel(config({ maxSteps: 12, evalEvery: 4, ...grokfast(0) }), train, tests));
    const two = await finish(await trainModel(config({ maxSteps: 12, evalEvery: 4, ...grokfast(2) }), train, tests));
    expect(zero.weights).toEqual(plain.weights);
    expect(zero.curve).toEqual(plain.curve);
    expect(two.weights).not.toEqual(plain.weights);
    // The step-0 evaluation precedes any update; after it the curves part.
    expect(two.curve.filter((r) => r.step === 0)).toEqual(plain.curve.filter((r) => r.step === 0));
    expect(two.curve.at(-1)).not.toEqual(plain.curve.at(-1));
  });

  it('checkpoints its averages and resumes to the same curve and weights as an uninterrupted run', async () => {
    const c = config({ maxSteps: 20, evalEvery: 5, checkpointEvery: 10, ...grokfast(2) });
    const dir = tempDir();
    const ctrl = new AbortController();
    const { plain, resumed, files } = await interruptedThenResumed(c, dir, {
      signal: ctrl.signal,
      events: { onStep: (s) => s.step === 13 && ctrl.abort(new Error('stop')) },
    });
    expect(files).toEqual(['checkpoint-000000013.json', 'checkpoint-000000013.safetensors']);
    const saved = decodeSafetensors(readFileSync(join(dir, 'checkpoint-000000013.safetensors')));
    const averages = [...saved.tensors.keys()].filter((k) => k.startsWith('grad_filter.ema.'));
    expect(averages.length).toBe(plain.weights.size);
    expect(resumed.resumedFrom).toBe(13);
    expect(resumed.curve).toEqual(plain.curve);
    expect(resumed.weights).toEqual(plain.weights);
    // A checkpoint of the unfiltered run (another fingerprint) is not resumed by a filtered one.
    const other = await trainModel(config({ maxSteps: 20, evalEvery: 5, checkpointEvery: 10 }), train, tests, {
      checkpointDir: dir,
    });
    expect(other.resumedFrom).toBe(0);
    other.model.dispose();
  });
});

/** A run and its weights (the model disposed). */
interface Finished {
  curve: TrainResult['curve'];
  resumedFrom: number;
  weights: Map<string, Float32Array>;
}

async function finish(r: TrainResult): Promise<Finished> {
  const w = await weights(r);
  r.model.dispose();
  return { curve: r.curve, resumedFrom: r.resumedFrom, weights: w };
}

/**
 * Trains `c` uninterrupted; then into `dir` with `options` (which must make it reject); then
 * `between()`, and a resume from `dir`.
 * @returns both runs and the files the interrupted one left in `dir`.
 */
async function interruptedThenResumed(
  c: TrainerConfig,
  dir: string,
  options: TrainOptions,
  between: () => void = () => undefined,
): Promise<{ plain: Finished; resumed: Finished; files: string[]; error: unknown }> {
  const plain = await finish(await trainModel(c, train, tests));
  const error = await trainModel(c, train, tests, { ...options, checkpointDir: dir }).then(
    () => expect.fail('the interrupted run did not reject'),
    (err: unknown) => err,
  );
  const files = readdirSync(dir).sort();
  between();
  const resumed = await finish(await trainModel(c, train, tests, { checkpointDir: dir }));
  return { plain, resumed, files, error };
}

describe('checkpoints on a full disk', () => {
  const c = config({ maxSteps: 15, evalEvery: 5, checkpointEvery: 5 });

  /**
   * After the checkpoint of step 5, `fill()` makes the disk full, so the one of step 10 fails: no
   * temporary may be left; once `free()` gives the space back, the run resumes from step 5.
   */
  async function fullDisk(dir: string, fill: () => void, free: () => void): Promise<void> {
    const { plain, resumed, files, error } = await interruptedThenResumed(
      c,
      dir,
      { events: { onStep: (s) => s.step === 6 && fill() } },
      free,
    );
    expect(error).toMatchObject({ code: 'ENOSPC' });
    expect(files).toEqual(['checkpoint-000000005.json', 'checkpoint-000000005.safetensors']);
    expect(resumed.resumedFrom).toBe(5);
    expect(resumed.weights).toEqual(plain.weights);
  }

  it('a 1 MiB file system filled mid-run: no temporary left, resumable once space is freed', async (ctx) => {
    const mnt = tempDir();
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { reject: false }).catch(
      () => ({ exitCode: 1 }),
    );
    if (mounted.exitCode !== 0) {
      ctx.skip('cannot mount a small tmpfs here (needs root and mount rights); the injected ENOSPC case runs instead');
      return;
    }
    unmount.push(mnt);
    const filler = join(mnt, 'filler');
    const fill = (): void => {
      const s = statfsSync(mnt);
      // Leave less room than a checkpoint takes (~330 kB here).
      writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - 100_000)));
    };
    await fullDisk(join(mnt, 'ckpt'), fill, () => rmSync(filler));
  });

  it('ENOSPC injected into the checkpoint write: no temporary left, resumable once space is freed', async () => {
    await fullDisk(
      tempDir(),
      () => (inject.on = true),
      () => (inject.on = false),
    );
  });
});

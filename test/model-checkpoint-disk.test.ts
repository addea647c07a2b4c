/**
 * A full disk while a checkpoint is written: the write fails with ENOSPC and leaves no temporary
 * (a partial `checkpoint-N.safetensors.tmp-<pid>` would keep the disk full); the previous
 * checkpoint stays, and once space is freed the run resumes from it to the weights of an
 * uninterrupted run. On a real small file system (a 1 MiB tmpfs; needs root and mount, skipped
 * elsewhere) and with ENOSPC injected into the write (everywhere).
 */
import { mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import type * as Fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { makeRng, permutation } from '../src/models/random.js';
import { trainModel } from '../src/models/trainer.js';
import type { Examples, TrainerConfig, TrainResult } from '../src/models/trainer.js';

/** While `on`, writes of temporaries (`*.tmp-<pid>`) stop half-way with ENOSPC. */
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

const SEQ = 3;

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

const config: TrainerConfig = {
  model: { arch: 'gpt2', n_layers: 2, d_model: 32, n_heads: 4, d_mlp: 64, vocab_size: 24, seq_len: SEQ },
  optimizer: { lr: 3e-3, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 5, grad_clip: 1 },
  batchSize: 16,
  maxSteps: 15,
  evalEvery: 5,
  evalSize: 20,
  seed: 3,
  checkpointEvery: 5,
};
const train = facts(48, 1);
const tests = new Map([['id_inferred', facts(10, 2)]]);

async function weights(r: TrainResult): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of r.model.params) out.set(name, (await p.data()) as Float32Array);
  r.model.dispose();
  return out;
}

let want: Map<string, Float32Array>;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  await initBackend('wasm');
  want = await weights(await trainModel(config, train, tests));
});
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

/**
 * Trains into `dir`; after the checkpoint of step 5, `fill()` makes the disk full, so the one of
 * step 10 fails. Then checks what is left, frees the space with `free()`, and resumes.
 */
async function fullDiskThenResume(dir: string, fill: () => void, free: () => void): Promise<void> {
  const run = trainModel(config, train, tests, { checkpointDir: dir, events: { onStep: (s) => s.step === 6 && fill() } });
  await expect(run).rejects.toMatchObject({ code: 'ENOSPC' });
  expect(readdirSync(dir).sort()).toEqual(['checkpoint-000000005.json', 'checkpoint-000000005.safetensors']);
  free();
  const resumed = await trainModel(config, train, tests, { checkpointDir: dir });
  expect(resumed.resumedFrom).toBe(5);
  expect(await weights(resumed)).toEqual(want);
}

describe('checkpoints on a full disk', () => {
  it('a 1 MiB file system filled mid-run: no temporary left, resumable once space is freed', async (ctx) => {
    const mnt = join(tmpdir(), `gp-full-${process.pid}`);
    mkdirSync(mnt, { recursive: true });
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { reject: false }).catch(() => ({ exitCode: 1 }));
    if (mounted.exitCode !== 0) {
      rmSync(mnt, { recursive: true, force: true });
      ctx.skip('cannot mount a small tmpfs here (needs root and mount rights); the injected ENOSPC case runs instead');
      return;
    }
    cleanup.push(async () => {
      await execa('umount', [mnt], { reject: false });
      rmSync(mnt, { recursive: true, force: true });
    });
    const dir = join(mnt, 'ckpt');
    const filler = join(mnt, 'filler');
    const fill = (): void => {
      const s = statfsSync(mnt);
      // Leave less room than a checkpoint takes (~330 kB here).
      writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - 100_000)));
    };
    await fullDiskThenResume(dir, fill, () => rmSync(filler));
  });

  it('ENOSPC injected into the checkpoint write: no temporary left, resumable once space is freed', async () => {
    const dir = join(tmpdir(), `gp-enospc-${process.pid}`);
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    await fullDiskThenResume(
      dir,
      () => (inject.on = true),
      () => (inject.on = false),
    );
  });
});

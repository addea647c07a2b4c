/**
 * Chaos: the smoke pipeline (longer training, checkpoints every 25 steps) is interrupted at random
 * moments, by SIGKILL and by Ctrl-C (SIGINT to its process group), each time in a fresh store, then
 * run again to completion; every run's content hash must equal an uninterrupted run's, and no
 * temporary or process may be left (`scripts/chaos.mjs`, which also runs the larger check of the
 * README). The seed is random and printed on failure; `GROKPIPE_CHAOS_SEED` replays one.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface Trial {
  signal: string;
  at: number;
  equal: boolean;
  problems: string[];
}

describe('chaos', () => {
  it('random SIGKILLs and a Ctrl-C, each followed by a rerun: content hashes equal an uninterrupted run', async () => {
    const seed = process.env.GROKPIPE_CHAOS_SEED ?? String(Date.now() % 2 ** 32);
    const args = [
      '--pipeline',
      'pipelines/smoke.yaml',
      '--set',
      'model.with.max_steps=150',
      '--set',
      'model.with.checkpoint_every=25',
    ];
    const r = await execa(
      process.execPath,
      [
        'scripts/chaos.mjs',
        ...args,
        '--kills',
        '3',
        '--interrupts',
        '1',
        '--jobs',
        '1',
        '--seed',
        seed,
        '--json',
        '--cli',
        `${process.execPath} --import ${tsx} src/cli.ts`,
      ],
      { cwd: root, reject: false },
    );
    expect(r.exitCode, `seed ${seed}\n${r.stderr}`).not.toBe(null);
    const doc = JSON.parse(r.stdout) as { trials: Trial[]; different: number };
    expect(doc.trials.map((t) => t.signal)).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL', 'SIGINT']);
    expect(doc.different, `seed ${seed}\n${r.stderr}`).toBe(0);
    expect(r.exitCode).toBe(0);
  }, 120_000);
});

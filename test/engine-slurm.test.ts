/**
 * The SLURM executor's submit/poll logic against fake `sbatch`/`squeue`/`scontrol`/`scancel` on
 * PATH (test/fixtures/slurm-fake.ts): waves as job arrays, results read from the store, a task
 * that vanishes without a result, a partial array failure, cancellation, and no sbatch at all.
 * The array tasks run the real worker (the fake stages' CLI through tsx).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fakeCliCommand } from './fixtures/engine-cli.js';
import { cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { fakeSlurm } from './fixtures/slurm-fake.js';
import type { FakeSlurm } from './fixtures/slurm-fake.js';

const worker = { workerCommand: [...fakeCliCommand(), 'exec-job'] };
const SLURM = ['--executor', 'slurm', '--slurm-poll', '0.2', '--json'];
const saved = { ...process.env };
let fake: FakeSlurm;

beforeEach(() => {
  fake = fakeSlurm();
  process.env.PATH = `${fake.bin}:${saved.PATH ?? ''}`;
  process.env.FAKE_SLURM_DIR = fake.dir;
});

afterEach(() => {
  for (const k of ['PATH', 'FAKE_SLURM_DIR', 'FAKE_SLURM_HOLD', 'FAKE_SLURM_KILL']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

function setup(yaml: string): { file: string; store: string } {
  const dir = tempDir('gp-slurm-');
  return { file: writeFileIn(dir, 'p.yaml', yaml), store: join(dir, 'store') };
}

const SWEEP = `
matrix:
  seed: [0, 1]
stages:
  g: { uses: gen, with: { n: 4, seed: "\${{ matrix.seed }}" } }
  s: { uses: scale, needs: [g] }
`;

describe('slurm executor (fake SLURM)', () => {
  it('submits each wave as one job array, polls squeue, reads results from the store; a rerun is cached', async () => {
    const { file, store } = setup(SWEEP);
    const r = await cli(
      ['run', file, '--store', store, ...SLURM, '--slurm-array-limit', '2', '--slurm-time', '0:10:00'],
      worker,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(Object.values(statuses(r))).toEqual(['ran', 'ran', 'ran', 'ran']);
    const sbatch = fake.calls().filter((c) => c.startsWith('sbatch --parsable'));
    expect(sbatch[0]).toMatch(
      /^sbatch --parsable --array=0-1%2 --job-name=grokpipe --output=\S+\/\.slurm\/%A_%a\.log .*--time=0:10:00 .*wave-\d+-1\.sh$/,
    );
    expect(sbatch.length).toBeGreaterThanOrEqual(2);
    expect(fake.calls().some((c) => c.startsWith('squeue -h -r -j'))).toBe(true);
    expect(fake.calls().join('\n')).not.toMatch(/--wait|sacct/);
    expect(r.stderr).toMatch(/\[g\[seed=0\]\] submitted as SLURM job \d+_\d \(log: /);

    // Same content as a local run.
    const local = await cli(['run', file, '--store', join(store, '..', 'local'), '--json']);
    expect(local.runs().map((x) => [x.id, x.key])).toEqual(r.runs().map((x) => [x.id, x.key]));
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);

    const again = await cli(['run', file, '--store', store, ...SLURM], worker);
    expect(Object.values(statuses(again))).toEqual(['cached', 'cached', 'cached', 'cached']);
    expect(fake.calls().filter((c) => c.startsWith('sbatch --parsable'))).toHaveLength(sbatch.length);
  });

  it('a task that leaves the queue without a result fails with its scontrol state and log path', async () => {
    process.env.FAKE_SLURM_KILL = '1';
    const { file, store } = setup(
      `\nstages:\n  a: { uses: gen, with: { seed: 1 } }\n  b: { uses: gen, with: { seed: 2 } }\n  c: { uses: scale, needs: [b] }\n`,
    );
    const r = await cli(['run', file, '--store', store, ...SLURM], worker);
    expect(r.code).toBe(1);
    const s = statuses(r);
    expect([s.a, s.b].sort()).toEqual(['failed', 'ran']);
    const bad = r.runs().find((x) => x.status === 'failed');
    expect(bad?.reason).toMatch(
      /SLURM job (\d+)_1 ended TIMEOUT \(exit code 0:15, reason TimeLimit\) without a result; log: \S+\/\.slurm\/\d+_1\.log/,
    );
    expect(fake.calls()).toContainEqual(expect.stringMatching(/^scontrol -o show job \d+_1$/));
    expect(s.c).toBe(s.b === 'failed' ? 'skipped' : 'ran');
  });

  it('a partial array failure: the failed run is reported with its log, its dependents skipped, the others go on', async () => {
    const { file, store } = setup(`
matrix:
  seed: [0, 1]
stages:
  g: { uses: gen, with: { seed: "\${{ matrix.seed }}" } }
  s: { uses: scale, needs: [g] }
  x: { uses: boom }
  after: { uses: collect, needs: [x] }
`);
    const r = await cli(['run', file, '--store', store, ...SLURM], worker);
    expect(r.code).toBe(1);
    expect(statuses(r)).toEqual({
      'g[seed=0]': 'ran',
      'g[seed=1]': 'ran',
      's[seed=0]': 'ran',
      's[seed=1]': 'ran',
      x: 'failed',
      after: 'skipped',
    });
    const reason = r.run('x').reason;
    const log = /\(log: (\S+\/\.slurm\/\d+_\d+\.log)\)/.exec(reason)?.[1];
    expect(reason).toContain('boom exploded');
    expect(log && existsSync(log)).toBe(true);
    expect(readFileSync(log as string, 'utf8')).toContain('boom exploded');
    expect(r.run('after').reason).toBe('upstream x failed');
    // The first wave held all three ready runs.
    expect(fake.calls().find((c) => c.startsWith('sbatch --parsable'))).toContain('--array=0-2 ');
  });

  it('aborting (Ctrl-C) cancels the submitted tasks with scancel and exits 130', async () => {
    process.env.FAKE_SLURM_HOLD = '1';
    const { file, store } = setup(SWEEP);
    const controller = new AbortController();
    const running = cli(['run', file, '--store', store, ...SLURM], { ...worker, signal: controller.signal });
    const deadline = Date.now() + 20_000;
    while (!fake.calls().some((c) => c.startsWith('squeue')) && Date.now() < deadline) await sleep(50);
    controller.abort(new Error('interrupted'));
    const r = await running;
    expect(r.code).toBe(130);
    const job = readFileSync(join(fake.dir, 'next'), 'utf8').trim();
    expect(fake.calls()).toContain(`scancel ${job}_0 ${job}_1`);
    expect(Object.values(statuses(r))).toEqual(['failed', 'failed', 'skipped', 'skipped']);
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
  });

  it('without sbatch on PATH: a clear message and exit code 2', async () => {
    process.env.PATH = tempDir('gp-nopath-');
    const { file, store } = setup(SWEEP);
    const r = await cli(['run', file, '--store', store, '--executor', 'slurm'], worker);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sbatch not found on PATH: --executor slurm needs the SLURM client commands/);
  });
});

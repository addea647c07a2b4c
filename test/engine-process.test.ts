/**
 * Tests that need real processes: a run killed with SIGKILL, an interrupted run (SIGINT), the
 * worker-process pool, and two processes computing the same key. They spawn the CLI with the fake
 * stages through tsx (test/fixtures/engine-cli.ts).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeCliCommand } from './fixtures/engine-cli.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import type { JsonRun } from './fixtures/engine-harness.js';

const [node, ...prefix] = fakeCliCommand();

function spawnCli(args: string[]) {
  // The children never see the in-process tests' GP_FAKE_SLOW_SCALE.
  return execa(node, [...prefix, ...args], { reject: false, env: { GP_FAKE_SLOW_SCALE: '1' } });
}

/** Waits until some temporary folder in `store` holds `started.txt` (the slow stage began). */
async function waitForStart(store: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const tmp = join(store, '.tmp');
    if (existsSync(tmp) && readdirSync(tmp).some((d) => existsSync(join(tmp, d, 'started.txt')))) return;
    await sleep(50);
  }
  throw new Error('slow stage did not start');
}

function completeArtifacts(store: string, stage: string): string[] {
  const dir = join(store, stage);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((k) => existsSync(join(dir, k, 'manifest.json')));
}

const SLOW = `
stages:
  a: { uses: slow, with: { ms: 60000, steps: 600, tag: long } }
`;

afterEach(() => {
  delete process.env.GP_FAKE_SLOW_SCALE;
});

describe('processes', () => {
  it('a run killed mid-stage leaves nothing that looks complete; the next run cleans up and succeeds', async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'p.yaml', SLOW);
    const store = join(dir, 'store');
    const child = spawnCli(['run', file, '--store', store, '--jobs', '1', '--json']);
    await waitForStart(store);
    child.kill('SIGKILL');
    const killed = await child;
    expect(killed.signal).toBe('SIGKILL');
    expect(completeArtifacts(store, 'slow')).toEqual([]);
    expect(readdirSync(join(store, '.tmp')).length).toBeGreaterThan(0);
    expect(readdirSync(join(store, '.locks')).some((n) => n.endsWith('.lock'))).toBe(true);

    // Same key, shortened sleep: the dead process's lock and temporary are recovered at once.
    process.env.GP_FAKE_SLOW_SCALE = '0.0001';
    const t0 = Date.now();
    const r = await cli(['run', file, '--store', store, '--json']);
    expect(r.code).toBe(0);
    expect(r.run('a').status).toBe('ran');
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
    expect(completeArtifacts(store, 'slow')).toHaveLength(1);
    const again = await cli(['run', file, '--store', store, '--json']);
    expect(again.run('a').status).toBe('cached');
  });

  it('SIGINT aborts the stage, removes its temporary and exits 130', async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'p.yaml', SLOW);
    const store = join(dir, 'store');
    const child = spawnCli(['run', file, '--store', store, '--jobs', '1', '--json']);
    await waitForStart(store);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    const runs = (JSON.parse(r.stdout) as { runs: JsonRun[] }).runs;
    expect(runs[0]).toMatchObject({ id: 'a', status: 'failed', reason: 'interrupted' });
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
    expect(completeArtifacts(store, 'slow')).toEqual([]);
  });

  it('--jobs 2 runs independent stages in parallel worker processes, progress over IPC', async () => {
    const dir = tempDir();
    const file = writeFileIn(
      dir,
      'p.yaml',
      `
stages:
  a: { uses: slow, with: { ms: 1500, steps: 3, tag: a } }
  b: { uses: slow, with: { ms: 1500, steps: 3, tag: b } }
  c: { uses: boom }
`,
    );
    const store = join(dir, 'store');
    const r = await spawnCli(['run', file, '--store', store, '--jobs', '2', '--json']);
    expect(r.exitCode).toBe(1);
    const runs = (JSON.parse(r.stdout) as { runs: JsonRun[] }).runs;
    expect(runs.map((x) => [x.id, x.status])).toEqual([
      ['a', 'ran'],
      ['b', 'ran'],
      ['c', 'failed'],
    ]);
    expect(runs[2].reason).toContain('boom exploded');
    const window = (run: JsonRun) =>
      (
        JSON.parse(readFileSync(join(store, 'slow', run.key as string, 'manifest.json'), 'utf8')) as {
          info: { window: number[] };
        }
      ).info.window;
    const [wa, wb] = [window(runs[0]), window(runs[1])];
    expect(Math.max(wa[0], wb[0])).toBeLessThan(Math.min(wa[1], wb[1]));
    expect(r.stderr).toMatch(/\[a\] step \d\/3 loss/);
    expect(r.stderr).toContain('[b] slow finished');
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
  });

  it('two processes computing the same key: one computes, the other waits and reuses', async () => {
    const dir = tempDir();
    const file = writeFileIn(
      dir,
      'p.yaml',
      `\nstages:\n  a: { uses: slow, with: { ms: 2000, steps: 2, tag: shared } }\n`,
    );
    const store = join(dir, 'store');
    const [r1, r2] = await Promise.all([
      spawnCli(['run', file, '--store', store, '--jobs', '1', '--json']),
      spawnCli(['run', file, '--store', store, '--jobs', '1', '--json']),
    ]);
    expect([r1.exitCode, r2.exitCode]).toEqual([0, 0]);
    const status = [r1, r2].map((r) => (JSON.parse(r.stdout) as { runs: JsonRun[] }).runs[0].status).sort();
    expect(status).toEqual(['cached', 'ran']);
    expect(completeArtifacts(store, 'slow')).toHaveLength(1);
  });
});

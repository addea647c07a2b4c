/**
 * Crash safety at several points: a run of a chain of stages is killed with SIGKILL at increasing
 * moments (before the first stage ends, between stages, late in the chain); after each kill the
 * store must hold only complete, intact entries (`verify --bytes-only`), and the next run must
 * clean up and go on from where the killed one stopped.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { fakeCliCommand } from './fixtures/engine-cli.js';
import { cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const [node, ...prefix] = fakeCliCommand();

const CHAIN = `
stages:
  a: { uses: slow, with: { ms: 600, steps: 3, tag: a } }
  g: { uses: gen, needs: [a], with: { n: 50 } }
  b: { uses: slow, needs: [g], with: { ms: 600, steps: 3, tag: b } }
  s: { uses: scale, needs: [g] }
  c: { uses: slow, needs: [b, s], with: { ms: 600, steps: 3, tag: c } }
`;

/** Waits until process `pid` started a stage (its temporary `<key>.<pid>.<random>` holds `started.txt`). */
async function started(store: string, pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const tmp = join(store, '.tmp');
    if (
      existsSync(tmp) &&
      readdirSync(tmp).some((d) => d.includes(`.${pid}.`) && existsSync(join(tmp, d, 'started.txt')))
    )
      return;
    await sleep(20);
  }
  throw new Error('no stage started');
}

function complete(store: string): number {
  let n = 0;
  for (const stage of existsSync(store) ? readdirSync(store).filter((d) => !d.startsWith('.')) : []) {
    for (const key of readdirSync(join(store, stage))) if (existsSync(join(store, stage, key, 'manifest.json'))) n++;
  }
  return n;
}

describe('crash safety', () => {
  it('SIGKILL at several points leaves a valid store; each next run continues; the last completes', async () => {
    const dir = tempDir('gp-crash-');
    const file = writeFileIn(dir, 'p.yaml', CHAIN);
    const store = join(dir, 'store');
    const seen: number[] = [];
    for (const delayMs of [0, 300, 700, 1200]) {
      const child = execa(node, [...prefix, 'run', file, '--store', store, '--jobs', '1', '--json'], {
        reject: false,
        env: { GP_FAKE_SLOW_SCALE: '1' },
      });
      const done = child.then(() => 'exited' as const);
      const first = await Promise.race([started(store, child.pid as number).then(() => 'started' as const), done]);
      if (first === 'started') {
        await sleep(delayMs);
        child.kill('SIGKILL');
      }
      await child;
      // Only complete, intact entries: every one verifies against its byte hashes.
      const check = await cli(['verify', file, '--store', store, '--bytes-only', '--json']);
      expect(check.code).toBe(0);
      const doc = JSON.parse(check.stdout) as { runs: { status: string }[] };
      expect(doc.runs.every((r) => r.status === 'intact' || r.status === 'uncached')).toBe(true);
      seen.push(complete(store));
    }
    // Progress is kept across kills (never lost), and something was interrupted along the way.
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(seen[0]).toBeLessThan(5);
    const last = await cli(['run', file, '--store', store, '--json']);
    expect(last.code).toBe(0);
    expect(Object.values(statuses(last)).every((s) => s === 'cached' || s === 'ran')).toBe(true);
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
    expect(complete(store)).toBe(5);
    // (`slow` writes timestamps, so only bytes are compared, not recomputations.)
    const verify = await cli(['verify', file, '--store', store, '--bytes-only', '--json']);
    expect(verify.code).toBe(0);
    expect((JSON.parse(verify.stdout) as { summary: Record<string, number> }).summary).toEqual({ intact: 5 });
  });
});

/**
 * What a killed run leaves behind, and who removes it: a worker process dies with its driver
 * (it would otherwise go on writing into a folder the next run already cleaned), and `run` and
 * `gc` remove the temporaries whose owner is dead: half-written usage records (a kill injected
 * with `GROKPIPE_FAULT`), checkpoint files cut short, stage output folders.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { fakeCliCommand } from './fixtures/engine-cli.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const [node, ...prefix] = fakeCliCommand();

/** Polls `test` every 20 ms until it holds or `ms` pass. @returns whether it held. */
async function until(test: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (test()) return true;
  return test();
}

/** Worker processes (`exec-job`) that `pid` started. */
async function workersOf(pid: number): Promise<number[]> {
  const { stdout } = await execa('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { reject: false });
  return stdout
    .split('\n')
    .filter((line) => line.includes('exec-job'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** True when process `pid` has ended (gone, or a zombie not yet reaped by its new parent). */
function ended(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

/** Live processes (zombies aside) whose command line names `text`. */
function processesNaming(text: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text) && !ended(Number(p));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The pid of a process that ran and is gone (killed by SIGKILL after `script`). */
async function deadPid(script = ''): Promise<number> {
  const child = execa(process.execPath, ['-e', `${script}; process.kill(process.pid, 'SIGKILL')`], { reject: false });
  await child;
  return child.pid as number;
}

describe('leftovers of killed runs', () => {
  it('a worker dies with its driver and writes nothing after the next gc', async () => {
    const dir = tempDir('gp-orphan-');
    const file = writeFileIn(
      dir,
      'p.yaml',
      'stages:\n  a: { uses: slow, with: { ms: 60000, steps: 600, tag: orphan } }\n',
    );
    const store = join(dir, 'store');
    // Aborted, the stage would go on writing for 4 s (as a training run saves a checkpoint).
    const driver = execa(node, [...prefix, 'run', file, '--store', store, '--jobs', '2'], {
      reject: false,
      env: { GP_FAKE_SLOW_LINGER_MS: '4000' },
    });
    const tmp = join(store, '.tmp');
    const started = () => existsSync(tmp) && readdirSync(tmp).some((d) => existsSync(join(tmp, d, 'started.txt')));
    expect(await until(started, 30_000)).toBe(true);
    const workers = await workersOf(driver.pid as number);
    expect(workers.length).toBe(1);
    driver.kill('SIGKILL');
    await driver;
    // Gone with its driver, not seconds later (it would write for 4 s more).
    expect(await until(() => ended(workers[0]), 2000)).toBe(true);
    const gc = await cli(['gc', '--store', store, '--json']);
    const kinds = (JSON.parse(gc.stdout) as { removed: { kind: string }[] }).removed.map((r) => r.kind);
    expect(kinds).toContain('temporary');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a worker busy computing when its driver dies writes nothing afterwards', async () => {
    const dir = tempDir('gp-orphan-');
    const file = writeFileIn(
      dir,
      'p.yaml',
      'stages:\n  a: { uses: slow, with: { ms: 60000, steps: 600, tag: busy } }\n',
    );
    const store = join(dir, 'store');
    const driver = execa(node, [...prefix, 'run', file, '--store', store, '--jobs', '2'], {
      reject: false,
      env: { GP_FAKE_SLOW_BUSY_MS: '1500' },
    });
    const tmp = join(store, '.tmp');
    const started = () => existsSync(tmp) && readdirSync(tmp).some((d) => existsSync(join(tmp, d, 'started.txt')));
    expect(await until(started, 30_000)).toBe(true);
    const workers = await workersOf(driver.pid as number);
    driver.kill('SIGKILL');
    await driver;
    // The next run's cleaning happens while the worker still computes...
    expect((await cli(['gc', '--store', store])).code).toBe(0);
    expect(readdirSync(tmp)).toEqual([]);
    // ...and once done computing, it exits instead of writing into the folder again.
    expect(await until(() => ended(workers[0]), 5000)).toBe(true);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a worker whose driver dies while it starts writes nothing', async () => {
    const dir = tempDir('gp-orphan-');
    const file = writeFileIn(
      dir,
      'p.yaml',
      'stages:\n  a: { uses: slow, with: { ms: 60000, steps: 600, tag: early } }\n',
    );
    const store = join(dir, 'store');
    const driver = execa(node, [...prefix, 'run', file, '--store', store, '--jobs', '2'], { reject: false });
    const tmp = join(store, '.tmp');
    const started = () => readdirSync(tmp).some((d) => existsSync(join(tmp, d, 'started.txt')));
    // The task file is written right before the worker is started (which takes a while under tsx).
    expect(await until(() => existsSync(tmp) && readdirSync(tmp).some((n) => n.endsWith('.job.json')), 30_000)).toBe(
      true,
    );
    expect(started()).toBe(false);
    driver.kill('SIGKILL');
    await driver;
    // The worker ends without starting the stage (which would write started.txt at once).
    expect(await until(() => processesNaming(store).length === 0, 10_000)).toBe(true);
    expect(started()).toBe(false);
    expect((await cli(['gc', '--store', store])).code).toBe(0);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('run and gc remove the usage record a kill left half-renamed (GROKPIPE_FAULT=usage-rename)', async () => {
    const dir = tempDir('gp-uses-');
    const file = writeFileIn(dir, 'p.yaml', 'stages:\n  g: { uses: gen, with: { n: 3 } }\n');
    const store = join(dir, 'store');
    const killed = await execa(node, [...prefix, 'run', file, '--store', store, '--jobs', '1'], {
      reject: false,
      env: { GROKPIPE_FAULT: 'usage-rename' },
    });
    expect(killed.signal).toBe('SIGKILL');
    const uses = join(store, '.uses');
    const left = readdirSync(uses);
    expect(left.length).toBe(1);
    expect(left[0]).toMatch(/\.json\.\d+\.[0-9a-f]+\.tmp$/);
    const dry = await cli(['gc', '--store', store, '--dry-run', '--json']);
    const listed = (JSON.parse(dry.stdout) as { removed: { kind: string; path: string }[] }).removed;
    expect(listed).toEqual([expect.objectContaining({ kind: 'temporary', path: join('.uses', left[0]) })]);
    // The next run sweeps it at its start, then writes its own record.
    const again = await cli(['run', file, '--store', store, '--json']);
    expect(again.code).toBe(0);
    expect(readdirSync(uses).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(uses).length).toBe(1);
  });

  it('run and gc remove a checkpoint file whose writer was killed, and keep those of live writers', async () => {
    const dir = tempDir('gp-ckpt-tmp-');
    const file = writeFileIn(dir, 'p.yaml', 'stages:\n  g: { uses: gen, with: { n: 3 } }\n');
    const store = join(dir, 'store');
    const ckpt = join(store, '.checkpoints', 'a'.repeat(64));
    mkdirSync(ckpt, { recursive: true });
    // A writer killed mid-write leaves `<name>.tmp-<its pid>` (the checkpoint folder's naming).
    const pid = await deadPid(
      `require('node:fs').writeFileSync(${JSON.stringify(ckpt)} + '/checkpoint-000000010.safetensors.tmp-' + process.pid, Buffer.alloc(4096))`,
    );
    const dead = `checkpoint-000000010.safetensors.tmp-${pid}`;
    const live = `checkpoint-000000020.safetensors.tmp-${process.pid}`;
    writeFileIn(ckpt, live, 'being written');
    writeFileIn(ckpt, 'checkpoint-000000005.json', '{}');
    const dry = await cli(['gc', '--store', store, '--dry-run', '--json']);
    const listed = (JSON.parse(dry.stdout) as { removed: { kind: string; path: string; bytes: number }[] }).removed;
    expect(listed).toEqual([
      expect.objectContaining({ kind: 'temporary', path: join('.checkpoints', 'a'.repeat(64), dead), bytes: 4096 }),
    ]);
    expect((await cli(['run', file, '--store', store, '--json'])).code).toBe(0);
    expect(readdirSync(ckpt).sort()).toEqual(['checkpoint-000000005.json', live]);
  });
});

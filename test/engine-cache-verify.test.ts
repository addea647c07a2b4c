/**
 * Integrity and maintenance of the store: `verify` (recompute and compare, byte hashes), a flipped
 * byte in a weights-like file found when read and recomputed, and `gc`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { calls, fakeStages, noise, resetCalls } from './fixtures/engine-stages.js';
import type { StageDefinition } from '../src/engine/stage.js';

interface VerifyJson {
  runs: {
    id: string;
    status: string;
    problems: { file: string; message: string; columns?: string[] }[];
    reason?: string;
  }[];
  summary: Record<string, number>;
}

const PIPE = `
name: mixed
stages:
  g: { uses: gen, with: { n: 6, seed: 2 } }
  s: { uses: scale, needs: [g] }
  n: { uses: noisy }
`;

function setup(yaml: string, name = 'p.yaml'): { file: string; store: string; dir: string } {
  const dir = tempDir('gp-verify-');
  return { dir, file: writeFileIn(dir, name, yaml), store: join(dir, 'store') };
}

/** Flips one bit of the byte at `offset` (from the middle when omitted); keeps the size. */
function flipByte(path: string, offset?: number): void {
  const bytes = readFileSync(path);
  const at = offset ?? Math.floor(bytes.length / 2);
  bytes[at] ^= 0x01;
  writeFileSync(path, bytes);
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function deadPid(): Promise<number> {
  return Number((await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])).stdout);
}

beforeEach(() => {
  resetCalls();
  noise.nondeterministic = false;
});
afterEach(() => {
  noise.nondeterministic = false;
});

describe('verify', () => {
  it('recomputes into a scratch folder: exit 0 when all match, 1 with the differing table and column', async () => {
    const { file, store } = setup(PIPE);
    const r = await cli(['run', file, '--store', store, '--json']);
    const nDir = join(store, 'noisy', r.run('n').key as string);
    const before = sha(join(nDir, 'out.parquet'));

    const ok = await cli(['verify', file, '--store', store, '--json']);
    expect(ok.code).toBe(0);
    const okDoc = JSON.parse(ok.stdout) as VerifyJson;
    expect(okDoc.runs.map((x) => [x.id, x.status])).toEqual([
      ['g', 'match'],
      ['s', 'match'],
      ['n', 'match'],
    ]);
    expect(calls).toMatchObject({ gen: 2, scale: 2, noisy: 2 });

    noise.nondeterministic = true;
    const bad = await cli(['verify', file, '--store', store, '--json']);
    expect(bad.code).toBe(1);
    const n = (JSON.parse(bad.stdout) as VerifyJson).runs.find((x) => x.id === 'n');
    expect(n).toMatchObject({ status: 'mismatch' });
    expect(n?.problems).toEqual([
      {
        file: 'out.parquet',
        message: 'column unstable: 4 of 4 rows differ, first at row 0: 0 -> 1',
        columns: ['unstable'],
      },
    ]);
    const text = await cli(['verify', file, '--store', store]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^MISMATCH\s+n$/m);
    expect(text.stdout).toMatch(/^\s+out\.parquet: column unstable: 4 of 4 rows differ, first at row 0: 0 -> 2$/m);
    expect(text.stdout).toMatch(/^match\s+g\s/m);
    expect(text.stdout).toMatch(/^verify failed: 3 runs checked \(2 match, 1 mismatch\)$/m);
    // The real store is untouched and the scratch folders are gone.
    expect(sha(join(nDir, 'out.parquet'))).toBe(before);
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
    const status = await cli(['status', file, '--store', store, '--json']);
    expect(statuses(status)).toEqual({ g: 'cached', s: 'cached', n: 'cached' });
  });

  it('--sample K checks K cached runs; uncached runs are reported but do not fail', async () => {
    const { file, store } = setup(PIPE);
    await cli(['run', file, '--store', store, '--json']);
    const sample = JSON.parse(
      (await cli(['verify', file, '--store', store, '--json', '--sample', '2'])).stdout,
    ) as VerifyJson;
    expect(sample.runs).toHaveLength(2);
    expect(sample.runs.every((x) => x.status === 'match')).toBe(true);
    const partly = await cli(['verify', file, '--store', store, '--json', '--set', 'g.with.seed=7']);
    expect(partly.code).toBe(0);
    const doc = JSON.parse(partly.stdout) as VerifyJson;
    expect(doc.runs.map((x) => [x.id, x.status])).toEqual([
      ['g', 'uncached'],
      ['s', 'uncached'],
      ['n', 'match'],
    ]);
    expect(doc.runs[0].reason).toBe('not cached (with.seed 2 -> 7); run the pipeline first');
    const both = await cli(['verify', file, '--store', store, '--sample', '1', '--all']);
    expect(both.code).toBe(2);
  });

  it('checks byte hashes: a flipped byte is corrupt, and inputs are checked before recomputing', async () => {
    const { file, store } = setup(PIPE);
    const r = await cli(['run', file, '--store', store, '--json']);
    flipByte(join(store, 'gen', r.run('g').key as string, 'values.parquet'));
    const bytes = await cli(['verify', file, '--store', store, '--json', '--bytes-only']);
    expect(bytes.code).toBe(1);
    const doc = JSON.parse(bytes.stdout) as VerifyJson;
    expect(doc.runs.map((x) => [x.id, x.status])).toEqual([
      ['g', 'corrupt'],
      ['s', 'intact'],
      ['n', 'intact'],
    ]);
    expect(doc.runs[0].problems[0]).toMatchObject({
      file: 'values.parquet',
      message: expect.stringMatching(/^bytes changed \(sha256 [0-9a-f]{12}, manifest says [0-9a-f]{12}\)$/) as unknown,
    });
    resetCalls();
    const full = JSON.parse((await cli(['verify', file, '--store', store, '--json'])).stdout) as VerifyJson;
    expect(full.runs.map((x) => [x.id, x.status])).toEqual([
      ['g', 'corrupt'],
      ['s', 'corrupt'],
      ['n', 'match'],
    ]);
    expect(full.runs[1]).toMatchObject({
      reason: 'an input is corrupt; not recomputed',
      problems: [{ file: 'g: values.parquet' }],
    });
    expect(calls).toEqual({ noisy: 1 });
  });
});

describe('verify recomputes as the entry was computed', () => {
  /** `threads`: writes the threads it was given (sums of floats can depend on them). */
  const threads: StageDefinition<Record<string, never>> = {
    name: 'threads',
    version: '1',
    description: 'writes its threads',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    async run(ctx) {
      await ctx.writeFile('threads.txt', String(ctx.options.threads));
    },
  };

  it('with the threads recorded in its manifest, not those of its own --jobs', async () => {
    const { file, store } = setup('stages:\n  t: { uses: threads }\n');
    const stages = [...fakeStages, threads];
    // 64 stage runs at once: 1 thread each (the inline executor; no worker processes here).
    expect((await cli(['run', file, '--store', store, '--jobs', '64'], { stages })).code).toBe(0);
    const r = await cli(['verify', file, '--store', store, '--json'], { stages });
    expect((JSON.parse(r.stdout) as VerifyJson).runs.map((x) => x.status)).toEqual(['match']);
    expect(r.code).toBe(0);
  });
});

describe('integrity on read', () => {
  const WEIGHTS = `
stages:
  g: { uses: gen, with: { n: 40, seed: 3 } }
  w: { uses: weights, needs: [g] }
  u: { uses: use, needs: [w], with: { scale: 1 } }
`;

  it('a flipped byte in a weights file is detected when a stage reads it, reported, and recomputed', async () => {
    const { file, store } = setup(WEIGHTS);
    const first = await cli(['run', file, '--store', store, '--json']);
    const wFile = join(store, 'weights', first.run('w').key as string, 'weights.bin');
    const good = sha(wFile);
    const total = (key: string) =>
      (JSON.parse(readFileSync(join(store, 'use', key, 'total.json'), 'utf8')) as { total: number }).total;
    const t1 = total(first.run('u').key as string);
    flipByte(wFile, 3);
    expect(sha(wFile)).not.toBe(good);
    // Same size: a plain lookup does not see it (status stays cheap)...
    expect(statuses(await cli(['status', file, '--store', store, '--json']))).toEqual({
      g: 'cached',
      w: 'cached',
      u: 'cached',
    });
    resetCalls();
    // ...but a stage about to read it does: the weights are recomputed before use.
    const r = await cli(['run', file, '--store', store, '--json', '--set', 'u.with.scale=2']);
    expect(r.code).toBe(0);
    expect(statuses(r)).toEqual({ g: 'cached', w: 'ran', u: 'ran' });
    expect(r.run('w').reason).toMatch(
      /^corrupt: weights\.bin \(bytes changed \(sha256 [0-9a-f]{12}, manifest says [0-9a-f]{12}\)\)$/,
    );
    expect(r.stderr).toMatch(/\[w\] corrupt: weights\.bin .*: recomputing it/);
    expect(calls).toEqual({ weights: 1, use: 1 });
    expect(sha(wFile)).toBe(good);
    expect(total(r.run('u').key as string)).toBe(2 * t1);
    const again = await cli(['verify', file, '--store', store, '--bytes-only']);
    expect(again.code).toBe(0);
  });
});

describe('gc', () => {
  const A = `
name: a
stages:
  g: { uses: gen, with: { n: 5, seed: 1 } }
  s: { uses: scale, needs: [g], with: { factor: 2 } }
  t: { uses: sum, needs: [s] }
`;
  const B = A.replace('name: a', 'name: b').replace('factor: 2', 'factor: 3');

  it('removes the .meta sidecar (names, tags, uses) of each entry it removes, and only those', async () => {
    const { file: a, store, dir } = setup(A, 'a.yaml');
    const b = writeFileIn(dir, 'b.yaml', B);
    const ra = await cli(['run', a, '--store', store, '--json']);
    const rb = await cli(['run', b, '--store', store, '--json']);
    const sidecar = (stage: string, key: string | null) => join(store, '.meta', stage, `${key as string}.json`);
    for (const id of ['g', 's', 't']) {
      expect(existsSync(sidecar(ra.run(id).stage, ra.run(id).key))).toBe(true);
      expect(existsSync(sidecar(rb.run(id).stage, rb.run(id).key))).toBe(true);
    }
    // A damaged entry of a: its manifest is gone, so gc removes it and its sidecar.
    writeFileSync(join(store, 'sum', ra.run('t').key as string, 'manifest.json'), 'not json');

    const real = await cli(['gc', '--store', store, '--keep-pipelines', a]);
    expect(real.code).toBe(0);
    expect(existsSync(sidecar('scale', rb.run('s').key))).toBe(false);
    expect(existsSync(sidecar('sum', rb.run('t').key))).toBe(false);
    expect(existsSync(sidecar('sum', ra.run('t').key))).toBe(false);
    expect(existsSync(join(store, '.meta', 'sum'))).toBe(false);
    expect(existsSync(sidecar('gen', ra.run('g').key))).toBe(true);
    expect(existsSync(sidecar('scale', ra.run('s').key))).toBe(true);
  });

  it('keeps what a kept pipeline reuses (early cutoff included), removes the rest and dead leftovers', async () => {
    const { file: a, store, dir } = setup(A, 'a.yaml');
    const b = writeFileIn(dir, 'b.yaml', B);
    const ra = await cli(['run', a, '--store', store, '--json']);
    const rb = await cli(['run', b, '--store', store, '--json']);
    // Leftovers of a killed process, a live process's temporary, and checkpoints.
    const dead = await deadPid();
    mkdirSync(join(store, '.tmp', `abcd.${dead}.0123abcd`), { recursive: true });
    writeFileSync(join(store, '.tmp', `abcd.${dead}.0123abcd`, 'half.bin'), Buffer.alloc(1000));
    mkdirSync(join(store, '.tmp', `beef.${process.pid}.0123abcd`));
    mkdirSync(join(store, '.locks', 'abcd.lock'), { recursive: true });
    writeFileSync(join(store, '.locks', 'abcd.owner'), JSON.stringify({ pid: dead, host: hostname() }));
    const tKey = ra.run('t').key as string;
    mkdirSync(join(store, '.checkpoints', tKey), { recursive: true });
    mkdirSync(join(store, '.checkpoints', 'cafe'), { recursive: true });
    // Not the store's: left alone.
    mkdirSync(join(store, 'reports', 'assets'), { recursive: true });

    const dry = await cli(['gc', '--store', store, '--keep-pipelines', a, '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as {
      dry_run: boolean;
      bytes: number;
      removed: { kind: string; key?: string; path: string }[];
    };
    expect(plan.dry_run).toBe(true);
    expect(plan.removed.map((x) => `${x.kind} ${x.key}`).sort()).toEqual(
      [
        `artifact ${rb.run('s').key}`,
        `artifact ${rb.run('t').key}`,
        'temporary abcd',
        'lock abcd',
        'lock abcd',
        'checkpoint cafe',
        `checkpoint ${tKey}`,
      ].sort(),
    );
    expect(plan.bytes).toBeGreaterThan(1000);
    expect(existsSync(join(store, 'scale', rb.run('s').key as string))).toBe(true);

    const real = await cli(['gc', '--store', store, '--keep-pipelines', a]);
    expect(real.stdout).toMatch(
      /^removed artifact scale\/[0-9a-f]{12} {2}[\d.]+ kB {2}\(not used by the kept pipelines\)$/m,
    );
    expect(real.stdout).toMatch(
      /^freed [\d.]+ kB \(2 artifacts, 1 temporary, 2 locks, 2 checkpoints\); 3 artifacts kept$/m,
    );
    expect(existsSync(join(store, 'scale', rb.run('s').key as string))).toBe(false);
    expect(readdirSync(join(store, '.tmp'))).toEqual([`beef.${process.pid}.0123abcd`]);
    expect(readdirSync(join(store, '.locks'))).toEqual([]);
    expect(readdirSync(join(store, '.checkpoints'))).toEqual([]);
    expect(existsSync(join(store, 'reports', 'assets'))).toBe(true);
    expect(statuses(await cli(['status', a, '--store', store, '--json']))).toEqual({
      g: 'cached',
      s: 'cached',
      t: 'cached',
    });
    expect(statuses(await cli(['status', b, '--store', store, '--json']))).toEqual({
      g: 'cached',
      s: 'planned',
      t: 'planned',
    });

    // A kept pipeline whose first stage must rerun still keeps the entries early cutoff would reuse.
    const a2 = writeFileIn(dir, 'a2.yaml', A.replace('seed: 1 }', 'seed: 1, comment: again }'));
    const gc2 = JSON.parse((await cli(['gc', '--store', store, '--keep-pipelines', a2, '--json'])).stdout) as {
      removed: { kind: string; stage?: string }[];
    };
    expect(gc2.removed.map((x) => [x.kind, x.stage])).toEqual([['artifact', 'gen']]);
    resetCalls();
    const r2 = await cli(['run', a2, '--store', store, '--json']);
    expect(statuses(r2)).toEqual({ g: 'ran', s: 'cached', t: 'cached' });
  });

  it('--older-than removes only what was not used for that long; no criterion removes no artifact', async () => {
    const { file: a, store, dir } = setup(A, 'a.yaml');
    const b = writeFileIn(dir, 'b.yaml', B);
    await cli(['run', a, '--store', store, '--json']);
    const rb = await cli(['run', b, '--store', store, '--json']);
    const old = new Date(Date.now() - 10 * 86_400_000);
    for (const id of ['s', 't'])
      utimesSync(join(store, id === 's' ? 'scale' : 'sum', rb.run(id).key as string), old, old);
    const none = await cli(['gc', '--store', store]);
    expect(none.stdout).toBe(
      'freed 0 B; 5 artifacts kept\nno --keep-pipelines or --older-than given: only leftovers were considered, no complete artifact\n',
    );
    const young = JSON.parse((await cli(['gc', '--store', store, '--older-than', '30', '--json'])).stdout) as {
      removed: unknown[];
    };
    expect(young.removed).toEqual([]);
    const aged = JSON.parse((await cli(['gc', '--store', store, '--older-than', '7', '--json'])).stdout) as {
      removed: { key: string }[];
    };
    expect(aged.removed.map((x) => x.key)).toEqual([rb.run('s').key, rb.run('t').key]);
    // A cache hit counts as a use: reusing an entry makes it young again.
    utimesSync(join(store, 'gen', rb.run('g').key as string), old, old);
    await cli(['run', a, '--store', store, '--json']);
    const after = JSON.parse(
      (await cli(['gc', '--store', store, '--older-than', '7', '--json', '--dry-run'])).stdout,
    ) as { removed: unknown[] };
    expect(after.removed).toEqual([]);
    const badDays = await cli(['gc', '--store', store, '--older-than', 'soon']);
    expect(badDays.code).toBe(2);
  });
});

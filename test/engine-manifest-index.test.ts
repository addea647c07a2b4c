/**
 * The manifest index (`cache/manifest-index.ts`): planning through it gives the plan of planning
 * without it, lookup by lookup and with the outputs checked on worker threads, whatever became of
 * the index (missing, damaged, cut short by a crash, of another format) or of the store since it
 * was written (a manifest edited or removed, an output truncated, an entry removed); it is brought
 * up to date after such a plan; a manifest changed too recently to trust its times is not indexed;
 * a crash while committing an entry or while writing the index leaves a store that plans alike.
 */
import { cpSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  INDEX_BYTES_PER_RUN,
  IndexUpdate,
  ManifestIndex,
  indexLine,
  indexPath,
} from '../src/engine/cache/manifest-index.js';
import type { Manifest } from '../src/engine/cache/manifest.js';
import { Store } from '../src/engine/cache/store.js';
import { strayTemporaries } from '../src/engine/cache/temporaries.js';
import { planRuns } from '../src/engine/explain/plan.js';
import type { PlanOptions, PlannedRun } from '../src/engine/explain/plan.js';
import type { StageRun } from '../src/engine/pipeline/expand.js';
import { compilePipeline } from '../src/engine/pipeline/pipeline.js';
import { createRegistry } from '../src/engine/registry.js';
import { CHAIN, cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { fakeStages } from './fixtures/engine-stages.js';

const summary = (plan: PlannedRun[]) =>
  plan.map((p) => [p.run.id, p.status, p.key, p.reason, p.dir ?? null, p.contentHash ?? null]);

/** Index lines (entries) of a store's index file; 0 when it has none. */
const indexLines = (store: string) =>
  existsSync(indexPath(store)) ? readFileSync(indexPath(store), 'utf8').trim().split('\n').length - 1 : 0;

async function cachedChain(): Promise<{ runs: readonly StageRun[]; store: string; file: string }> {
  const dir = tempDir();
  const file = writeFileIn(dir, 'p.yaml', CHAIN);
  const store = join(dir, 'store');
  expect((await cli(['run', file, '--store', store, '--json'])).code).toBe(0);
  return { runs: compilePipeline(file, createRegistry(fakeStages)).runs, store, file };
}

/** Trust manifests at once: the tests change them a few milliseconds later (see `RACY_MS`). */
const NOW = { index: { racyMs: 0 } } satisfies PlanOptions;
const WAYS: [string, PlanOptions][] = [
  ['lookup by lookup', { ...NOW, parallelCheckFrom: Infinity }],
  ['on worker threads', { ...NOW, parallelCheckFrom: 0 }],
];

/** The plan without the index, and through it both ways, which must agree. */
async function plans(runs: readonly StageRun[], store: string): Promise<PlannedRun[]> {
  const plain = await planRuns(runs, new Store(store), { index: false, parallelCheckFrom: Infinity });
  for (const [, options] of WAYS) {
    const indexed = await planRuns(runs, new Store(store), options);
    expect(summary(indexed)).toEqual(summary(plain));
    expect(indexed.map((p) => p.manifest)).toEqual(plain.map((p) => p.manifest));
  }
  return plain;
}

/** Waits for the file system clock to move on, so that a change gets other times. */
const tick = () => new Promise((r) => setTimeout(r, 20));

describe('manifest index', () => {
  it('is written by a plan, then serves plans equal to plans without it', async () => {
    const { runs, store } = await cachedChain();
    expect(indexLines(store)).toBe(0);
    await planRuns(runs, new Store(store), NOW);
    expect(indexLines(store)).toBe(3);
    const plan = await plans(runs, store);
    expect(plan.map((p) => p.status)).toEqual(['cached', 'cached', 'cached']);
    expect(plan.map((p) => p.contentHash)).toEqual(plan.map((p) => p.manifest?.content_hash));
  });

  it('leaves out manifests changed less than RACY_MS ago', async () => {
    const { runs, store } = await cachedChain();
    await planRuns(runs, new Store(store));
    expect(indexLines(store)).toBe(0);
    await plans(runs, store);
  });

  it.each(WAYS)('finds a manifest edited after indexing corrupt (%s)', async (_, options) => {
    const { runs, store } = await cachedChain();
    const before = await planRuns(runs, new Store(store), NOW);
    await tick();
    const path = join(before[1].dir as string, 'manifest.json');
    const m = JSON.parse(readFileSync(path, 'utf8')) as { content_hash: string };
    m.content_hash = m.content_hash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    writeFileSync(path, JSON.stringify(m, null, 2));
    const plan = await planRuns(runs, new Store(store), options);
    expect(plan[1]).toMatchObject({
      status: 'planned',
      reason: 'corrupt: manifest.json (content_hash does not match its outputs)',
    });
    expect(summary(plan)).toEqual(summary(await plans(runs, store)));
  });

  it.each(WAYS)('finds a truncated output, a removed manifest and a removed entry (%s)', async (_, options) => {
    const { runs, store } = await cachedChain();
    const before = await planRuns(runs, new Store(store), NOW);
    const last = before[2].manifest?.outputs[0].name as string;
    truncateSync(join(before[2].dir as string, last), 1);
    let plan = await planRuns(runs, new Store(store), options);
    expect(plan[2]).toMatchObject({ status: 'planned', reason: `corrupt: ${last}` });
    expect(summary(plan)).toEqual(summary(await plans(runs, store)));

    rmSync(join(before[1].dir as string, 'manifest.json'));
    plan = await planRuns(runs, new Store(store), options);
    expect(plan[1]).toMatchObject({ status: 'planned', reason: 'corrupt: manifest.json missing' });
    expect(summary(plan)).toEqual(summary(await plans(runs, store)));
    rmSync(before[0].dir as string, { recursive: true });
    plan = await planRuns(runs, new Store(store), options);
    expect(plan[0]).toMatchObject({ status: 'planned' });
    expect(summary(plan)).toEqual(summary(await plans(runs, store)));
    // The entries found gone left the index.
    expect(ManifestIndex.load(store).has('gen', before[0].key as string)).toBe(false);
  });

  it('serves the same plans when missing, damaged, cut short or of another format, and is rewritten', async () => {
    const { runs, store } = await cachedChain();
    const expected = summary(await plans(runs, store));
    await planRuns(runs, new Store(store), NOW);
    const good = readFileSync(indexPath(store), 'utf8');
    const lines = good.split('\n');
    const damaged = [
      '',
      'garbage\n\0\0\0',
      good.replace('grokpipe manifest index 1', 'grokpipe manifest index 999'),
      good.slice(0, good.length - 40),
      // One character of a content hash changed: the line's CRC no longer holds.
      [
        lines[0],
        lines[1].replace(/\t([0-9a-f])/, (_, c: string) => `\t${c === '0' ? '1' : '0'}`),
        ...lines.slice(2),
      ].join('\n'),
    ];
    for (const text of damaged) {
      for (const [, options] of WAYS) {
        writeFileSync(indexPath(store), text);
        expect(summary(await planRuns(runs, new Store(store), options))).toEqual(expected);
        expect(indexLines(store)).toBe(3);
      }
    }
    rmSync(join(store, '.index'), { recursive: true });
    expect(summary(await planRuns(runs, new Store(store), NOW))).toEqual(expected);
    expect(indexLines(store)).toBe(3);
  });

  it('is left alone by a plan far smaller than it (its manifests are read instead)', async () => {
    const { runs, store } = await cachedChain();
    const before = await planRuns(runs, new Store(store), NOW);
    // Lines of other entries (damaged here: never used), as a store indexed for a large sweep has.
    const large = `${readFileSync(indexPath(store), 'utf8')}${'x\ty\n'.repeat(runs.length * INDEX_BYTES_PER_RUN)}`;
    writeFileSync(indexPath(store), large);
    rmSync(join(before[0].dir as string, 'manifest.json'));
    for (const [, options] of WAYS) {
      const plan = await planRuns(runs, new Store(store), options);
      expect(plan[0]).toMatchObject({ status: 'planned', reason: 'corrupt: manifest.json missing' });
    }
    // Used, it would have dropped the entry whose manifest is gone, and its damaged lines.
    expect(readFileSync(indexPath(store), 'utf8')).toBe(large);
  });

  it('a crash while it is written leaves a usable store, and gc removes what it left', async () => {
    const { runs, store } = await cachedChain();
    const expected = summary(await plans(runs, store));
    await planRuns(runs, new Store(store), NOW);
    // What a process killed while writing the index leaves: a temporary cut short, the index as it was.
    const dead = 2 ** 22 + 12345;
    const tmp = `${indexPath(store)}.${dead}.0badf00d.tmp`;
    writeFileSync(tmp, readFileSync(indexPath(store), 'utf8').slice(0, 100));
    expect(summary(await planRuns(runs, new Store(store), NOW))).toEqual(expected);
    expect((await strayTemporaries(store)).map((t) => t.path)).toContain(tmp);
    expect((await cli(['gc', '--store', store, '--json'])).code).toBe(0);
    expect(existsSync(tmp)).toBe(false);
    expect(summary(await planRuns(runs, new Store(store), NOW))).toEqual(expected);
  });

  it('a crash mid-commit leaves a store whose plans agree with and without the index', async () => {
    const { runs, store, file } = await cachedChain();
    const before = await planRuns(runs, new Store(store), NOW);
    // A process killed while committing `t`: its outputs and manifest still in `.tmp/`, not renamed.
    const dead = 2 ** 22 + 54321;
    const tmp = join(store, '.tmp', `${before[2].key as string}.${dead}.0badf00d`);
    cpSync(before[2].dir as string, tmp, { recursive: true });
    rmSync(before[2].dir as string, { recursive: true });
    const plan = await plans(runs, store);
    expect(plan.map((p) => p.status)).toEqual(['cached', 'cached', 'planned']);
    expect((await cli(['run', file, '--store', store, '--json'])).code).toBe(0);
    expect(existsSync(tmp)).toBe(false);
    expect((await plans(runs, store)).map((p) => p.status)).toEqual(['cached', 'cached', 'cached']);
  });

  it("reads a hit's manifest when first asked for, and says so when it changed since", async () => {
    const { runs, store } = await cachedChain();
    await planRuns(runs, new Store(store), NOW);
    const plan = await planRuns(runs, new Store(store), { ...NOW, parallelCheckFrom: Infinity });
    rmSync(join(plan[0].dir as string, 'manifest.json'));
    expect(() => plan[0].manifest).toThrow(/manifest\.json changed after planning/);
    expect(plan[1].manifest?.key).toBe(plan[1].key);
  });
});

describe('index lines', () => {
  const manifest = {
    stage: 'gen',
    key: 'a'.repeat(64),
    content_hash: 'b'.repeat(64),
    outputs: [],
  } as unknown as Manifest;
  const id = { size: 10, mtimeMs: 1000.5, ctimeMs: 2000.25, ino: 7 };

  it('round-trip through an index, and are not written while racy', () => {
    expect(indexLine(manifest, id, 2000.25 + 2999)).toBeUndefined();
    const line = indexLine(manifest, id, 2000.25 + 3000) as string;
    const dir = tempDir();
    const update = new IndexUpdate(ManifestIndex.empty());
    update.record('gen', manifest.key, line);
    expect(update.save(dir)).toBe(true);
    const index = ManifestIndex.load(dir);
    const found = index.find('gen', manifest.key);
    expect(found?.contentHash).toBe(manifest.content_hash);
    expect(index.entry(found?.line as number)).toEqual({
      line: 1,
      contentHash: manifest.content_hash,
      identity: id,
      outputs: [],
    });
  });

  it('are not written for names holding a tab or a newline', () => {
    expect(indexLine({ ...manifest, stage: 'a\tb' }, id, 1e9)).toBeUndefined();
    expect(indexLine({ ...manifest, key: 'a\nb' }, id, 1e9)).toBeUndefined();
  });
});

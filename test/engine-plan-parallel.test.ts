/**
 * Planning with the outputs of cache hits checked on worker threads (`OutputsCheck`, what
 * `planRuns` does on sweeps of 2,000 runs and more) gives the plan of the lookup by lookup one:
 * on an intact store, and on a store with a truncated output, where it falls back and names the
 * damaged file.
 */
import { truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OutputsCheck } from '../src/engine/cache/outputs-check.js';
import { Store } from '../src/engine/cache/store.js';
import { planRuns } from '../src/engine/explain/plan.js';
import type { PlannedRun } from '../src/engine/explain/plan.js';
import { compilePipeline } from '../src/engine/pipeline/pipeline.js';
import { createRegistry } from '../src/engine/registry.js';
import { CHAIN, cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { fakeStages } from './fixtures/engine-stages.js';

const summary = (plan: PlannedRun[]) => plan.map((p) => [p.run.id, p.status, p.key, p.reason, p.dir ?? null]);

async function cachedChain(): Promise<{ file: string; store: string }> {
  const dir = tempDir();
  const file = writeFileIn(dir, 'p.yaml', CHAIN);
  const store = join(dir, 'store');
  expect((await cli(['run', file, '--store', store, '--json'])).code).toBe(0);
  return { file, store };
}

describe('planning with the outputs checked on worker threads', () => {
  it('equals the lookup by lookup plan on an intact store', async () => {
    const { file, store } = await cachedChain();
    const runs = compilePipeline(file, createRegistry(fakeStages)).runs;
    const sequential = await planRuns(runs, new Store(store), { parallelCheckFrom: Infinity });
    const parallel = await planRuns(runs, new Store(store), { parallelCheckFrom: 0 });
    expect(sequential.map((p) => p.status)).toEqual(['cached', 'cached', 'cached']);
    expect(summary(parallel)).toEqual(summary(sequential));
    expect(parallel.map((p) => p.manifest)).toEqual(sequential.map((p) => p.manifest));
  });

  it('falls back to the lookup by lookup plan when an output is damaged, naming it', async () => {
    const { file, store } = await cachedChain();
    const runs = compilePipeline(file, createRegistry(fakeStages)).runs;
    const before = await planRuns(runs, new Store(store), { parallelCheckFrom: Infinity });
    truncateSync(join(before[0].dir as string, 'values.parquet'), 10);
    const sequential = await planRuns(runs, new Store(store), { parallelCheckFrom: Infinity });
    const parallel = await planRuns(runs, new Store(store), { parallelCheckFrom: 0 });
    expect(parallel[0]).toMatchObject({ status: 'planned', reason: 'corrupt: values.parquet' });
    expect(summary(parallel)).toEqual(summary(sequential));
  });
});

describe('OutputsCheck', () => {
  it('says intact only when every output is a file of its recorded size', async () => {
    const { file, store } = await cachedChain();
    const plan = await planRuns(compilePipeline(file, createRegistry(fakeStages)).runs, new Store(store));
    const check = async (edit?: (outputs: { name: string; bytes: number }[]) => void) => {
      const c = new OutputsCheck(2);
      for (const p of plan) {
        const manifest = structuredClone(p.manifest);
        if (!manifest) throw new Error('not cached');
        edit?.(manifest.outputs as unknown as { name: string; bytes: number }[]);
        c.add(p.dir as string, manifest);
      }
      return c.intact();
    };
    expect(await check()).toBe(true);
    expect(await check((outs) => (outs[0].bytes += 1))).toBe(false);
    expect(await check((outs) => (outs[0].name = 'absent.bin'))).toBe(false);
  });
});

/**
 * Comparing runs: run names (`--name`, per combination with templates), tags (`grokpipe tag`), the git commit in the
 * manifest, and `grokpipe runs` (the differing knobs as columns, `--where`, `--sort`, `--json`,
 * `--csv`, a pipeline's runs whatever `--set` produced them), on the fake stages; then the
 * grokking metrics of `runs` and the report's `--all-runs` on the built-in smoke pipeline.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeReport } from '../src/report/build.js';
import { compilePipeline } from '../src/engine/pipeline/pipeline.js';
import { createRegistry } from '../src/engine/registry.js';
import { Store } from '../src/engine/cache/store.js';
import { resolveColumn } from '../src/runs/knobs.js';
import { builtinStages } from '../src/stages/index.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

/** A sweep of the fake stages: `g` per seed, `s` per factor and seed. */
const SWEEP = `
name: sweep
matrix:
  seed: [0, 1]
stages:
  g:
    uses: gen
    with: { n: 4, seed: "\${{ matrix.seed }}" }
  s:
    uses: scale
    needs: [g]
    with: { factor: 2 }
`;

interface RunsJson {
  knobs: string[];
  runs: {
    name: string | null;
    tags: string[];
    run: string;
    key: string;
    git: { commit: string; dirty: boolean } | null;
    knobs: Record<string, unknown>;
    params: Record<string, unknown>;
    metrics: Record<string, number | null>;
    metrics_from: string | null;
  }[];
}

const runsJson = (r: { stdout: string }) => JSON.parse(r.stdout) as RunsJson;
const manifestOf = (store: string, stage: string, key: string) =>
  JSON.parse(readFileSync(join(store, stage, key, 'manifest.json'), 'utf8')) as { git?: unknown; key: string };

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {
    cwd: dir,
    encoding: 'utf8',
  }).trim();
}

describe('names, tags and the git commit', () => {
  it('--name names each run of the invocation; a template names each combination', async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'p.yaml', SWEEP);
    const store = join(dir, 'store');
    expect((await cli(['run', file, '--store', store, '--name', 'base'])).code).toBe(0);
    let rows = runsJson(await cli(['runs', file, '--store', store, '--stage', 'scale', '--json']));
    expect(rows.runs.map((r) => r.name).sort()).toEqual(['base[seed=0]', 'base[seed=1]']);
    await cli(['run', file, '--store', store, '--name', 'fac${{ vars.f }}-s${{ matrix.seed }}', '--set', 'vars.f=2']);
    rows = runsJson(await cli(['runs', file, '--store', store, '--stage', 'scale', '--json']));
    expect(rows.runs.map((r) => r.name).sort()).toEqual(['fac2-s0', 'fac2-s1']);
    // A bad template is bad input.
    const bad = await cli(['run', file, '--store', store, '--name', 'x${{ matrix.nope }}']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--name x${{ matrix.nope }}: unknown matrix variable "nope" (matrix: seed)');
  });

  it('tags are added and removed by name, key or stage-run id, outside the artifact', async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'p.yaml', SWEEP);
    const store = join(dir, 'store');
    const run = await cli(['run', file, '--store', store, '--json', '--name', 'n${{ matrix.seed }}']);
    const key = run.run('s[seed=1]').key as string;
    const manifestBefore = readFileSync(join(store, 'scale', key, 'manifest.json'), 'utf8');
    expect((await cli(['tag', 'n1', 'good', 'wd', '--store', store, '--stage', 'scale'])).stdout).toBe(
      `scale ${key.slice(0, 12)} (n1): good, wd\n`,
    );
    await cli(['tag', key.slice(0, 8), 'best', '--store', store]);
    await cli(['tag', 's[seed=1]', 'wd', '--remove', '--file', file, '--store', store]);
    const tagged = await cli(['tag', key, 'x', '--store', store, '--json']);
    expect(JSON.parse(tagged.stdout)).toEqual({ stage: 'scale', key, name: 'n1', tags: ['best', 'good', 'x'] });
    // The artifact, its manifest and the run's key are untouched.
    expect(readFileSync(join(store, 'scale', key, 'manifest.json'), 'utf8')).toBe(manifestBefore);
    expect((await cli(['run', file, '--store', store, '--json'])).run('s[seed=1]')).toMatchObject({
      key,
      status: 'cached',
    });
    // Filtering on a tag.
    const rows = runsJson(await cli(['runs', '--store', store, '--stage', 'scale', '--where', 'tag=best', '--json']));
    expect(rows.runs.map((r) => r.key)).toEqual([key]);
    // Errors: a name of two runs, nothing, a malformed tag.
    const twice = await cli(['tag', 'n0', 'x', '--store', store, '--stage', 'nope']);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('names 2 runs');
    expect((await cli(['tag', 'nobody', 'x', '--store', store])).code).toBe(2);
    const bad = await cli(['tag', key, 'a b', '--store', store]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('tag "a b": a tag has no spaces or commas');
  });

  it("the manifest records the pipeline repository's commit and whether it was dirty; keys do not change", async () => {
    const plain = tempDir();
    const outside = writeFileIn(plain, 'p.yaml', SWEEP);
    const a = await cli(['run', outside, '--store', join(plain, 'store'), '--json']);
    expect(manifestOf(join(plain, 'store'), 'gen', a.run('g[seed=0]').key as string).git).toBeUndefined();

    const repo = tempDir('gp-git-');
    git(repo, 'init', '-q');
    const file = writeFileIn(repo, 'p.yaml', SWEEP);
    git(repo, 'add', 'p.yaml');
    git(repo, 'commit', '-qm', 'pipeline');
    const head = git(repo, 'rev-parse', 'HEAD');
    const store = join(repo, 'store');
    const b = await cli(['run', file, '--store', store, '--json']);
    // The same computations as outside the repository: the same keys.
    expect(b.runs().map((r) => r.key)).toEqual(a.runs().map((r) => r.key));
    expect(manifestOf(store, 'gen', b.run('g[seed=0]').key as string).git).toEqual({ commit: head, dirty: false });
    // An edited tracked file makes the next computation dirty.
    writeFileSync(file, SWEEP.replace('n: 4', 'n: 5'));
    const c = await cli(['run', file, '--store', store, '--json']);
    expect(manifestOf(store, 'gen', c.run('g[seed=0]').key as string).git).toEqual({ commit: head, dirty: true });
    const rows = runsJson(await cli(['runs', file, '--store', store, '--stage', 'gen', '--where', 'seed=0', '--json']));
    expect(rows.runs.map((r) => r.git?.dirty)).toEqual([true, false]);
    expect((await cli(['runs', file, '--store', store, '--stage', 'gen'])).stdout).toContain(
      `${head.slice(0, 8)}-dirty`,
    );
  });
});

describe('grokpipe runs', () => {
  it("lists a pipeline's runs whatever --set produced them, the differing knobs as columns", async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'p.yaml', SWEEP);
    const store = join(dir, 'store');
    await cli(['run', file, '--store', store]);
    await cli(['run', file, '--store', store, '--set', 's.with.factor=3,5']);
    // Another pipeline in the same store.
    const other = writeFileIn(dir, 'q.yaml', SWEEP.replace('factor: 2', 'factor: 7'));
    await cli(['run', other, '--store', store]);

    const mine = runsJson(await cli(['runs', file, '--store', store, '--stage', 'scale', '--json']));
    expect(mine.runs).toHaveLength(6);
    expect(mine.knobs).toEqual(['factor', 'gen.seed']);
    expect(new Set(mine.runs.map((r) => r.knobs.factor))).toEqual(new Set([2, 3, 5]));
    expect(mine.runs.find((r) => r.knobs.factor === 3)?.run).toMatch(/^s\[seed=[01],factor=3\]$/);
    expect(mine.runs[0].params).toMatchObject({ mode: 'floor', 'gen.n': 4 });
    const everything = runsJson(await cli(['runs', '--store', store, '--stage', 'scale', '--json']));
    expect(everything.runs).toHaveLength(8);

    // --where on a knob by the last part of its path, with an order; --sort descending.
    const picked = await cli([
      'runs',
      file,
      '--store',
      store,
      '--stage',
      'scale',
      '--where',
      'factor>2',
      '--where',
      'seed=1',
      '--sort=-factor',
      '--json',
    ]);
    expect(runsJson(picked).runs.map((r) => r.knobs.factor)).toEqual([5, 3]);
    expect(runsJson(picked).knobs).toEqual(['factor']);
    // CSV: a header, then one line per run.
    const csv = (await cli(['runs', file, '--store', store, '--stage', 'scale', '--csv', '--sort', 'factor'])).stdout
      .trim()
      .split('\n');
    expect(csv[0]).toMatch(/^name,run,stage,key,date,backend,commit,dirty,tags,factor,gen\.seed,memorise_step,/);
    // Sorted by factor; a run id holding a comma is quoted.
    expect(csv.slice(1).map((l) => /^,"?(s\[[^\]]*\])"?,/.exec(l)?.[1].replace(/seed=\d,?/, ''))).toEqual([
      's[]',
      's[]',
      's[factor=3]',
      's[factor=3]',
      's[factor=5]',
      's[factor=5]',
    ]);
    expect(csv[3]).toMatch(/^,"s\[seed=[01],factor=3\]",scale,/);
    // The text table names the knobs.
    const text = (await cli(['runs', file, '--store', store, '--stage', 'scale'])).stdout;
    expect(text.split('\n')[0]).toMatch(/^key +name +run +factor +gen\.seed +memorise_step/);
    expect(text).toContain('6 runs');
    // Bad queries are bad input.
    const bad = await cli(['runs', '--store', store, '--stage', 'scale', '--where', 'nope=1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--where nope=1: no column "nope"');
    expect(resolveColumn('seed', ['generate.seed', 'seed'])).toEqual({ column: 'seed' });
    expect(resolveColumn('seed', ['generate.seed', 'split.seed'])).toEqual({
      problem: '"seed" is ambiguous: generate.seed, split.seed',
    });
    expect((await cli(['runs', '--store', store, '--stage', 'scale', '--sort', 'zzz'])).code).toBe(2);
    expect((await cli(['runs', '--store', store, '--json', '--csv'])).code).toBe(2);
  });
});

// The smoke pipeline with its `max_steps` made a parameter: two trainings to compare.
const SMOKE = readFileSync(new URL('../pipelines/smoke.yaml', import.meta.url), 'utf8');

describe('runs and the report on the built-in stages', () => {
  it('after runs at two max_steps, lists both with max_steps as a column and their metrics; so does the report', async () => {
    const dir = tempDir('gp-runs-');
    const file = writeFileIn(dir, 'smoke.yaml', SMOKE);
    const store = join(dir, 'artifacts');
    const run = (...extra: string[]) =>
      cli(['run', file, '--store', store, '--json', ...extra], { stages: builtinStages });
    expect((await run()).code).toBe(0);
    expect((await run('--set', 'model.with.max_steps=20')).code).toBe(0);

    const r = await cli(['runs', file, '--store', store, '--json'], { stages: builtinStages });
    expect(r.code, r.stderr).toBe(0);
    const rows = runsJson(r);
    expect(rows.knobs).toEqual(['max_steps']);
    expect(rows.runs.map((x) => x.knobs.max_steps).sort()).toEqual([20, 40]);
    for (const x of rows.runs) {
      expect(x.metrics_from).toMatch(/^evaluate\/[0-9a-f]{64}$/);
      expect(x.metrics.last_step).toBe(x.knobs.max_steps);
      expect(x.metrics.final_ood_inferred).toBeGreaterThanOrEqual(0);
      expect(x.metrics.final_id_inferred).toBeLessThanOrEqual(1);
    }
    const shortest = await cli(['runs', file, '--store', store, '--sort', 'last_step', '--json'], {
      stages: builtinStages,
    });
    expect(runsJson(shortest).runs.map((x) => x.knobs.max_steps)).toEqual([20, 40]);

    // The report of the pipeline as written covers one run; with --all-runs, both.
    const pipeline = compilePipeline(file, createRegistry(builtinStages));
    const plain = await writeReport(pipeline, new Store(store), { out: join(dir, 'plain.html') });
    expect(plain.data.analyses.map((a) => a.id)).toEqual(['report']);
    const all = await writeReport(pipeline, new Store(store), { out: join(dir, 'all.html'), allRuns: true });
    const section = all.data.analyses.find((a) => a.id === 'all-runs');
    expect(section?.knobs).toEqual(['max_steps']);
    expect(section?.runs.map((x) => [x.name, x.status])).toEqual([
      ['max_steps=40', 'analysed'],
      ['max_steps=20', 'analysed'],
    ]);
    expect(section?.analysed).toHaveLength(2);
    const html = readFileSync(all.file, 'utf8');
    expect(html).toContain('Every training run of this pipeline in the store (2)');
    expect(html).toContain('id="analysis-all-runs"');
  });
});

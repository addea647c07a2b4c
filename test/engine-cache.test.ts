import { existsSync, readFileSync, readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { StageDefinition } from '../src/engine/stage.js';
import { CHAIN, cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { calls, fakeStages, gen, resetCalls } from './fixtures/engine-stages.js';

function setup(yaml = CHAIN): { file: string; store: string; dir: string } {
  const dir = tempDir();
  return { dir, file: writeFileIn(dir, 'p.yaml', yaml), store: join(dir, 'store') };
}

beforeEach(() => resetCalls());

describe('caching', () => {
  it('reruns exactly what changed, and nothing on a second run or after flipping back', async () => {
    const { file, store } = setup();
    const run = (...extra: string[]) => cli(['run', file, '--store', store, '--json', ...extra]);

    const first = await run();
    expect(first.code).toBe(0);
    expect(statuses(first)).toEqual({ g: 'ran', s: 'ran', t: 'ran' });
    expect(first.run('g').reason).toBe('no cached entry of stage gen');
    expect(calls).toEqual({ gen: 1, scale: 1, sum: 1 });

    const second = await run();
    expect(statuses(second)).toEqual({ g: 'cached', s: 'cached', t: 'cached' });
    expect(calls).toEqual({ gen: 1, scale: 1, sum: 1 });
    expect(second.runs().map((r) => r.key)).toEqual(first.runs().map((r) => r.key));

    // An upstream knob reruns it and everything downstream.
    const up = await run('--set', 'g.with.seed=2');
    expect(statuses(up)).toEqual({ g: 'ran', s: 'ran', t: 'ran' });
    expect(up.run('g').reason).toBe('with.seed 1 -> 2');
    // A cascade names its root, with the root's own reason.
    expect(up.run('s').reason).toBe('upstream g changed (with.seed 1 -> 2)');
    expect(up.run('t').reason).toBe('upstream g changed (with.seed 1 -> 2)');

    // A downstream knob reruns only downstream.
    const down = await run('--set', 's.with.factor=3');
    expect(statuses(down)).toEqual({ g: 'cached', s: 'ran', t: 'ran' });
    expect(down.run('s').reason).toBe('with.factor 2 -> 3');

    // Flipping back reruns nothing.
    const back = await run();
    expect(statuses(back)).toEqual({ g: 'cached', s: 'cached', t: 'cached' });
    expect(calls).toEqual({ gen: 2, scale: 3, sum: 3 });
  });

  it('early cutoff: a recomputed stage with identical output does not invalidate dependents', async () => {
    const { file, store } = setup();
    const run = (...extra: string[]) => cli(['run', file, '--store', store, '--json', ...extra]);
    await run();
    const mode = await run('--set', 's.with.mode=round');
    expect(statuses(mode)).toEqual({ g: 'cached', s: 'ran', t: 'cached' });
    expect(mode.run('s').reason).toBe('with.mode floor -> round');
    const comment = await run('--set', 'g.with.comment=hello');
    expect(statuses(comment)).toEqual({ g: 'ran', s: 'cached', t: 'cached' });
    expect(calls).toEqual({ gen: 2, scale: 2, sum: 1 });
  });

  it('a new code version reruns the stage; identical output keeps dependents cached', async () => {
    const { file, store } = setup();
    await cli(['run', file, '--store', store, '--json']);
    const gen2: StageDefinition = { ...(gen as unknown as StageDefinition), version: '2' };
    const stages = fakeStages.map((s) => (s.name === 'gen' ? gen2 : s));
    const status = await cli(['status', file, '--store', store, '--json'], { stages });
    expect(status.run('g')).toMatchObject({ status: 'planned', reason: 'code version 1 -> 2' });
    expect(status.run('s')).toMatchObject({
      status: 'planned',
      key: null,
      reason: 'upstream g changed (code version 1 -> 2)',
    });
    const r = await cli(['run', file, '--store', store, '--json'], { stages });
    expect(statuses(r)).toEqual({ g: 'ran', s: 'cached', t: 'cached' });
  });

  it('stage ids are not part of keys: renamed stages hit the cache (across pipelines)', async () => {
    const { file, store, dir } = setup();
    const first = await cli(['run', file, '--store', store, '--json']);
    const renamed = writeFileIn(
      dir,
      'other.yaml',
      CHAIN.replace('name: chain', 'name: other').replaceAll(/\bg\b/g, 'kb').replaceAll(/\bs\b/g, 'facts'),
    );
    const r = await cli(['run', renamed, '--store', store, '--json']);
    expect(statuses(r)).toEqual({ kb: 'cached', facts: 'cached', t: 'cached' });
    expect(r.runs().map((x) => x.key)).toEqual(first.runs().map((x) => x.key));
  });

  it('status explains without computing or writing; cascades name their root', async () => {
    const { file, store } = setup();
    const empty = await cli(['status', file, '--store', store, '--json']);
    expect(empty.code).toBe(0);
    expect(empty.run('g')).toMatchObject({ status: 'planned', reason: 'no cached entry of stage gen', seconds: null });
    expect(empty.run('t')).toMatchObject({ key: null, reason: 'upstream g will run (no cached entry of stage gen)' });
    expect(existsSync(store)).toBe(false);
    await cli(['run', file, '--store', store, '--json']);
    resetCalls();
    const st = await cli([
      'status',
      file,
      '--store',
      store,
      '--json',
      '--set',
      'g.with.seed=3',
      '--set',
      's.with.factor=0.5',
    ]);
    expect(st.run('g')).toMatchObject({ status: 'planned', reason: 'with.seed 1 -> 3' });
    expect(st.run('g').key).toMatch(/^[0-9a-f]{64}$/);
    expect(st.run('s')).toMatchObject({
      key: null,
      reason: 'with.factor 2 -> 0.5; upstream g changed (with.seed 1 -> 3)',
    });
    expect(st.run('t')).toMatchObject({
      key: null,
      reason: 'upstream g changed (with.seed 1 -> 3); upstream s changed (with.factor 2 -> 0.5)',
    });
    const dry = await cli(['run', file, '--store', store, '--json', '--dry-run', '--set', 's.with.factor=3']);
    expect(statuses(dry)).toEqual({ g: 'cached', s: 'planned', t: 'planned' });
    expect(calls).toEqual({});
    const text = await cli(['status', file, '--store', store]);
    expect(text.stdout).toMatch(/^run\s+status\s+key\s+reason$/m);
    expect(text.stdout).toMatch(/^g\s+cached\s+[0-9a-f]{12}$/m);
  });

  it('a damaged artifact is a miss ("corrupt: <file>") and is recomputed', async () => {
    const { file, store } = setup();
    const first = await cli(['run', file, '--store', store, '--json']);
    const dir = join(store, 'gen', first.run('g').key as string);
    truncateSync(join(dir, 'values.parquet'), 10);
    const st = await cli(['status', file, '--store', store, '--json']);
    expect(st.run('g')).toMatchObject({ status: 'planned', reason: 'corrupt: values.parquet' });
    const r = await cli(['run', file, '--store', store, '--json']);
    expect(statuses(r)).toEqual({ g: 'ran', s: 'cached', t: 'cached' });
    expect(r.run('g').reason).toBe('corrupt: values.parquet');
    expect(readFileSync(join(dir, 'values.parquet')).length).toBeGreaterThan(10);
  });

  it('a failing stage: exit 1, no artifact folder, dependents skipped, others run', async () => {
    const { file, store } = setup(`
stages:
  b: { uses: boom }
  after: { uses: sum, needs: [b] }
  g: { uses: gen }
`);
    const r = await cli(['run', file, '--store', store, '--json']);
    expect(r.code).toBe(1);
    expect(statuses(r)).toEqual({ b: 'failed', after: 'skipped', g: 'ran' });
    expect(r.run('b').reason).toContain('boom exploded');
    expect(r.run('after').reason).toBe('upstream b failed');
    expect(existsSync(join(store, 'boom'))).toBe(false);
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
    const human = await cli(['run', file, '--store', store]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^b\s+failed\s+[\d.]+\s+boom exploded/m);
    expect(human.stderr).toContain('[b] failed: boom exploded');
  });

  it('--json prints exactly one object with the documented fields; text mode prints table, leaves and summaries', async () => {
    const { file, store } = setup();
    const r = await cli(['run', file, '--store', store, '--json']);
    const doc = JSON.parse(r.stdout) as { runs: Record<string, unknown>[] };
    expect(Object.keys(doc)).toEqual(['runs']);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    for (const run of doc.runs) {
      expect(Object.keys(run)).toEqual(['id', 'stage', 'key', 'status', 'seconds', 'reason']);
      expect(run.key).toMatch(/^[0-9a-f]{64}$/);
      expect(typeof run.seconds).toBe('number');
    }
    expect(doc.runs.map((x) => [x.id, x.stage])).toEqual([
      ['g', 'gen'],
      ['s', 'scale'],
      ['t', 'sum'],
    ]);
    const text = await cli(['run', file, '--store', store]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^run\s+status\s+seconds\s+reason$/m);
    expect(text.stdout).toMatch(/^t\s+cached\s+[\d.]+$/m);
    const key = r.run('t').key as string;
    expect(text.stdout).toContain(`t: ${join(store, 'sum', key)}`);
    expect(text.stdout).toMatch(/^total = \d+$/m);
  });

  it('manifest: components, inputs, outputs with sizes and hashes, versions, timings', async () => {
    const { file, store } = setup();
    const r = await cli(['run', file, '--store', store, '--json']);
    const s = r.run('s');
    const m = JSON.parse(readFileSync(join(store, 'scale', s.key as string, 'manifest.json'), 'utf8')) as Record<
      string,
      never
    >;
    expect(m).toMatchObject({
      format: 1,
      stage: 'scale',
      key: s.key,
      components: { stage: 'scale', version: '1', inputs: [{ stage: 'gen' }] },
      params: { factor: 2, mode: 'floor' },
      inputs: [{ id: 'g', stage: 'gen', key: r.run('g').key, matrix: {} }],
      outputs: [{ name: 'scaled.parquet', kind: 'table' }],
      pipeline: { file, id: 's' },
    });
    const g = JSON.parse(readFileSync(join(store, 'gen', r.run('g').key as string, 'manifest.json'), 'utf8')) as {
      versions: Record<string, string>;
      info: Record<string, unknown>;
      outputs: { bytes: number; sha256: string; content_hash: string }[];
      timings: { seconds: number };
      host: string;
    };
    expect(g.versions).toMatchObject({ fakelib: '1.2.3', node: process.version });
    expect(g.versions.grokpipe).toMatch(/^\d+\.\d+\.\d+/);
    expect(g.info.rows).toBe(5);
    expect(g.outputs[0].bytes).toBeGreaterThan(0);
    expect(g.outputs[0].sha256).not.toBe(g.outputs[0].content_hash);
    expect(g.timings.seconds).toBeGreaterThanOrEqual(0);
    expect(typeof g.host).toBe('string');
  });
});

describe('matrix', () => {
  const SWEEP = `
matrix:
  n: [3, 5]
  seed: [0, 1]
vars:
  factor: 3
stages:
  g:
    uses: gen
    with: { n: "\${{ matrix.n }}", seed: "\${{ matrix.seed }}", comment: "n=\${{ matrix.n }}" }
  s:
    uses: scale
    needs: [g]
    with: { factor: "\${{ vars.factor }}" }
  t:
    uses: sum
    needs: [s]
  shared:
    uses: gen
    with: { n: 4 }
  shared_scaled:
    uses: scale
    needs: [shared]
  by_seed:
    uses: gen
    with: { seed: "\${{ matrix.seed }}" }
  all:
    uses: collect
    needs: [t]
    across: matrix
`;

  it('expands per combination of the variables each stage depends on, shared stages once', async () => {
    const { file, store } = setup(SWEEP);
    const r = await cli(['run', file, '--store', store, '--json']);
    expect(r.code).toBe(0);
    expect(r.runs().map((x) => x.id)).toEqual([
      'g[n=3,seed=0]',
      'g[n=3,seed=1]',
      'g[n=5,seed=0]',
      'g[n=5,seed=1]',
      's[n=3,seed=0]',
      's[n=3,seed=1]',
      's[n=5,seed=0]',
      's[n=5,seed=1]',
      't[n=3,seed=0]',
      't[n=3,seed=1]',
      't[n=5,seed=0]',
      't[n=5,seed=1]',
      'shared',
      'shared_scaled',
      'by_seed[seed=0]',
      'by_seed[seed=1]',
      'all',
    ]);
    expect(calls.gen).toBe(7);
    const g = JSON.parse(
      readFileSync(join(store, 'gen', r.run('g[n=5,seed=1]').key as string, 'manifest.json'), 'utf8'),
    ) as {
      params: Record<string, unknown>;
    };
    expect(g.params).toEqual({ n: 5, seed: 1, comment: 'n=5' });
    const s = JSON.parse(
      readFileSync(join(store, 'scale', r.run('s[n=3,seed=0]').key as string, 'manifest.json'), 'utf8'),
    ) as {
      params: Record<string, unknown>;
    };
    expect(s.params.factor).toBe(3);
  });

  it('across: matrix gets every run in matrix order, with its matrix values', async () => {
    const { file, store } = setup(SWEEP);
    const r = await cli(['run', file, '--store', store, '--json']);
    const all = JSON.parse(readFileSync(join(store, 'collect', r.run('all').key as string, 'all.json'), 'utf8')) as {
      id: string;
      matrix: Record<string, number>;
    }[];
    expect(all.map((x) => x.id)).toEqual(['t[n=3,seed=0]', 't[n=3,seed=1]', 't[n=5,seed=0]', 't[n=5,seed=1]']);
    expect(all.map((x) => x.matrix)).toEqual([
      { n: 3, seed: 0 },
      { n: 3, seed: 1 },
      { n: 5, seed: 0 },
      { n: 5, seed: 1 },
    ]);
    // Changing one combination's upstream reruns the across stage, naming what changed.
    const more = await cli(['run', file, '--store', store, '--json', '--set', 'vars.factor=4']);
    expect(more.run('all')).toMatchObject({ status: 'ran' });
    expect(more.run('all').reason).toBe(
      'upstream s[n=3,seed=0], s[n=3,seed=1], s[n=5,seed=0] and 1 more changed (with.factor 3 -> 4)',
    );
    expect(more.run('shared')).toMatchObject({ status: 'cached' });
  });

  it('a matrix value added reruns only the new combinations and the across stage', async () => {
    const { file, store } = setup(SWEEP);
    await cli(['run', file, '--store', store, '--json']);
    resetCalls();
    const r = await cli(['run', file, '--store', store, '--json', '--set', 'matrix.seed=[0, 1, 2]']);
    const ran = r
      .runs()
      .filter((x) => x.status === 'ran')
      .map((x) => x.id);
    expect(ran).toEqual([
      'g[n=3,seed=2]',
      'g[n=5,seed=2]',
      's[n=3,seed=2]',
      's[n=5,seed=2]',
      't[n=3,seed=2]',
      't[n=5,seed=2]',
      'by_seed[seed=2]',
      'all',
    ]);
    expect(r.run('all').reason).toBe('new upstream t[n=3,seed=2], t[n=5,seed=2]');
    const fewer = await cli([
      'run',
      file,
      '--store',
      store,
      '--json',
      '--set',
      'matrix.seed=[0]',
      '--set',
      'vars.factor=5',
    ]);
    expect(fewer.run('all').reason).toBe(
      'upstream s[n=3,seed=0], s[n=5,seed=0] changed (with.factor 3 -> 5); 2 upstream runs removed',
    );
  });

  it('independent runs overlap with --jobs 2 (inline executor, async stages)', async () => {
    const { file, store } = setup(`
stages:
  a: { uses: slow, with: { ms: 400, steps: 4, tag: a } }
  b: { uses: slow, with: { ms: 400, steps: 4, tag: b } }
`);
    const r = await cli(['run', file, '--store', store, '--json', '--jobs', '2']);
    expect(r.code).toBe(0);
    const window = (id: string) =>
      (
        JSON.parse(readFileSync(join(store, 'slow', r.run(id).key as string, 'manifest.json'), 'utf8')) as {
          info: { window: number[] };
        }
      ).info.window;
    const [a, b] = [window('a'), window('b')];
    expect(Math.max(a[0], b[0])).toBeLessThan(Math.min(a[1], b[1]));
    expect(r.stderr).toMatch(/\[a\] step \d\/4 loss/);
    // Checkpoint folders are offered to stages and removed once the artifact is committed.
    expect(existsSync(join(store, '.checkpoints', r.run('a').key as string))).toBe(false);
  });
});

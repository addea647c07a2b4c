/**
 * `why` (root causes, also in `run`), `dag` formats, `show` and `ls`, with the fake stages.
 */
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { CHAIN, cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { resetCalls } from './fixtures/engine-stages.js';

const SWEEP = `
matrix:
  seed: [0, 1]
stages:
  g:
    uses: gen
    with: { seed: "\${{ matrix.seed }}" }
  s:
    uses: scale
    needs: [g]
  shared:
    uses: gen
    with: { n: 4 }
  all:
    uses: collect
    needs: [t]
    across: matrix
  t:
    uses: sum
    needs: [s]
`;

interface WhyRun {
  id: string;
  status: string;
  key: string | null;
  reason: string;
  roots: { id: string; reason: string }[];
  environment: string[];
}

function setup(yaml = CHAIN): { file: string; store: string; dir: string } {
  const dir = tempDir('gp-why-');
  return { dir, file: writeFileIn(dir, 'p.yaml', yaml), store: join(dir, 'store') };
}

beforeEach(() => resetCalls());

describe('why', () => {
  it('names the root cause of a cascade, the same in why, status and run', async () => {
    const { file, store } = setup();
    await cli(['run', file, '--store', store, '--json']);
    const sets = ['--set', 'g.with.seed=2', '--set', 's.with.factor=3'];
    const why = await cli(['why', file, '--store', store, ...sets]);
    expect(why.code).toBe(0);
    expect(why.stdout).toBe(
      [
        'g: with.seed 1 -> 2',
        's: with.factor 2 -> 3; upstream g changed (with.seed 1 -> 2)',
        't: upstream g changed (with.seed 1 -> 2); upstream s changed (with.factor 2 -> 3)',
        '',
      ].join('\n'),
    );
    const json = await cli(['why', file, '--store', store, '--json', ...sets]);
    const runs = (JSON.parse(json.stdout) as { runs: WhyRun[] }).runs;
    expect(runs.find((r) => r.id === 't')?.roots).toEqual([
      { id: 'g', reason: 'with.seed 1 -> 2' },
      { id: 's', reason: 'with.factor 2 -> 3' },
    ]);
    // `run` prints the same reasons beside the runs it runs.
    const run = await cli(['run', file, '--store', store, '--json', ...sets]);
    expect(run.run('s').reason).toBe('with.factor 2 -> 3; upstream g changed (with.seed 1 -> 2)');
    expect(run.run('t').reason).toBe('upstream g changed (with.seed 1 -> 2); upstream s changed (with.factor 2 -> 3)');
    const again = await cli(['why', file, '--store', store, ...sets]);
    expect(again.stdout).toBe('nothing would recompute: all 3 runs are cached\n');
  });

  it('traces a change through cached entries: upstream changed (with.seed 2 -> 1)', async () => {
    const { file, store } = setup();
    await cli(['run', file, '--store', store, '--json']);
    await cli(['run', file, '--store', store, '--json', '--set', 'g.with.seed=2', '--set', 's.with.factor=3']);
    // g (seed 1) is cached, s with factor 3 over it is not; its nearest entry read g with seed 2.
    const why = await cli(['why', file, 's', '--store', store, '--set', 's.with.factor=3']);
    expect(why.stdout).toBe('s: upstream g changed (with.seed 2 -> 1)\n');
    const r = await cli(['run', file, '--store', store, '--json', '--set', 's.with.factor=3']);
    expect(statuses(r)).toEqual({ g: 'cached', s: 'ran', t: 'ran' });
    expect(r.run('s').reason).toBe('upstream g changed (with.seed 2 -> 1)');
    expect(r.run('t').reason).toBe('upstream s changed (upstream g: with.seed 2 -> 1)');
  });

  it('one run or one stage; unknown names are bad input (exit 2)', async () => {
    const { file, store } = setup(SWEEP);
    await cli(['run', file, '--store', store, '--json']);
    const cached = await cli(['why', file, 'g[seed=1]', '--store', store]);
    expect(cached.stdout).toMatch(/^g\[seed=1\]: cached \([0-9a-f]{12}\)$/m);
    const stage = await cli(['why', file, 's', '--store', store, '--set', 's.with.factor=5']);
    expect(stage.stdout).toBe('s[seed=0]: with.factor 2 -> 5\ns[seed=1]: with.factor 2 -> 5\n');
    const bad = await cli(['why', file, 'nope', '--store', store]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('no stage run or stage "nope"');
  });

  it('reports a backend difference against the nearest entry (not part of the key)', async () => {
    const { file, store } = setup(`
stages:
  f: { uses: fit, with: { steps: 10 } }
`);
    const first = await cli(['run', file, '--store', store, '--json', '--backend', 'wasm']);
    expect(first.code).toBe(0);
    const planned = await cli(['why', file, '--store', store, '--backend', 'cpu', '--set', 'f.with.steps=20']);
    expect(planned.stdout).toBe('f: with.steps 10 -> 20 [not in key: backend wasm -> cpu]\n');
    // A cached entry computed on another backend is listed even though nothing would recompute.
    const cached = await cli(['why', file, '--store', store, '--backend', 'cpu', '--json']);
    const runs = (JSON.parse(cached.stdout) as { runs: WhyRun[] }).runs;
    expect(runs).toMatchObject([{ id: 'f', status: 'cached', environment: ['backend wasm -> cpu'] }]);
    const same = await cli(['why', file, '--store', store, '--backend', 'wasm']);
    expect(same.stdout).toBe('nothing would recompute: all 1 runs are cached\n');
    // Not part of the key: the run is cached whatever the backend.
    const run = await cli(['run', file, '--store', store, '--json', '--backend', 'cpu']);
    expect(run.run('f').status).toBe('cached');
  });
});

describe('dag', () => {
  it('text, mermaid, dot and json: each run once, shared stages once, edges input -> run', async () => {
    const { file } = setup(SWEEP);
    const text = await cli(['dag', file]);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(
      [
        'g[seed=0] (gen)',
        'g[seed=1] (gen)',
        's[seed=0] (scale) <- g[seed=0]',
        's[seed=1] (scale) <- g[seed=1]',
        'shared (gen)',
        't[seed=0] (sum) <- s[seed=0]',
        't[seed=1] (sum) <- s[seed=1]',
        'all (collect, across matrix) <- t[seed=0], t[seed=1]',
        '',
      ].join('\n'),
    );
    const mermaid = (await cli(['dag', file, '--format', 'mermaid'])).stdout;
    expect(mermaid.split('\n')[0]).toBe('flowchart LR');
    expect(mermaid.match(/\["shared<br\/>/g)).toHaveLength(1);
    expect(mermaid.match(/ --> /g)).toHaveLength(6);
    expect(mermaid).toContain('n0["g[seed=0]<br/><small>gen</small>"]');
    const dot = (await cli(['dag', file, '--format', 'dot'])).stdout;
    expect(dot).toMatch(/^digraph grokpipe \{/);
    expect(dot).toContain('"t[seed=1]" -> "all";');
    expect(dot).toContain('"shared" [label="shared\\n(gen)"];');
    expect(dot.match(/ -> /g)).toHaveLength(6);
    const json = JSON.parse((await cli(['dag', file, '--json'])).stdout) as {
      nodes: { id: string }[];
      edges: string[][];
    };
    expect(json.nodes.map((n) => n.id)).toHaveLength(8);
    expect(json.edges).toContainEqual(['t[seed=0]', 'all']);
    const bad = await cli(['dag', file, '--format', 'png']);
    expect(bad.code).toBe(2);
  });
});

describe('show and ls', () => {
  it('show: by stage run (with --file), key and key prefix; manifest and head of each table', async () => {
    const { file, store } = setup();
    const r = await cli(['run', file, '--store', store, '--json']);
    const key = r.run('g').key as string;
    const byRun = await cli(['show', 'g', '--file', file, '--store', store, '--rows', '2']);
    expect(byRun.code).toBe(0);
    expect(byRun.stdout).toContain(`gen ${key}`);
    expect(byRun.stdout).toMatch(/^params\s+\{"n":5,"seed":1,"comment":""\}$/m);
    expect(byRun.stdout).toMatch(/^values\.parquet \(5 rows; v INT32\)$/m);
    expect(byRun.stdout).toMatch(/^ {2}v\n {2}1\n {2}8\n {2}\.\.\. 3 more rows$/m);
    const byKey = await cli(['show', key, '--store', store]);
    expect(byKey.stdout).toBe(
      byRun.stdout.replace(/ {2}\.\.\. 3 more rows\n/, '').replace(/^ {2}8\n/m, '  8\n  2\n  9\n  3\n'),
    );
    const json = JSON.parse(
      (await cli(['show', key.slice(0, 8), '--store', store, '--json', '--rows', '3'])).stdout,
    ) as {
      manifest: { key: string };
      tables: { name: string; rows: number; head: { v: number }[] }[];
    };
    expect(json.manifest.key).toBe(key);
    expect(json.tables).toEqual([
      {
        name: 'values.parquet',
        rows: 5,
        columns: [{ name: 'v', type: 'INT32' }],
        head: [{ v: 1 }, { v: 8 }, { v: 2 }],
      },
    ]);
    const file2 = await cli(['show', r.run('t').key as string, '--store', store]);
    expect(file2.stdout).toMatch(/sum\.json\s+file/);
    expect(await cli(['show', 'g', '--store', store]).then((x) => [x.code, x.stderr.trim()])).toEqual([
      2,
      'g: not a key or key prefix (4 to 64 hex digits); to show a stage run, give its pipeline with --file <pipeline.yaml>',
    ]);
    const missing = await cli(['show', 'ffff', '--store', store]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no entry');
    const notCached = await cli(['show', 'g', '--file', file, '--store', store, '--set', 'g.with.seed=9']);
    expect(notCached.code).toBe(2);
    expect(notCached.stderr).toContain('g is not in the store (with.seed 1 -> 9)');
  });

  it('ls: stage, key, size, age and the pipelines that use each entry', async () => {
    const { file, store, dir } = setup();
    const r = await cli(['run', file, '--store', store, '--json']);
    const other = writeFileIn(
      dir,
      'other.yaml',
      CHAIN.replace('name: chain', 'name: other').replace('factor: 2', 'factor: 3'),
    );
    await cli(['run', other, '--store', store, '--json']);
    // An entry not used for two days.
    const old = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(join(store, 'sum', r.run('t').key as string), old, old);
    const json = JSON.parse((await cli(['ls', '--store', store, '--json'])).stdout) as {
      entries: {
        stage: string;
        key: string;
        bytes: number;
        age_seconds: number;
        pipelines: string[];
        damaged: boolean;
      }[];
    };
    expect(json.entries.map((e) => e.stage)).toEqual(['gen', 'scale', 'scale', 'sum', 'sum']);
    const g = json.entries.find((e) => e.key === r.run('g').key);
    expect(g?.pipelines).toEqual([file, other].sort());
    expect(g?.bytes).toBeGreaterThan(100);
    const t = json.entries.find((e) => e.key === r.run('t').key);
    expect(t?.pipelines).toEqual([file]);
    expect(t?.age_seconds).toBeGreaterThanOrEqual(2 * 86_400 - 5);
    const text = await cli(['ls', '--store', store]);
    expect(text.stdout).toMatch(/^stage\s+key\s+size\s+age\s+pipelines$/m);
    expect(text.stdout).toMatch(
      new RegExp(
        `^sum\\s+${(r.run('t').key as string).slice(0, 12)}\\s+[\\d.]+ k?B\\s+2d\\s+${file.replaceAll('/', '\\/')}$`,
        'm',
      ),
    );
    expect(text.stdout).toMatch(/^5 entries, [\d.]+ kB$/m);
    expect((await cli(['ls', '--store', join(dir, 'none')])).stdout).toBe('the store is empty\n');
  });
});

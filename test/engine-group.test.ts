/**
 * Grouped runs (`StageDefinition.group`, `--ensemble`): the fake stage `ens` may run members of
 * equal `width` together. Runs with equal group keys share one job (in this process, in one worker
 * process, as one SLURM array task), runs with an undefined key and `--ensemble off` run alone,
 * `--ensemble-max` bounds a group, each member commits exactly what it would alone, a member's
 * failure leaves the others committed, and a rejected group fails every member.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { balancedChunks, Gatherer } from '../src/engine/gather.js';
import type { StageRun } from '../src/engine/pipeline/expand.js';
import { fakeCliCommand } from './fixtures/engine-cli.js';
import { cli as cliOf, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import type { CliResult, JsonRun } from './fixtures/engine-harness.js';
import { calls, ens, ensGroups, fakeStagesWithGroups, resetCalls } from './fixtures/engine-stages.js';
import { fakeSlurm } from './fixtures/slurm-fake.js';

/** Three seeds at two widths: two groups of three. */
const SWEEP = `
matrix:
  seed: [0, 1, 2]
  width: [4, 8]
stages:
  g: { uses: gen, with: { n: 3, seed: "\${{ matrix.seed }}" } }
  e: { uses: ens, needs: [g], with: { width: "\${{ matrix.width }}", seed: "\${{ matrix.seed }}" } }
`;

/** `ens` runs of the given seeds, each with `extra` fields. */
function ensPipeline(seeds: number[], extra = ''): string {
  return `
matrix:
  seed: [${seeds.join(', ')}]
stages:
  e: { uses: ens, with: { width: 4, seed: "\${{ matrix.seed }}"${extra} } }
`;
}

/** `main(args)` in this process with the fake stage types and `ens`. */
function cli(args: string[], deps: Parameters<typeof cliOf>[1] = {}): Promise<CliResult> {
  return cliOf(args, { stages: fakeStagesWithGroups, ...deps });
}

function setup(yaml: string): { dir: string; file: string; store: string } {
  const dir = tempDir('gp-group-');
  return { dir, file: writeFileIn(dir, 'p.yaml', yaml), store: join(dir, 'store') };
}

type Manifest = Record<string, unknown> & { info: Record<string, unknown> };

function manifestOf(store: string, run: JsonRun): Manifest {
  return JSON.parse(readFileSync(join(store, run.stage, run.key as string, 'manifest.json'), 'utf8')) as Manifest;
}

/** A manifest without what differs between any two executions (times, host, the group entry). */
function comparable(m: Manifest): Manifest {
  const { timings: _t, host: _h, environment: _e, info, ...rest } = m;
  const { group_size: _g, ...ownInfo } = info;
  return { ...rest, info: ownInfo };
}

function ensRuns(r: CliResult): JsonRun[] {
  return r.runs().filter((x) => x.stage === 'ens');
}

beforeEach(() => resetCalls());

describe('grouped runs in this process', () => {
  it('runs with equal group keys share a job; each member commits what it commits alone', async () => {
    const { file, store, dir } = setup(SWEEP);
    const r = await cli(['run', file, '--store', store, '--jobs', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(calls['ens-group']).toBe(2);
    expect(calls.ens).toBeUndefined();
    expect(ensGroups).toEqual([3, 3]);
    for (const run of ensRuns(r)) {
      expect(run.status).toBe('ran');
      expect((run as JsonRun & { group?: number }).group).toBe(3);
      expect(manifestOf(store, run).info.group_size).toBe(3);
    }
    expect(r.stderr).toContain('running in a group of 3: e[seed=0,width=4], e[seed=1,width=4], e[seed=2,width=4]');

    const soloStore = join(dir, 'solo');
    const solo = await cli(['run', file, '--store', soloStore, '--jobs', '1', '--json', '--ensemble', 'off']);
    expect(solo.code, solo.stderr).toBe(0);
    expect(calls.ens).toBe(6);
    expect(calls['ens-group']).toBe(2);
    for (const run of ensRuns(solo)) {
      expect((run as JsonRun & { group?: number }).group).toBeUndefined();
      const grouped = r.run(run.id);
      expect(grouped.key).toBe(run.key);
      const alone = manifestOf(soloStore, run);
      expect(alone.info.group_size).toBeUndefined();
      expect(comparable(manifestOf(store, grouped))).toEqual(comparable(alone));
      for (const f of ['weights.bin', 'curve.parquet']) {
        const a = readFileSync(join(store, 'ens', run.key as string, f));
        expect(a.equals(readFileSync(join(soloStore, 'ens', run.key as string, f)))).toBe(true);
      }
    }
    // Keys are unchanged: the grouped store is fully cached for a solo rerun, and the other way round.
    const again = await cli(['run', file, '--store', store, '--json', '--ensemble', 'off']);
    expect(new Set(Object.values(statuses(again)))).toEqual(new Set(['cached']));
    const status = await cli(['status', file, '--store', soloStore, '--json']);
    expect(new Set(Object.values(statuses(status)))).toEqual(new Set(['cached']));
  });

  it('a run whose group key is undefined runs alone; --ensemble off runs every run alone', async () => {
    const alone = setup(ensPipeline([0, 1, 2], ', alone: true'));
    const r = await cli(['run', alone.file, '--store', alone.store, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(calls.ens).toBe(3);
    expect(calls['ens-group']).toBeUndefined();

    resetCalls();
    const off = setup(ensPipeline([0, 1, 2]));
    const o = await cli(['run', off.file, '--store', off.store, '--json', '--ensemble', 'off']);
    expect(o.code, o.stderr).toBe(0);
    expect(calls.ens).toBe(3);
    expect(calls['ens-group']).toBeUndefined();
  });

  it('--ensemble-max bounds a group; sizes are balanced', async () => {
    const { file, store } = setup(ensPipeline([0, 1, 2, 3, 4]));
    const r = await cli(['run', file, '--store', store, '--jobs', '1', '--json', '--ensemble-max', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(ensGroups).toEqual([2, 2]);
    expect(calls.ens).toBe(1);
    expect(ensRuns(r).map((x) => (x as JsonRun & { group?: number }).group)).toEqual([2, 2, 2, 2, undefined]);
    const bad = await cli(['run', file, '--store', store, '--ensemble-max', '0']);
    expect(bad.code).toBe(2);
  });

  it("a member's failure fails it alone: the others commit, a rerun finds them cached", async () => {
    const { file, store } = setup(ensPipeline([0, 1, 2], ', fail_seed: 1'));
    const r = await cli(['run', file, '--store', store, '--jobs', '1', '--json']);
    expect(r.code).toBe(1);
    expect(ensGroups).toEqual([3]);
    const byStatus = Object.fromEntries(ensRuns(r).map((x) => [x.id, [x.status, x.reason]]));
    expect(byStatus['e[seed=1]']).toEqual(['failed', 'member seed 1 failed']);
    expect(byStatus['e[seed=0]'][0]).toBe('ran');
    expect(byStatus['e[seed=2]'][0]).toBe('ran');
    expect(readdirSync(join(store, '.tmp'))).toEqual([]);
    const again = await cli(['run', file, '--store', store, '--json']);
    expect(statuses(again)).toEqual({ 'e[seed=0]': 'cached', 'e[seed=1]': 'failed', 'e[seed=2]': 'cached' });
  });

  it('a rejected group fails every member with the reason', async () => {
    const { file, store } = setup(ensPipeline([0, 1], ', reject: true'));
    const r = await cli(['run', file, '--store', store, '--jobs', '1', '--json']);
    expect(r.code).toBe(1);
    for (const run of ensRuns(r)) {
      expect(run.status).toBe('failed');
      expect(run.reason).toBe('the group was rejected');
    }
    expect(existsSync(join(store, 'ens'))).toBe(false);
  });

  it('runs of one key in a group execute once; the repeat reuses it', async () => {
    // gen's comment changes its key, not its content: e's two runs have one key (early cutoff).
    const { file, store } = setup(`
matrix:
  c: [a, b]
stages:
  g: { uses: gen, with: { n: 3, comment: "\${{ matrix.c }}" } }
  e: { uses: ens, needs: [g], with: { width: 4 } }
`);
    const r = await cli(['run', file, '--store', store, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(ensRuns(r).map((x) => x.status)).toEqual(['ran', 'cached']);
    expect(calls.ens).toBe(1);
    expect(calls['ens-group']).toBeUndefined();
  });

  it('verify recomputes a group as one job and finds every member equal', async () => {
    const { file, store } = setup(SWEEP);
    expect((await cli(['run', file, '--store', store, '--json'])).code).toBe(0);
    resetCalls();
    const v = await cli(['verify', file, '--store', store, '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(ensGroups).toEqual([3, 3]);
    const off = await cli(['verify', file, '--store', store, '--json', '--ensemble', 'off']);
    expect(off.code).toBe(0);
    expect(calls.ens).toBe(6);
  });
});

describe('grouped runs in worker processes and SLURM tasks', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['PATH', 'FAKE_SLURM_DIR', 'GP_FAKE_ENS_LOG']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('the process executor runs a group in one worker; groups fill the --jobs slots', async () => {
    const { dir, file, store } = setup(ensPipeline([0, 1, 2, 3]));
    const log = join(dir, 'ens.log');
    const [node, ...prefix] = fakeCliCommand();
    const driver = execa(node, [...prefix, 'run', file, '--store', store, '--jobs', '2', '--json'], {
      reject: false,
      env: { GP_FAKE_ENS_LOG: log },
    });
    const r = await driver;
    expect(r.exitCode, r.stderr).toBe(0);
    // Four runs, two slots: two groups of two, each in a worker of its own.
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    expect(lines.map(([mode, , seeds]) => `${mode} ${seeds}`).sort()).toEqual(['group 0,1', 'group 2,3']);
    const pids = lines.map(([, pid]) => Number(pid));
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(driver.pid);
    const runs = (JSON.parse(r.stdout) as { runs: (JsonRun & { group?: number })[] }).runs;
    expect(runs.map((x) => [x.status, x.group])).toEqual([
      ['ran', 2],
      ['ran', 2],
      ['ran', 2],
      ['ran', 2],
    ]);
  });

  it('SLURM runs a group as one array task, with the content hashes of solo runs', async () => {
    const fake = fakeSlurm();
    process.env.PATH = `${fake.bin}:${saved.PATH ?? ''}`;
    process.env.FAKE_SLURM_DIR = fake.dir;
    const { dir, file, store } = setup(SWEEP);
    const worker = { workerCommand: [...fakeCliCommand(), 'exec-job'] };
    const r = await cli(
      ['run', file, '--store', store, '--executor', 'slurm', '--slurm-poll', '0.2', '--json'],
      worker,
    );
    expect(r.code, r.stderr).toBe(0);
    const sbatch = fake.calls().filter((c) => c.startsWith('sbatch --parsable'));
    // The ens runs' wave: two groups, two array tasks.
    expect(sbatch.at(-1)).toMatch(/--array=0-1 /);
    const script = readFileSync(sbatch.at(-1)?.split(' ').at(-1) as string, 'utf8');
    expect(script.match(/^ {2}\d\) set -- /gm)).toHaveLength(2);
    for (const run of ensRuns(r)) expect([run.status, (run as JsonRun & { group?: number }).group]).toEqual(['ran', 3]);

    const local = await cli(['run', file, '--store', join(dir, 'local'), '--json', '--ensemble', 'off']);
    for (const run of ensRuns(local)) {
      expect(comparable(manifestOf(store, r.run(run.id)))).toMatchObject({
        key: run.key,
        content_hash: manifestOf(join(dir, 'local'), run).content_hash,
      });
    }
  });
});

describe('the gathering rule', () => {
  it('balanced chunks: ⌈n / max⌉ consecutive chunks, sizes differing by at most one', () => {
    expect(balancedChunks([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 8)).toEqual([
      [1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10],
    ]);
    expect(balancedChunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(balancedChunks([1, 2, 3], 8)).toEqual([[1, 2, 3]]);
    expect(balancedChunks([], 8)).toEqual([]);
    // At least `least` chunks (job slots to fill), never more than the items.
    expect(balancedChunks([1, 2, 3, 4, 5, 6, 7, 8], 8, 2)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(balancedChunks([1, 2, 3], 8, 2)).toEqual([[1, 2], [3]]);
    expect(balancedChunks([1, 2], 8, 4)).toEqual([[1], [2]]);
  });

  it('forms groups when the last run of a stage id arrives, in pipeline order whatever the arrival order', async () => {
    const run = (id: string, stageId = 'e'): StageRun =>
      ({ id, stageId, stage: ens, matrix: {}, params: {}, inputs: [], across: false }) as StageRun;
    const runs = [run('a'), run('b'), run('c'), run('d'), run('x', 'other')];
    const launched: string[][] = [];
    const gather = new Gatherer<string, string>(runs, { maxMembers: 8 }, (members) => {
      launched.push([...members]);
      return members.map((m) => Promise.resolve(`${m}!`));
    });
    const c = gather.join(runs[2], 'c', 'k');
    const a = gather.join(runs[0], 'a', 'k');
    gather.pass(runs[4]);
    expect(launched).toEqual([]);
    const d = gather.join(runs[3], 'd', 'other key');
    expect(launched).toEqual([]);
    gather.pass(runs[1]);
    expect(launched).toEqual([['a', 'c'], ['d']]);
    expect(await Promise.all([a, c, d])).toEqual(['a!', 'c!', 'd!']);
    expect(() => gather.join(runs[0], 'a', 'k')).toThrow(/cannot join/);
  });
});

/**
 * `--executor slurm` on a real single-node SLURM cluster (scripts/slurm-local.sh). Runs only with
 * GROKPIPE_SLURM=1 (CI sets it); the cluster is started here if it is not running (idempotent).
 * A small sweep of the fake stages must give the same keys and content hashes as a local run; a
 * failing task must be reported with its log, its dependents skipped and the rest finished.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { fakeCliCommand } from './fixtures/engine-cli.js';
import { cli as cliOf, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { fakeStagesWithGroups } from './fixtures/engine-stages.js';
import type { CliResult } from './fixtures/engine-harness.js';

const enabled = process.env.GROKPIPE_SLURM === '1';
if (!enabled)
  console.warn(
    'slurm-integration: skipped (set GROKPIPE_SLURM=1 to run it; it starts a local cluster with scripts/slurm-local.sh)',
  );

const worker = { workerCommand: [...fakeCliCommand(), 'exec-job'] };

/** `main(args)` in this process with the fake stage types and `ens` (grouped runs). */
function cli(args: string[], deps: Parameters<typeof cliOf>[1] = {}): Promise<CliResult> {
  return cliOf(args, { stages: fakeStagesWithGroups, ...deps });
}
const SLURM = ['--executor', 'slurm', '--slurm-poll', '0.3', '--json'];

const SWEEP = `
matrix:
  seed: [0, 1, 2]
stages:
  g: { uses: gen, with: { n: 6, seed: "\${{ matrix.seed }}" } }
  s: { uses: scale, needs: [g], with: { factor: 3 } }
  t: { uses: sum, needs: [s] }
  all: { uses: collect, needs: [t], across: matrix }
`;

function contentHashes(r: CliResult, store: string): Record<string, string> {
  return Object.fromEntries(
    r.runs().map((x) => {
      const m = JSON.parse(readFileSync(join(store, x.stage, x.key as string, 'manifest.json'), 'utf8')) as {
        content_hash: string;
      };
      return [x.id, `${x.key as string}:${m.content_hash}`];
    }),
  );
}

describe.skipIf(!enabled)('slurm executor on a local SLURM cluster', () => {
  beforeAll(async () => {
    const r = await execa('bash', ['scripts/slurm-local.sh', 'start'], { timeout: 240_000 });
    process.env.SLURM_CONF = r.stdout.trim().split('\n').pop();
  }, 300_000);

  it('a sweep gives the same content hashes as a local run', async () => {
    const dir = tempDir('gp-slurm-it-');
    const file = writeFileIn(dir, 'sweep.yaml', SWEEP);
    const store = join(dir, 'slurm-store');
    const r = await cli(['run', file, '--store', store, ...SLURM, '--slurm-array-limit', '4'], worker);
    expect(r.code, r.stderr).toBe(0);
    expect(new Set(Object.values(statuses(r)))).toEqual(new Set(['ran']));
    const localStore = join(dir, 'local-store');
    const local = await cli(['run', file, '--store', localStore, '--json']);
    expect(local.code).toBe(0);
    expect(contentHashes(r, store)).toEqual(contentHashes(local, localStore));
    const again = await cli(['run', file, '--store', store, ...SLURM], worker);
    expect(new Set(Object.values(statuses(again)))).toEqual(new Set(['cached']));
  });

  it('a failing task is reported with its log; its dependents are skipped, the others finish', async () => {
    const dir = tempDir('gp-slurm-it-');
    const file = writeFileIn(
      dir,
      'p.yaml',
      `
stages:
  g: { uses: gen, with: { seed: 7 } }
  s: { uses: scale, needs: [g] }
  x: { uses: boom }
  after: { uses: collect, needs: [x] }
`,
    );
    const store = join(dir, 'store');
    const r = await cli(['run', file, '--store', store, ...SLURM], worker);
    expect(r.code).toBe(1);
    expect(statuses(r)).toEqual({ g: 'ran', s: 'ran', x: 'failed', after: 'skipped' });
    const log = /\(log: (\S+\/\.slurm\/\d+_\d+\.log)\)/.exec(r.run('x').reason)?.[1] as string;
    expect(r.run('x').reason).toContain('boom exploded');
    expect(existsSync(log)).toBe(true);
    expect(readFileSync(log, 'utf8')).toContain('boom exploded');
  });

  it('runs that share a job train as one array task, with the content hashes of solo local runs', async () => {
    const dir = tempDir('gp-slurm-it-');
    const file = writeFileIn(
      dir,
      'p.yaml',
      `
matrix:
  seed: [0, 1, 2]
stages:
  g: { uses: gen, with: { n: 4, seed: "\${{ matrix.seed }}" } }
  e: { uses: ens, needs: [g], with: { width: 5, seed: "\${{ matrix.seed }}", fail_seed: 2 } }
`,
    );
    const store = join(dir, 'slurm-store');
    const r = await cli(['run', file, '--store', store, ...SLURM], worker);
    expect(r.code).toBe(1);
    const ens = r.runs().filter((x) => x.stage === 'ens');
    expect(ens.map((x) => [x.id, x.status, (x as typeof x & { group?: number }).group])).toEqual([
      ['e[seed=0]', 'ran', 3],
      ['e[seed=1]', 'ran', 3],
      ['e[seed=2]', 'failed', 3],
    ]);
    // One array task ran the group; its log names every member's lines.
    const log = /\(log: (\S+\/\.slurm\/\d+_\d+\.log)\)/.exec(r.run('e[seed=2]').reason)?.[1] as string;
    expect(readFileSync(log, 'utf8')).toContain('[e[seed=2]] failed: member seed 2 failed');
    const waves = readdirSync(join(store, '.slurm'))
      .filter((f) => /^wave-\d+-\d+\.sh$/.test(f))
      .sort((a, b) => Number(/(\d+)\.sh$/.exec(a)?.[1]) - Number(/(\d+)\.sh$/.exec(b)?.[1]));
    const last = readFileSync(join(store, '.slurm', waves.at(-1) as string), 'utf8');
    expect(last.match(/^ {2}\d\) set -- /gm)).toHaveLength(1);
    const localStore = join(dir, 'local-store');
    const local = await cli(['run', file, '--store', localStore, '--json', '--ensemble', 'off']);
    expect(local.code).toBe(1);
    const ran = (x: CliResult, at: string): Record<string, string> => {
      const done = x.runs().filter((y) => y.status === 'ran');
      return contentHashes({ ...x, runs: () => done }, at);
    };
    expect(Object.keys(ran(r, store))).toHaveLength(5);
    expect(ran(r, store)).toEqual(ran(local, localStore));
  });
});

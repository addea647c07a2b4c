/**
 * Prefix reuse in the engine, with the fake stage `walk` (`continues`: a longer walk continues a
 * shorter one of the same seed): which cached run is handed over as `ctx.continueFrom` (same
 * stage, version and inputs; the stage's choice; the furthest; never a damaged one), what `why`,
 * `run` and the manifest say, and that the result is the one computed from scratch.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { fakeStages, resetCalls, walk, walked } from './fixtures/engine-stages.js';

/** The fake stages and `walk` (kept out of `fakeStages`, whose list other tests print). */
const stages = [...fakeStages, walk];

const WALK = `
name: walk
stages:
  g:
    uses: gen
    with: { n: 5, seed: 1 }
  w:
    uses: walk
    needs: [g]
    with: { steps: 3, seed: 2 }
`;

interface Manifest {
  key: string;
  content_hash: string;
  info: Record<string, unknown>;
}

function setup(): { file: string; store: string; dir: string } {
  const dir = tempDir('gp-continue-');
  return { dir, file: writeFileIn(dir, 'p.yaml', WALK), store: join(dir, 'store') };
}

/** Runs the pipeline with `sets`; returns the walk run's record and manifest. */
async function runWalk(file: string, store: string, sets: string[] = []) {
  const r = await cli(['run', file, '--store', store, '--json', ...sets.flatMap((s) => ['--set', s])], { stages });
  expect(r.code, r.stderr).toBe(0);
  const w = r.run('w');
  const manifest = JSON.parse(readFileSync(join(store, 'walk', w.key as string, 'manifest.json'), 'utf8')) as Manifest;
  return { run: w, manifest };
}

beforeEach(() => {
  resetCalls();
  walked.steps = 0;
});

describe('prefix reuse', () => {
  it('continues the cached shorter run, computes only the extra steps, and ends as from scratch', async () => {
    const { file, store, dir } = setup();
    const short = await runWalk(file, store);
    expect(walked.steps).toBe(3);
    const why = await cli(['why', file, '--store', store, '--set', 'w.with.steps=7'], { stages });
    expect(why.stdout).toContain(`w: with.steps 3 -> 7; will continue from ${short.run.key?.slice(0, 12)} at step 3`);

    walked.steps = 0;
    const long = await runWalk(file, store, ['w.with.steps=7']);
    expect(long.run.status).toBe('ran');
    expect(long.run.reason).toBe(`with.steps 3 -> 7; continued from ${short.run.key?.slice(0, 12)} at step 3`);
    expect(walked.steps).toBe(4);
    expect(long.manifest.info.computed).toBe(4);

    walked.steps = 0;
    const scratch = await runWalk(file, join(dir, 'fresh'), ['w.with.steps=7']);
    expect(walked.steps).toBe(7);
    expect(scratch.run.key).toBe(long.run.key);
    expect(long.manifest.content_hash).toBe(scratch.manifest.content_hash);
  });

  it('takes the furthest candidate the stage accepts, with the same inputs, and passes over a damaged one', async () => {
    const { file, store } = setup();
    const three = await runWalk(file, store);
    const five = await runWalk(file, store, ['w.with.steps=5']);
    await runWalk(file, store, ['w.with.steps=6', 'w.with.seed=3']); // another seed: not a prefix
    await runWalk(file, store, ['w.with.steps=6', 'g.with.seed=4']); // other inputs: not a prefix
    walked.steps = 0;
    const eight = await runWalk(file, store, ['w.with.steps=8']);
    expect(eight.run.reason).toContain(`continued from ${five.run.key?.slice(0, 12)} at step 5`);
    expect(walked.steps).toBe(3);

    // The 8-step run's bytes change: the 9-step run falls back on the 5-step run.
    const damaged = join(store, 'walk', eight.run.key as string, 'walk.json');
    writeFileSync(damaged, readFileSync(damaged, 'utf8').replace(/^\[\d/, '[9'));
    walked.steps = 0;
    const nine = await runWalk(file, store, ['w.with.steps=9']);
    expect(nine.run.reason).toContain(`continued from ${five.run.key?.slice(0, 12)} at step 5`);
    expect(walked.steps).toBe(4);
    expect(three.run.key).not.toBe(five.run.key);
  });

  it('starts from scratch when nothing can be continued (shorter or equal runs only)', async () => {
    const { file, store } = setup();
    await runWalk(file, store, ['w.with.steps=6']);
    walked.steps = 0;
    const shorter = await runWalk(file, store, ['w.with.steps=4']);
    expect(shorter.run.reason).toBe('with.steps 6 -> 4');
    expect(walked.steps).toBe(4);
    expect(shorter.manifest.info.computed).toBe(4);
  });
});

/**
 * End to end: the built-in stages (generate → split → tokenize → train → evaluate → analyze) run
 * through the CLI on a tiny comparison task, and the cache behaves as the main-job issue demands.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { builtinStages } from '../src/stages/index.js';
import { readTable } from '../src/table/parquet.js';
import { column } from '../src/table/table.js';
import { cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';
import { BACKEND_PREFERENCE } from '../src/models/backend-names.js';

// The smoke pipeline (the whole chain at toy scale) with its `max_steps` made a parameter.
const PIPELINE = readFileSync(new URL('../pipelines/smoke.yaml', import.meta.url), 'utf8').replace(
  'max_steps: 40',
  'max_steps: MAX_STEPS',
);

const ALL = ['kb', 'facts', 'tokens', 'model', 'scores', 'report'];

function setup(maxSteps = 20) {
  const dir = tempDir('gp-e2e-');
  const file = writeFileIn(dir, 'smoke.yaml', PIPELINE.replace('MAX_STEPS', String(maxSteps)));
  const store = join(dir, 'artifacts');
  const run = (...extra: string[]) =>
    cli(['run', file, '--store', store, '--json', ...extra], { stages: builtinStages });
  return { dir, file, store, run };
}

function ran(result: Awaited<ReturnType<typeof cli>>): string[] {
  return Object.entries(statuses(result))
    .filter(([, s]) => s === 'ran')
    .map(([id]) => id);
}

describe('the built-in pipeline, end to end', () => {
  it('runs every stage, then reuses them; a knob reruns exactly its downstream', async () => {
    const { store, run } = setup();
    const first = await run();
    expect(first.code, first.stderr).toBe(0);
    expect(ran(first)).toEqual(ALL);

    // The analyze artifact holds the curve, the metrics and the plots.
    const report = first.run('report');
    const dir = join(store, 'analyze', report.key!);
    for (const f of ['metrics.parquet', 'curves.parquet', 'grokking.svg', 'grokking.png', 'manifest.json']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const curves = await readTable(join(dir, 'curves.parquet'));
    expect(new Set(column(curves, 'type', 'STRING'))).toEqual(
      new Set(['train_batch', 'train_inferred', 'id_atomic', 'ood_atomic', 'id_inferred', 'ood_inferred']),
    );
    expect(Math.max(...column(curves, 'step', 'INT32'))).toBe(20);
    const manifest = JSON.parse(readFileSync(join(store, 'train', first.run('model').key!, 'manifest.json'), 'utf8'));
    expect(BACKEND_PREFERENCE).toContain(manifest.info.backend);

    // A second run computes nothing.
    const second = await run();
    expect(ran(second)).toEqual([]);
    expect(Object.values(statuses(second))).toEqual(ALL.map(() => 'cached'));

    // A dataset knob reruns everything from generate down.
    const values = await run('--set', 'kb.with.values=6');
    expect(ran(values)).toEqual(ALL);
    expect(values.run('kb').reason).toContain('with.values 5 -> 6');

    // A training knob reruns only train, evaluate and analyze.
    const steps = await run('--set', 'model.with.max_steps=30');
    expect(ran(steps)).toEqual(['model', 'scores', 'report']);
    expect(steps.run('model').reason).toContain('with.max_steps 20 -> 30');

    // Flipping it back reruns nothing.
    expect(ran(await run())).toEqual([]);
  });

  it('rejects bad knobs of the real stages with file, line and field, exit 2, and writes nothing', async () => {
    for (const [from, to, field] of [
      ['entities: 24', 'entities: -3', 'stages.kb.with.entities'],
      ['phi: 2', 'phi: 500', 'stages.facts.with.phi'],
      ['n_heads: 2', 'n_heads: 3', 'stages.model.with.model'],
    ] as const) {
      const dir = tempDir('gp-e2e-bad-');
      const file = writeFileIn(dir, 'bad.yaml', PIPELINE.replace('MAX_STEPS', '20').replace(from, to));
      const line = file + ':' + (PIPELINE.split('\n').findIndex((l) => l.includes(from)) + 1) + ':';
      const store = join(dir, 'artifacts');
      const result = await cli(['run', file, '--store', store], { stages: builtinStages });
      expect(result.code, to).toBe(2);
      expect(result.stderr, to).toContain(line);
      expect(result.stderr, to).toContain(field);
      expect(existsSync(store), to).toBe(false);
    }
  });

  it('a run killed during train leaves no artifact that a later run takes as complete', async () => {
    const { file, store, run } = setup(3000);
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = spawn(
      process.execPath,
      ['--import', tsx, 'src/cli.ts', 'run', file, '--store', store, '--jobs', '1'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    const training = await new Promise<boolean>((resolve) => {
      const timer = setInterval(() => {
        if (/\[model\] step [1-9]/.test(log)) {
          clearInterval(timer);
          resolve(true);
        }
      }, 50);
      child.on('exit', () => {
        clearInterval(timer);
        resolve(false);
      });
    });
    expect(training, log).toBe(true);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));

    // Whatever is in the train folder of the store must be a complete artifact (none is).
    const trainDir = join(store, 'train');
    const complete = existsSync(trainDir)
      ? readdirSync(trainDir).filter((k) => existsSync(join(trainDir, k, 'manifest.json')))
      : [];
    expect(complete).toEqual([]);
    const status = await cli(['status', file, '--store', store, '--json'], { stages: builtinStages });
    expect(statuses(status)).toMatchObject({ kb: 'cached', facts: 'cached', tokens: 'cached', model: 'planned' });

    // The next run (shorter, so the test stays fast) completes and cleans the temporaries.
    const next = await run('--set', 'model.with.max_steps=10');
    expect(next.code, next.stderr).toBe(0);
    expect(ran(next)).toEqual(['model', 'scores', 'report']);
    const tmp = join(store, '.tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  });
});

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinStages } from '../src/stages/index.js';
import { cli, tempDir } from './fixtures/engine-harness.js';

/** Every pipeline the repository ships: pipelines/, pipelines/study/ and pipelines/paper/. */
const ROOT = new URL('../pipelines/', import.meta.url).pathname;
const FILES = ['', 'study', 'paper'].flatMap((dir) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(dir, f)),
);

describe('every shipped pipeline plans (dry run with the built-in stages, no training)', () => {
  it('finds the studies and their twins at the published scale', () => {
    const studies = [
      'values',
      'phi',
      'depth',
      'dataset-size',
      'entities-constant-size',
      'id-ood-ratio',
      'architectures',
    ];
    for (const s of studies) {
      expect(FILES, s).toContain(join('study', `${s}.yaml`));
      expect(FILES, s).toContain(join('paper', `${s}.yaml`));
    }
    expect(FILES).toContain('grokking.yaml');
    expect(FILES).toContain(join('study', 'grokfast.yaml')); // a method against grokking.yaml's base: no published twin
  });

  it.each(FILES)(
    '%s',
    async (file) => {
      const store = join(tempDir('gp-plan-'), 'store');
      const r = await cli(['run', join(ROOT, file), '--dry-run', '--json', '--store', store], {
        stages: builtinStages,
      });
      expect(r.stderr, file).toBe('');
      expect(r.code, file).toBe(0);
      const runs = r.runs();
      expect(runs.length).toBeGreaterThan(0);
      expect(runs.every((x) => x.status === 'planned')).toBe(true);
      expect(existsSync(store)).toBe(false);
      // Studies: at least three seeds of every run of the train stage; the data stages shared across seeds.
      if (
        file.startsWith('study') ||
        (file.startsWith('paper') && !file.includes('architectures')) ||
        file === 'grokking.yaml'
      ) {
        const trains = runs.filter((x) => x.stage === 'train');
        const data = runs.filter((x) => x.stage === 'generate');
        expect(trains.length).toBeGreaterThanOrEqual(3 * data.length);
        if (!file.includes('architectures')) expect(data.every((x) => !x.id.includes('seed='))).toBe(true);
      }
    },
    60_000,
  );
});

import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { expandMatrix } from '../src/engine/pipeline/matrix.js';
import { compileLoaded } from '../src/engine/pipeline/pipeline.js';
import { parsePipelineText } from '../src/engine/pipeline/load.js';
import { createRegistry } from '../src/engine/registry.js';
import { fakeStages } from './fixtures/engine-stages.js';
import { cli, runBadPipeline, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const registry = createRegistry(fakeStages);

describe('matrix include / exclude (GitHub Actions semantics)', () => {
  it("reproduces GitHub's documented include example", () => {
    // docs.github.com, "Running variations of jobs in a workflow", "Example: Expanding configurations".
    const { sweep, problems } = expandMatrix({
      fruit: ['apple', 'pear'],
      animal: ['cat', 'dog'],
      include: [
        { color: 'green' },
        { color: 'pink', animal: 'cat' },
        { fruit: 'apple', shape: 'circle' },
        { fruit: 'banana' },
        { fruit: 'banana', animal: 'cat' },
      ],
    });
    expect(problems).toEqual([]);
    expect(sweep.names).toEqual(['fruit', 'animal', 'color', 'shape']);
    expect(sweep.combos).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
    expect(sweep.origins).toEqual([-1, -1, -1, -1, 3, 4]);
  });

  it('exclude removes partial matches, before include (which can add a combination back)', () => {
    const { sweep } = expandMatrix({
      os: ['linux', 'mac'],
      node: [14, 16, 18],
      exclude: [{ os: 'mac', node: 14 }, { node: 18 }],
      include: [{ os: 'mac', node: 18, experimental: true }],
    });
    expect(sweep.combos).toEqual([
      { os: 'linux', node: 14 },
      { os: 'linux', node: 16 },
      { os: 'mac', node: 16 },
      { os: 'mac', node: 18, experimental: true },
    ]);
  });

  it('an include-only matrix is its entries; no matrix is one empty combination', () => {
    expect(expandMatrix({ include: [{ a: 1 }, { a: 2, b: 3 }] }).sweep.combos).toEqual([{ a: 1 }, { a: 2, b: 3 }]);
    expect(expandMatrix(undefined).sweep.combos).toEqual([{}]);
  });

  it('problems: exclude key that is not an axis, everything excluded', () => {
    expect(expandMatrix({ a: [1], exclude: [{ b: 1 }] }).problems).toEqual([
      { path: ['matrix', 'exclude', 0, 'b'], message: '"b" is not a matrix axis (axes: a)' },
    ]);
    expect(expandMatrix({ a: [1, 2], exclude: [{ a: 1 }, { a: 2 }] }).problems[0].message).toBe(
      'every combination of the matrix is excluded',
    );
  });

  it('paired sweep: entities x attributes pairs at constant size, seeds crossed, data shared across seeds', () => {
    const text = [
      'matrix:',
      '  entities: [200, 400, 1000]',
      '  seed: [0, 1, 2]',
      '  include:',
      '    - { entities: 200, attributes: 20 }',
      '    - { entities: 400, attributes: 10 }',
      '    - { entities: 1000, attributes: 4 }',
      'stages:',
      '  kb: { uses: gen, with: { n: "${{ matrix.entities }}", comment: "a=${{ matrix.attributes }}" } }',
      '  s: { uses: scale, needs: [kb], with: { factor: "${{ matrix.seed }}" } }',
      '  t: { uses: collect, needs: [s], across: matrix }',
    ].join('\n');
    const pipeline = compileLoaded(parsePipelineText(text, 'paired.yaml'), registry);
    const ids = pipeline.runs.map((r) => r.id);
    expect(ids.filter((id) => id.startsWith('kb'))).toEqual([
      'kb[entities=200,attributes=20]',
      'kb[entities=400,attributes=10]',
      'kb[entities=1000,attributes=4]',
    ]);
    expect(pipeline.runs[0].params).toMatchObject({ n: 200, comment: 'a=20' });
    const s = pipeline.runs.filter((r) => r.stageId === 's');
    expect(s.map((r) => r.id)).toEqual([
      's[entities=200,seed=0,attributes=20]',
      's[entities=200,seed=1,attributes=20]',
      's[entities=200,seed=2,attributes=20]',
      's[entities=400,seed=0,attributes=10]',
      's[entities=400,seed=1,attributes=10]',
      's[entities=400,seed=2,attributes=10]',
      's[entities=1000,seed=0,attributes=4]',
      's[entities=1000,seed=1,attributes=4]',
      's[entities=1000,seed=2,attributes=4]',
    ]);
    expect(s[4].inputs.map((i) => i.id)).toEqual(['kb[entities=400,attributes=10]']);
    expect(pipeline.runs.at(-1)?.inputs.map((i) => i.id)).toEqual(s.map((r) => r.id));
  });

  it('an include-only paired sweep, and exclude of one pair', () => {
    const text = [
      'matrix:',
      '  include:',
      '    - { entities: 200, attributes: 20 }',
      '    - { entities: 400, attributes: 10 }',
      'stages:',
      '  kb: { uses: gen, with: { n: "${{ matrix.entities }}", seed: "${{ matrix.attributes }}" } }',
    ].join('\n');
    const pipeline = compileLoaded(parsePipelineText(text, 'pairs.yaml'), registry);
    expect(pipeline.runs.map((r) => r.id)).toEqual([
      'kb[entities=200,attributes=20]',
      'kb[entities=400,attributes=10]',
    ]);
  });
});

const bad = runBadPipeline;

describe('matrix errors: exit 2, located', () => {
  const base = 'matrix:\n  n: [1, 2]\nstages:\n  g: { uses: gen, with: { n: "${{ matrix.n }}" } }\n';

  it('an axis no stage uses, in the file', async () => {
    const err = await bad(base.replace('  n: [1, 2]\n', '  n: [1, 2]\n  lr: [1, 2]\n'));
    expect(err).toContain('bad.yaml:3:3: matrix.lr: matrix variable "lr" is not used by any stage');
  });

  it('an axis no stage uses, from --set', async () => {
    const err = await bad(base, ['--set', 'matrix.seed=[0, 1]']);
    expect(err).toContain('--set matrix.seed=[0, 1]: matrix.seed: matrix variable "seed" is not used by any stage');
  });

  it('--set matrix.<axis> replaces the values of a used axis', async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'ok.yaml', base);
    const r = await cli(['run', file, '--store', join(dir, 's'), '--dry-run', '--json', '--set', 'matrix.n=[3]']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).runs.map((x: { id: string }) => x.id)).toEqual(['g[n=3]']);
  });

  it('an exclude key that is no axis; an include key no stage uses', async () => {
    const err = await bad(base.replace('  n: [1, 2]\n', '  n: [1, 2]\n  include: [{ m: 3 }]\n  exclude: [{ k: 1 }]\n'));
    expect(err).toContain('bad.yaml:4:18: matrix.exclude[0].k: "k" is not a matrix axis (axes: n)');
    expect(err).toContain('bad.yaml:3:15: matrix.include[0].m: matrix variable "m" is not used by any stage');
  });

  it('a combination without a value that a stage uses', async () => {
    const yaml = base
      .replace('  n: [1, 2]\n', '  n: [1, 2]\n  include: [{ n: 1, m: a }]\n')
      .replace('with: { n:', 'with: { comment: "${{ matrix.m }}", n:');
    const err = await bad(yaml);
    expect(err).toContain('bad.yaml:2:3: matrix: the combination {"n":2} gives no value to "m"');
  });
});

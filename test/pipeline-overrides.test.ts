/**
 * `--set` as a Hydra user types it: comma sweeps, `range(...)`, `choice(...)`, deep-merged
 * mappings and `~path` deletions (`src/engine/pipeline/overrides.ts`, `override-syntax.ts`), down
 * to what the compiled pipeline shares and what it runs once per value.
 */
import { describe, expect, it } from 'vitest';
import { parsePipelineText } from '../src/engine/pipeline/load.js';
import { compileLoaded } from '../src/engine/pipeline/pipeline.js';
import { applyOverrides } from '../src/engine/pipeline/overrides.js';
import { parseOverride, splitTopLevel } from '../src/engine/pipeline/override-syntax.js';
import { createRegistry } from '../src/engine/registry.js';
import { builtinStages } from '../src/stages/index.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const TRAIN = parsePipelineText(
  'matrix: { lr: [1] }\nstages:\n  m:\n    uses: train\n    with:\n      optimizer: { lr: 0.1, batch_size: 128 }\n',
  'p.yaml',
);

describe('override syntax', () => {
  it('splits at top-level commas only', () => {
    expect(splitTopLevel('1e-3,1e-2')).toEqual(['1e-3', '1e-2']);
    expect(splitTopLevel('[1,2],{a: 1, b: 2},"x,y",\'p,q\',f(1,2)')).toEqual([
      '[1,2]',
      '{a: 1, b: 2}',
      '"x,y"',
      "'p,q'",
      'f(1,2)',
    ]);
  });

  it('tells a value from a sweep, a range and a deletion', () => {
    expect(parseOverride('a.with.x=[0, 1]')).toEqual({ kind: 'set', key: 'a.with.x', value: [0, 1] });
    expect(parseOverride('a.with.x="a,b"')).toEqual({ kind: 'set', key: 'a.with.x', value: 'a,b' });
    expect(parseOverride('a.with.lr=1e-3,1e-2')).toEqual({ kind: 'sweep', key: 'a.with.lr', values: [0.001, 0.01] });
    expect(parseOverride('a.with.k=choice(gpt2, llama)')).toMatchObject({ values: ['gpt2', 'llama'] });
    expect(parseOverride('a.with.k=range(1,4)')).toMatchObject({ values: [1, 2, 3] });
    expect(parseOverride('a.with.k=range(10,0,-4)')).toMatchObject({ values: [10, 6, 2] });
    expect(parseOverride('a.with.k=range(start=0, stop=0.3, step=0.1)')).toMatchObject({ values: [0, 0.1, 0.2] });
    expect(parseOverride('~a.with.k')).toEqual({ kind: 'delete', key: 'a.with.k' });
    expect(parseOverride('~a.with.k=3')).toEqual({ kind: 'delete', key: 'a.with.k', value: 3 });
  });

  it('rejects sweeps that cannot be matrix axes', () => {
    expect(parseOverride('a.with.k=1,1')).toEqual({ problem: 'a sweep repeats the value 1' });
    expect(parseOverride('a.with.k=1,')).toEqual({ problem: 'empty value in a sweep' });
    expect(parseOverride('a.with.k=[1],[2]')).toMatchObject({ problem: expect.stringContaining('scalar values') });
    expect(parseOverride('a.with.k=range(3,1)')).toEqual({ problem: 'range(3, 1, 1) is empty' });
    expect(parseOverride('a.with.k=range(0,1,0)')).toEqual({ problem: 'range(...) step must not be 0' });
    expect(parseOverride('a.with.k=range(0,x)')).toMatchObject({ problem: expect.stringContaining('(got "x")') });
    expect(parseOverride('a.with.k=range(0,1e9)')).toMatchObject({ problem: expect.stringContaining('at most') });
  });
});

describe('applying overrides', () => {
  it('a sweep becomes a matrix axis named after the field, or more of its path when taken', () => {
    const o = applyOverrides(TRAIN, ['m.with.optimizer.lr=1e-3,1e-2', 'm.with.optimizer.weight_decay=0.1,1']);
    expect(o.data).toEqual({
      matrix: { lr: [1], optimizer_lr: [0.001, 0.01], weight_decay: [0.1, 1] },
      stages: {
        m: {
          uses: 'train',
          with: {
            optimizer: {
              lr: '${{ matrix.optimizer_lr }}',
              batch_size: 128,
              weight_decay: '${{ matrix.weight_decay }}',
            },
          },
        },
      },
    });
    expect(o.locate(['matrix', 'weight_decay'])).toBe('--set m.with.optimizer.weight_decay=0.1,1');
    expect(o.locate(['stages', 'm', 'with', 'optimizer', 'lr'])).toBe('--set m.with.optimizer.lr=1e-3,1e-2');
    // The same path swept twice keeps one axis.
    const twice = applyOverrides(TRAIN, ['m.with.max_steps=1,2', 'm.with.max_steps=3,4']).data as {
      matrix: Record<string, unknown>;
    };
    expect(twice.matrix).toEqual({ lr: [1], max_steps: [3, 4] });
  });

  it('deep-merges a mapping into the one there, and deletes keys', () => {
    const merged = applyOverrides(TRAIN, ['m.with.optimizer={"lr":0.01}']).data as { stages: { m: { with: unknown } } };
    expect(merged.stages.m.with).toEqual({ optimizer: { lr: 0.01, batch_size: 128 } });
    const deleted = applyOverrides(TRAIN, ['~m.with.optimizer.lr']).data as { stages: { m: { with: unknown } } };
    expect(deleted.stages.m.with).toEqual({ optimizer: { batch_size: 128 } });
    expect(() => applyOverrides(TRAIN, ['~m.with.optimizer.nope'])).toThrow(
      '--set ~m.with.optimizer.nope: m.with.optimizer.nope is not there, nothing to delete',
    );
    expect(() => applyOverrides(TRAIN, ['~m.with.optimizer.lr=0.5'])).toThrow('is 0.1, not 0.5: not deleted');
    expect(() => applyOverrides(TRAIN, ['vars.x=1,2'])).toThrow('vars cannot be swept');
    expect(TRAIN.data).toEqual({
      matrix: { lr: [1] },
      stages: { m: { uses: 'train', with: { optimizer: { lr: 0.1, batch_size: 128 } } } },
    });
  });

  it('a comma list gives a matrix axis its values', () => {
    const o = applyOverrides(TRAIN, ['matrix.lr=0.1,0.2']).data as { matrix: unknown };
    expect(o.matrix).toEqual({ lr: [0.1, 0.2] });
  });
});

describe('a sweep from the command line', () => {
  const QUICK = parsePipelineText(
    [
      'stages:',
      '  kb: { uses: generate, with: { entities: 50, attributes: 2, values: 3 } }',
      '  facts: { uses: split, needs: [kb], with: { phi: 1, test_size: 10 } }',
      '  tokens: { uses: tokenize, needs: [facts] }',
      '  model:',
      '    uses: train',
      '    needs: [tokens]',
      '    with:',
      '      model: { arch: gpt2, n_layers: 1, d_model: 16, n_heads: 2 }',
      '      optimizer: { lr: 1.0e-3, weight_decay: 0.1, batch_size: 32 }',
      '  scores: { uses: evaluate, needs: [model, tokens] }',
      '',
    ].join('\n'),
    'quick.yaml',
  );
  const registry = createRegistry(builtinStages);

  it('runs the swept stage and those after it once per value, sharing the data stages', () => {
    const p = compileLoaded(QUICK, registry, { sets: ['model.with.optimizer.weight_decay=0.1,1.0'] });
    expect(p.runs.map((r) => r.id)).toEqual([
      'kb',
      'facts',
      'tokens',
      'model[weight_decay=0.1]',
      'model[weight_decay=1]',
      'scores[weight_decay=0.1]',
      'scores[weight_decay=1]',
    ]);
    const models = p.runs.filter((r) => r.stageId === 'model');
    expect(models.map((r) => (r.params.optimizer as { weight_decay: number }).weight_decay)).toEqual([0.1, 1]);
    // Everything else as in the file, defaults filled in.
    expect(models.map((r) => (r.params.optimizer as { batch_size: number }).batch_size)).toEqual([32, 32]);
    expect(models[0].inputs[0]).toBe(models[1].inputs[0]);
  });

  it('a merged mapping keeps the file batch_size; a deleted knob takes its default', () => {
    const merged = compileLoaded(QUICK, registry, { sets: ['model.with.optimizer={"lr":0.01}'] });
    const opt = merged.runs.find((r) => r.stageId === 'model')?.params.optimizer as Record<string, number>;
    expect(opt).toMatchObject({ lr: 0.01, batch_size: 32, weight_decay: 0.1 });
    const deleted = compileLoaded(QUICK, registry, { sets: ['~model.with.optimizer.batch_size'] });
    const def = deleted.runs.find((r) => r.stageId === 'model')?.params.optimizer as Record<string, number>;
    expect(def.batch_size).toBe(512);
  });

  it('a bad value of a sweep is reported at the --set argument, naming the run', () => {
    expect(() => compileLoaded(QUICK, registry, { sets: ['model.with.optimizer.lr=0.1,abc'] })).toThrow(
      '--set model.with.optimizer.lr=0.1,abc: stages.model.with.optimizer.lr: must be number (got "abc") (in model[lr=abc])',
    );
  });

  it('status plans one run per value through the CLI, and run --help documents the syntax', async () => {
    const dir = tempDir();
    const yaml = 'stages:\n  g: { uses: gen, with: { n: 3 } }\n  s: { uses: scale, needs: [g] }\n';
    const file = writeFileIn(dir, 'p.yaml', yaml);
    const r = await cli([
      'run',
      file,
      '--store',
      `${dir}/store`,
      '--json',
      '--dry-run',
      '--set',
      's.with.factor=range(1,4)',
    ]);
    expect(r.code).toBe(0);
    expect(r.runs().map((x) => x.id)).toEqual(['g', 's[factor=1]', 's[factor=2]', 's[factor=3]']);
    const help = await cli(['run', '--help']);
    expect(help.stdout).toContain("--set 'model.with.optimizer.lr=1e-3,1e-2'");
    expect(help.stdout).toContain('range(start,stop[,step])');
    expect(help.stdout).toContain('~model.with.optimizer.weight_decay');
  });
});

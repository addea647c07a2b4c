import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, runBadPipeline, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const bad = runBadPipeline;

describe('bad input: exit 2, file:line:col and field, nothing written', () => {
  it('YAML syntax error', async () => {
    const err = await bad('stages:\n  a: { uses: gen\n  b: 1\n');
    expect(err).toMatch(/^bad\.yaml:\d+:\d+: YAML syntax error/m);
  });

  it('unknown stage type lists the known ones', async () => {
    const err = await bad('stages:\n  a:\n    uses: generat\n');
    expect(err).toContain(
      'bad.yaml:3:11: stages.a.uses: unknown stage type "generat" (known: boom, collect, fit, gen, noisy, scale, slow, sum, take, use, weights)',
    );
  });

  it('missing needs target', async () => {
    const err = await bad('stages:\n  a: { uses: gen }\n  b:\n    uses: scale\n    needs: [a, nope]\n');
    expect(err).toContain('bad.yaml:5:16: stages.b.needs[1]: needs unknown stage "nope" (stages: a, b)');
  });

  it('cycle, named', async () => {
    const err = await bad(
      'stages:\n  a: { uses: gen, needs: [c] }\n  b: { uses: scale, needs: [a] }\n  c: { uses: sum, needs: [b] }\n',
    );
    expect(err).toContain('stages.a.needs: cycle: a -> c -> b -> a');
    expect(err).toMatch(/^bad\.yaml:2:\d+: /m);
  });

  it('wrong type and out-of-range knobs, all reported at once', async () => {
    const err = await bad(
      [
        'stages:',
        '  g:',
        '    uses: gen',
        '    with:',
        '      n: lots',
        '      seed: 1',
        '  s:',
        '    uses: scale',
        '    needs: [g]',
        '    with: { factor: -1, mode: ceil, extra: 1 }',
        '',
      ].join('\n'),
    );
    expect(err).toContain('bad.yaml:5:10: stages.g.with.n: must be integer (got "lots")');
    expect(err).toContain('bad.yaml:10:21: stages.s.with.factor: must be >= 0 (got -1)');
    expect(err).toContain('bad.yaml:10:31: stages.s.with.mode: must be one of "floor", "round" (got "ceil")');
    expect(err).toContain('bad.yaml:10:37: stages.s.with.extra: unknown field (allowed: factor, mode)');
  });

  it('out-of-range value coming from the matrix names the run', async () => {
    const err = await bad('matrix:\n  n: [5, 0]\nstages:\n  g:\n    uses: gen\n    with: { n: "${{ matrix.n }}" }\n');
    expect(err).toContain('bad.yaml:6:16: stages.g.with.n: must be >= 1 (got 0) (in g[n=0])');
    expect(err).not.toContain('g[n=5]');
  });

  it('a failing check is reported at the field its pointer names', async () => {
    const err = await bad(
      'stages:\n  g:\n    uses: gen\n    with: { n: 3 }\n  t:\n    uses: take\n    needs: [g]\n    with:\n      k: 7\n',
    );
    expect(err).toContain("bad.yaml:9:10: stages.t.with.k: k (7) must be <= gen's n (3)");
  });

  it('unknown templates and unknown top-level fields', async () => {
    const err = await bad(
      'nmae: x\nmatrix:\n  n: [1]\nstages:\n  g:\n    uses: gen\n    with: { n: "${{ matrix.m }}", comment: "${{ env.HOME }}" }\n',
    );
    expect(err).toContain('bad.yaml:1:1: nmae: unknown field (allowed: name, description, matrix, vars, stages)');
    expect(err).toContain('stages.g.with.n: unknown matrix variable "m" (matrix: n)');
    expect(err).toContain('stages.g.with.comment: unsupported template');
  });

  it('a bad --set names the argument', async () => {
    const yaml = 'stages:\n  g:\n    uses: gen\n    with: { n: 3 }\n';
    expect(await bad(yaml, ['--set', 'nope.with.n=2'])).toContain(
      '--set nope.with.n=2: unknown stage "nope" (stages: g; or vars.<name>)',
    );
    expect(await bad(yaml, ['--set', 'g.with.n.deep=2'])).toContain(
      '--set g.with.n.deep=2: g.with.n is not an object (it is 3)',
    );
    expect(await bad(yaml, ['--set', 'g.uses=scale'])).toContain(
      '--set g.uses=scale: only <stage>.with.<path> can be set',
    );
    expect(await bad(yaml, ['--set', 'g.with.n=0'])).toContain(
      '--set g.with.n=0: stages.g.with.n: must be >= 1 (got 0)',
    );
  });

  it('a missing file and a bad --jobs', async () => {
    const dir = tempDir();
    const r = await cli(['run', join(dir, 'missing.yaml'), '--store', join(dir, 'store')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot read pipeline file (ENOENT)');
    const file = writeFileIn(dir, 'ok.yaml', 'stages:\n  g: { uses: gen }\n');
    const j = await cli(['run', file, '--store', join(dir, 'store'), '--jobs', '0']);
    expect(j.code).toBe(2);
    expect(j.stderr).toContain("option '--jobs <n>' argument '0' is invalid");
    expect(existsSync(join(dir, 'store'))).toBe(false);
  });

  it('usage errors exit 2; --help and --version exit 0', async () => {
    expect((await cli([])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['run'])).code).toBe(2);
    const help = await cli(['run', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--set <path=value>');
    const version = await cli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('--json bad input: one JSON object with the errors', async () => {
    const dir = tempDir();
    const file = writeFileIn(dir, 'bad.yaml', 'stages:\n  a: { uses: nope }\n');
    const r = await cli(['run', file, '--store', join(dir, 'store'), '--json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { runs: unknown[]; errors: string[] };
    expect(doc.runs).toEqual([]);
    expect(doc.errors[0]).toMatch(/bad\.yaml:2:\d+: stages\.a\.uses: unknown stage type "nope"/);
  });
});

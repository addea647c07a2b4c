/**
 * Hostile and oversized pipeline files end with exit 2 and a located message naming the option
 * that raises the limit hit, never a crash, a flood or minutes of work; nothing is written:
 * a huge matrix, a sweep of bad values, a huge file, a "billion laughs" YAML, a recursive alias,
 * and the run table of a very large sweep.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatTable } from '../src/engine/terminal/summary.js';
import type { ResultRow } from '../src/engine/terminal/summary.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

/** Runs `args` on `yaml` (as `p.yaml`); checks exit 2, no store, no stack trace; returns stderr. */
async function refused(yaml: string, args: string[] = ['status']): Promise<string> {
  const dir = tempDir('gp-limits-');
  const file = writeFileIn(dir, 'p.yaml', yaml);
  const store = join(dir, 'store');
  const r = await cli([...args.slice(0, 1), file, '--store', store, ...args.slice(1)]);
  expect(r.code, r.stderr).toBe(2);
  expect(existsSync(store)).toBe(false);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r.stderr.replaceAll(file, 'p.yaml');
}

const values = (n: number, from = 0) => `[${Array.from({ length: n }, (_, i) => i + from).join(', ')}]`;

describe('input limits', () => {
  it('a matrix of 10^6 combinations is refused at once, naming --max-runs; raising it lets a sweep through', async () => {
    const yaml = `matrix:\n  a: ${values(1000)}\n  b: ${values(1000)}\nstages:\n  g:\n    uses: gen\n    with: { seed: "\${{ matrix.a }}", n: 5, comment: "\${{ matrix.b }}" }\n`;
    for (const command of ['status', 'run']) {
      const err = await refused(yaml, [command]);
      expect(err).toBe(
        'p.yaml:1:1: matrix: expands to more than 100,000 stage runs (stage g alone: 1,000,000); shrink the matrix, or raise the limit with --max-runs <n>\n',
      );
    }
    const small = `matrix:\n  a: ${values(4)}\n  b: ${values(3)}\nstages:\n  g:\n    uses: gen\n    with: { seed: "\${{ matrix.a }}", n: 5, comment: "b\${{ matrix.b }}" }\n  s: { uses: scale, needs: [g] }\n`;
    expect(await refused(small, ['status', '--max-runs', '20'])).toContain(
      'expands to more than 20 stage runs (stage s alone: 12)',
    );
    const dir = tempDir('gp-limits-');
    const ok = await cli([
      'status',
      writeFileIn(dir, 'p.yaml', small),
      '--store',
      join(dir, 'store'),
      '--max-runs',
      '24',
      '--json',
    ]);
    expect(ok.code).toBe(0);
    expect(ok.runs().length).toBe(24);
  });

  it('a sweep of bad values lists the first 50 problems and counts the rest (--max-errors lists more)', async () => {
    const yaml = `matrix:\n  n: ${values(3000, -3000)}\nstages:\n  g:\n    uses: gen\n    with: { n: "\${{ matrix.n }}" }\n`;
    const lines = (await refused(yaml)).trimEnd().split('\n');
    expect(lines.length).toBe(51);
    expect(lines[0]).toBe('p.yaml:6:16: stages.g.with.n: must be >= 1 (got -3000) (in g[n=-3000])');
    expect(lines[50]).toBe('... and 2,950 more problems (--max-errors <n> lists more)');
    const five = (await refused(yaml, ['status', '--max-errors', '5'])).trimEnd().split('\n');
    expect(five.length).toBe(6);
    expect(five[5]).toBe('... and 2,995 more problems (--max-errors <n> lists more)');
  });

  it('a pipeline file over 1 MiB is refused before it is parsed, naming --max-file-size', async () => {
    const yaml = `stages:\n  g: { uses: gen }\n${'# padding\n'.repeat(120_000)}`;
    expect(await refused(yaml)).toBe(
      'p.yaml: pipeline file of 1.14 MiB, more than the limit of 1 MiB; raise it with --max-file-size <MiB>\n',
    );
    const dir = tempDir('gp-limits-');
    const ok = await cli([
      'status',
      writeFileIn(dir, 'p.yaml', yaml),
      '--store',
      join(dir, 'store'),
      '--max-file-size',
      '2',
    ]);
    expect(ok.code).toBe(0);
  });

  it('a file at the size limit with a mapping of 40,000 keys is read in seconds; repeated keys are still found', async () => {
    const vars = Array.from({ length: 40_000 }, (_, i) => `  v${i}: ${i}\n`).join('');
    const yaml = `vars:\n${vars}stages:\n  g: { uses: gen }\n`;
    expect(yaml.length).toBeLessThan(1024 * 1024);
    const dir = tempDir('gp-limits-');
    const file = writeFileIn(dir, 'p.yaml', yaml);
    const t0 = performance.now();
    const r = await cli(['status', file, '--store', join(dir, 'store')]);
    // Quadratic before (each key compared with every earlier one): 20 s and more here.
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(0);
    const err = await refused(`vars:\n${vars}  v7: again\nstages:\n  g: { uses: gen, with: { n: 1, n: 2 } }\n`);
    expect(err).toBe(
      'p.yaml:40002:3: YAML syntax error: Map keys must be unique\np.yaml:40004:33: YAML syntax error: Map keys must be unique\n',
    );
  });

  it('a "billion laughs" document is refused at the alias that passes the limit, naming --max-aliases', async () => {
    const laughs = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
      const prev = String.fromCharCode(97 + i);
      laughs.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const yaml = `${laughs.map((l) => `# ${l}`).join('\n')}\nvars:\n${laughs.map((l) => `  ${l}`).join('\n')}\nstages:\n  g: { uses: gen }\n`;
    expect(await refused(yaml)).toMatch(
      /^p\.yaml:15:10: YAML aliases copy more than 10,000 nodes \(here \*d copies 7,381\), as a "billion laughs" document does; raise the limit with --max-aliases <n>\n$/,
    );
  });

  it('a recursive alias is refused where it is, not with a stack overflow', async () => {
    const err = await refused('stages:\n  g:\n    uses: gen\n    with: &w\n      n: 3\n      again: *w\n');
    expect(err).toBe('p.yaml:6:14: YAML alias *w lies inside the node it copies (&w): a structure without end\n');
  });

  it('the run table of 200,000 runs is printed (no spread of its rows into Math.max)', () => {
    const rows: ResultRow[] = Array.from({ length: 200_000 }, (_, i) => ({
      id: `r[i=${i}]`,
      stage: 'gen',
      key: null,
      status: 'planned',
      seconds: null,
      reason: '',
    }));
    const text = formatTable(rows, { color: false, withSeconds: false, withKeys: true });
    expect(text.split('\n').length).toBe(200_002);
  });
});

/** Unit tests of the cache helpers: table diffs, root formatting, environment, sampling, validator cache, stage keys. */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ajv } from 'ajv';
import { formatRoots } from '../src/engine/explain/cause.js';
import { environmentChanges, resultKnobs } from '../src/engine/cache/environment.js';
import { canonicalJson, canonicalKeyInput, sha256, stageKey } from '../src/engine/cache/hash.js';
import type { KeyInput } from '../src/engine/cache/hash.js';
import type { Manifest } from '../src/engine/cache/manifest.js';
import type { PlannedRun } from '../src/engine/explain/plan.js';
import { diffTables, formatTableDiff, tablesEqual } from '../src/engine/explain/table-diff.js';
import { createAjv } from '../src/engine/pipeline/validate.js';
import { compileCached } from '../src/engine/pipeline/validator-cache.js';
import { sampleCached } from '../src/engine/explain/verify.js';
import type { Table } from '../src/table/table.js';

describe('table diff', () => {
  const t = (v: number[], w: number[]): Table => ({
    columns: [
      { name: 'v', type: 'INT32', data: Int32Array.from(v) },
      { name: 'w', type: 'DOUBLE', data: Float64Array.from(w) },
    ],
  });

  it('names the differing columns, the count and the first differing row', () => {
    expect(tablesEqual(diffTables(t([1, 2], [NaN, 0.5]), t([1, 2], [NaN, 0.5])))).toBe(true);
    const d = diffTables(t([1, 2, 3], [0, 0.5, 1]), t([1, 2, 3], [0, 0.25, 2]));
    expect(d.columns.map((c) => c.column)).toEqual(['w']);
    expect(formatTableDiff(d)).toBe('column w: 2 of 3 rows differ, first at row 1: 0.5 -> 0.25');
    expect(
      formatTableDiff(
        diffTables(t([1], [0]), { columns: [{ name: 'v', type: 'DOUBLE', data: Float64Array.from([1]) }] }),
      ),
    ).toBe('column v: INT32 -> DOUBLE; column w: missing in the recomputed table');
    expect(formatTableDiff(diffTables(t([1], [0]), t([1, 2], [0, 0])))).toBe('rows 1 -> 2');
    expect(diffTables(t([0], [-0]), t([0], [0])).columns.map((c) => c.column)).toEqual(['w']);
  });
});

describe('roots', () => {
  it('groups roots by reason, verbs by kind, at most three groups', () => {
    expect(
      formatRoots(
        [
          { id: 'a', reason: 'with.x 1 -> 2' },
          { id: 'b', reason: 'with.x 1 -> 2' },
        ],
        'run',
      ),
    ).toEqual(['upstream a, b changed (with.x 1 -> 2)']);
    expect(formatRoots([{ id: 'a', reason: 'no cached entry of stage gen' }], 'plan')).toEqual([
      'upstream a will run (no cached entry of stage gen)',
    ]);
    expect(formatRoots([{ id: 'a', reason: 'corrupt: x.bin (missing)' }], 'run')).toEqual([
      'upstream a ran (corrupt: x.bin (missing))',
    ]);
    const many = ['1', '2', '3', '4', '5'].map((r) => ({ id: `r${r}`, reason: `with.k 0 -> ${r}` }));
    expect(formatRoots(many, 'plan').at(-1)).toBe('and 2 more upstream causes');
  });
});

describe('environment', () => {
  const entry = (backend: string | undefined, env: Record<string, string>, requested = 'auto') =>
    ({
      info: backend === undefined ? {} : { backend },
      environment: { backend: requested, threads: 2, env, platform: `${process.platform}-${process.arch}` },
    }) as unknown as Manifest;

  it('keeps only the knobs that change results', () => {
    expect(
      resultKnobs({
        TF_NUM_INTRAOP_THREADS: '4',
        TF_CLI_CONFIG_FILE: 'x',
        GROKPIPE_BACKEND: 'wasm',
        HOME: '/root',
        OMP_NUM_THREADS: '2',
      }),
    ).toEqual({
      GROKPIPE_BACKEND: 'wasm',
      OMP_NUM_THREADS: '2',
      TF_NUM_INTRAOP_THREADS: '4',
    });
  });

  it('reports backend and knob differences only for stages that recorded a backend', () => {
    const now = {
      backend: 'tensorflow',
      threads: null,
      env: { TF_NUM_INTRAOP_THREADS: '8' },
      platform: `${process.platform}-${process.arch}`,
    };
    expect(environmentChanges(entry('wasm', { TF_NUM_INTRAOP_THREADS: '2' }), now)).toEqual([
      'backend wasm -> tensorflow',
      'env TF_NUM_INTRAOP_THREADS 2 -> 8',
    ]);
    expect(environmentChanges(entry(undefined, {}), now)).toEqual([]);
    expect(environmentChanges(entry('wasm', {}, 'wasm'), { ...now, backend: 'auto', env: {} })).toEqual([
      'backend wasm -> auto',
    ]);
    expect(environmentChanges(entry('wasm', {}), { ...now, backend: 'auto', env: {} })).toEqual([]);
  });
});

describe('verify sampling', () => {
  it('picks k distinct cached runs, in plan order', () => {
    const plan = ['a', 'b', 'c', 'd'].map(
      (id, i) => ({ run: { id }, status: i === 1 ? 'planned' : 'cached' }) as unknown as PlannedRun,
    );
    const picked = sampleCached(plan, 2, () => 0.5);
    expect(picked.size).toBe(2);
    expect([...picked].every((r) => r.id !== 'b')).toBe(true);
    expect(sampleCached(plan, 10).size).toBe(3);
  });
});

describe('validator cache', () => {
  it('a schema compiled once is loaded from the cache later, with the same results (defaults filled)', () => {
    const schema = {
      type: 'object',
      properties: {
        k: { type: 'integer', minimum: 1, default: 3 },
        tag: { type: 'string', default: `t${Date.now()}` },
      },
    };
    const options = { test: 'validator-cache' };
    let made = 0;
    const make = (): Ajv => {
      made++;
      return createAjv();
    };
    const first = compileCached(make, schema, options);
    expect(made).toBe(1);
    const again = compileCached(
      () => {
        throw new Error('should come from the cache');
      },
      schema,
      options,
    );
    const a = {};
    expect(again(a)).toBe(true);
    expect(a).toEqual({ k: 3, tag: schema.properties.tag.default });
    expect(again({ k: 0 })).toBe(false);
    expect(again.errors?.[0]).toMatchObject({ instancePath: '/k', keyword: 'minimum' });
    expect(first({ k: 0 })).toBe(false);
    // Leave no file of this one-off schema behind.
    const dir = join(
      dirname(createRequire(import.meta.url).resolve('ajv')).split(`${sep}node_modules${sep}`)[0],
      'node_modules',
      '.cache',
      'grokpipe',
      'validators',
    );
    const mine = readdirSync(dir).filter((f) =>
      readFileSync(join(dir, f), 'utf8').includes(schema.properties.tag.default),
    );
    expect(mine).toHaveLength(1);
    for (const f of mine) rmSync(join(dir, f));
  });
});

describe('stage keys', () => {
  it('canonicalKeyInput is canonicalJson of a key input, whatever its members', () => {
    const inputs: KeyInput[] = [
      { stage: 'generate', content_hash: 'a'.repeat(64) },
      { stage: 'gén "q" \u2028', content_hash: 'b\\c' },
      { stage: 'split', content_hash: 'c', matrix: { seed: 1, entities: 2e21, name: 'ü', list: [1.5, null, 'x'] } },
      { stage: 'split', content_hash: 'd', matrix: undefined },
      { stage: 'split', content_hash: 'e', matrix: {} },
      { content_hash: 'f', stage: 'x', extra: { b: 1, a: 2 } } as unknown as KeyInput,
      { content_hash: 7, stage: 'x' } as unknown as KeyInput,
    ];
    for (const i of inputs) expect(canonicalKeyInput(i)).toBe(canonicalJson(i));
  });

  it('stageKey is the SHA-256 of the canonical JSON of the components', () => {
    const c = {
      stage: 'train',
      version: '3',
      params: { lr: 0.001, b: [1, 2] },
      inputs: [
        { stage: 'tokenize', content_hash: '0'.repeat(64) },
        { stage: 'split', content_hash: '1'.repeat(64), matrix: { seed: 2 } },
      ],
    };
    expect(stageKey(c)).toBe(sha256(canonicalJson(c)));
    expect(stageKey(c)).toBe(createHash('sha256').update(canonicalJson(c)).digest('hex'));
  });
});

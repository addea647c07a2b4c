/**
 * `__proto__` written by a user is a field like any other: `--set` cannot reach `Object.prototype`
 * (which would give every object of the process a stray field and hide the argument at fault),
 * and a YAML `__proto__:` key is reported as unknown where it is written, not dropped in silence.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandMatrix } from '../src/engine/pipeline/matrix.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const PIPELINE = 'stages:\n  g:\n    uses: gen\n    with: { n: 3 }\n';

describe('prototype pollution', () => {
  it('--set <stage>.with.__proto__.x=1 names the argument and leaves Object.prototype alone', async () => {
    const dir = tempDir('gp-proto-');
    const file = writeFileIn(dir, 'p.yaml', PIPELINE);
    const store = join(dir, 'store');
    const r = await cli(['status', file, '--store', store, '--set', 'g.with.__proto__.polluted=1']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      '--set g.with.__proto__.polluted=1: stages.g.with.__proto__: unknown field (allowed: n, seed, comment)\n',
    );
    expect(existsSync(store)).toBe(false);
  });

  it('a YAML __proto__ key in with: is an unknown field at its line, not silently dropped', async () => {
    const dir = tempDir('gp-proto-');
    const file = writeFileIn(dir, 'p.yaml', 'stages:\n  g:\n    uses: gen\n    with: { __proto__: { n: 5 } }\n');
    const store = join(dir, 'store');
    const r = await cli(['run', file, '--store', store]);
    expect(r.code).toBe(2);
    expect(r.stderr.replaceAll(file, 'p.yaml')).toBe(
      'p.yaml:4:13: stages.g.with.__proto__: unknown field (allowed: n, seed, comment)\n',
    );
    expect(existsSync(store)).toBe(false);
  });
  it('a matrix include entry with a __proto__ key extends a combination with a field, not a prototype', () => {
    const entry = JSON.parse('{"a": 1, "__proto__": {"polluted": true}}') as Record<string, number>;
    const { sweep } = expandMatrix({ a: [1, 2], include: [entry] });
    const [first, second] = sweep.combos;
    expect(Object.getPrototypeOf(first)).toBe(Object.prototype);
    expect(Object.hasOwn(first, '__proto__')).toBe(true);
    expect((first as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(second, '__proto__')).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { pairGoesToTest, pairHash, testThreshold } from '../src/task/pair-hash.js';
import { PairSpace } from '../src/task/pair-space.js';
import { openStream, streamWords } from '../src/task/streams.js';
import type { IndexPool } from '../src/task/sample.js';
import { sampleDistinct, sampleFromPool } from '../src/task/sample.js';

describe('seeded streams', () => {
  it('repeat for the same parts and differ otherwise', () => {
    const draw = (...parts: (string | number)[]) => {
      const rng = openStream(...parts);
      return [rng.next(), rng.next(), rng.next()];
    };
    expect(draw('a', 1)).toEqual(draw('a', 1));
    expect(draw('a', 1)).not.toEqual(draw('a', 2));
    expect(draw('a', 1)).not.toEqual(draw('b', 1));
    expect(draw('a', 1)).not.toEqual(draw('a', '1'));
    expect(() => streamWords([Number.NaN])).toThrow(TypeError);
  });
});

describe('sampleDistinct', () => {
  it('draws k distinct sorted integers in range, the whole range when k = n', () => {
    const s = sampleDistinct(openStream('s'), 1e12, 1000);
    expect(s.length).toBe(1000);
    expect(new Set(s).size).toBe(1000);
    for (let i = 1; i < s.length; i++) expect(s[i]).toBeGreaterThan(s[i - 1]);
    expect(s[999]).toBeLessThan(1e12);
    expect(Array.from(sampleDistinct(openStream('s'), 5, 5))).toEqual([0, 1, 2, 3, 4]);
    expect(() => sampleDistinct(openStream('s'), 5, 6)).toThrow(RangeError);
  });

  it('is uniform over the range', () => {
    const counts = new Array<number>(10).fill(0);
    const rng = openStream('u');
    for (let t = 0; t < 2000; t++) for (const i of sampleDistinct(rng, 10, 3)) counts[i]++;
    // 600 expected per integer.
    for (const c of counts) expect(Math.abs(c - 600)).toBeLessThan(100);
  });
});

describe('sampleFromPool', () => {
  // The even integers of [0, 1000) as a pool known by membership.
  const evens: IndexPool = {
    space: 1000,
    rate: 0.5,
    contains: (i) => i % 2 === 0,
    enumerate: () => Float64Array.from({ length: 500 }, (_, i) => 2 * i),
  };

  it('draws k distinct members by rejection when k is small, by enumeration when large', () => {
    const small = sampleFromPool(openStream('p'), evens, 100);
    expect(small.indices.length).toBe(100);
    expect(small.poolSize).toBeUndefined();
    expect(new Set(small.indices).size).toBe(100);
    expect(small.indices.every((i) => i % 2 === 0)).toBe(true);
    const large = sampleFromPool(openStream('p'), evens, 400);
    expect(large.poolSize).toBe(500);
    expect(new Set(large.indices).size).toBe(400);
    expect(large.indices.every((i) => i % 2 === 0)).toBe(true);
    const all = sampleFromPool(openStream('p'), evens, 10_000);
    expect(all.indices.length).toBe(500);
  });

  it('falls back to enumeration when the pool is much smaller than its expected size', () => {
    const tiny: IndexPool = {
      space: 1000,
      rate: 0.5,
      contains: (i) => i < 3,
      enumerate: () => Float64Array.from([2, 0, 1]),
    };
    const r = sampleFromPool(openStream('t'), tiny, 10);
    expect(Array.from(r.indices)).toEqual([0, 1, 2]);
    expect(r.poolSize).toBe(3);
  });

  it('is uniform over the pool', () => {
    const counts = new Map<number, number>();
    const rng = openStream('pu');
    const pool: IndexPool = {
      space: 40,
      rate: 0.5,
      contains: (i) => i % 2 === 0,
      enumerate: () => Float64Array.from({ length: 20 }, (_, i) => 2 * i),
    };
    for (let t = 0; t < 4000; t++)
      for (const i of sampleFromPool(rng, pool, 2).indices) counts.set(i, (counts.get(i) ?? 0) + 1);
    expect(counts.size).toBe(20);
    for (const c of counts.values()) expect(Math.abs(c - 400)).toBeLessThan(90);
  });
});

describe('pair space and pair hash', () => {
  it('decodes every index to a distinct ordered pair, in (attribute, e1, e2) order', () => {
    const members = Int32Array.from([1, 4, 7, 0, 2, 9]); // 3 per attribute, 2 attributes
    const space = new PairSpace(members, 3, 2);
    expect(space.size).toBe(12);
    const out = new Int32Array(3);
    const seen: string[] = [];
    for (let i = 0; i < space.size; i++) {
      space.decode(i, out);
      seen.push(`${out[0]}:${out[1]}:${out[2]}`);
    }
    expect(seen).toEqual([
      '0:1:4',
      '0:1:7',
      '0:4:1',
      '0:4:7',
      '0:7:1',
      '0:7:4',
      '1:0:2',
      '1:0:9',
      '1:2:0',
      '1:2:9',
      '1:9:0',
      '1:9:2',
    ]);
    expect(space.indexOf(1, 2, 0)).toBe(10);
    expect(() => new PairSpace(members, 4, 2)).toThrow(RangeError);
  });

  it('is symmetric and sends about id_test_fraction of the pairs to the test side', () => {
    const keys = { a: 123, b: -7 };
    const thr = testThreshold(0.1);
    let test = 0;
    for (let e1 = 0; e1 < 300; e1++) {
      for (let e2 = e1 + 1; e2 < 300; e2++) {
        const side = pairGoesToTest(keys, thr, 5, e1, e2);
        if (side !== pairGoesToTest(keys, thr, 5, e2, e1)) throw new Error('asymmetric');
        if (side) test++;
      }
    }
    // 44,850 pairs: 4,485 expected, standard deviation ~64.
    expect(Math.abs(test - 4485)).toBeLessThan(300);
    expect(pairHash(keys, 1, 2, 3)).not.toBe(pairHash({ a: 124, b: -7 }, 1, 2, 3));
    expect(testThreshold(0)).toBe(0);
    expect(testThreshold(1)).toBe(2 ** 32);
  });
});

import { describe, expect, it } from 'vitest';
import { midRanks, rankTrend, spearman, trendStatement } from '../src/analysis/trend.js';
import { decodeTable, encodeTable } from '../src/table/parquet.js';
import { tableHash, toRows } from '../src/table/table.js';
import type { Table } from '../src/table/table.js';

describe('Spearman rank correlation with censored runs', () => {
  it('mid-ranks: ties share the mean rank, +Infinity ranks last', () => {
    expect(midRanks([30, 10, 20, 10])).toEqual([4, 1.5, 3, 1.5]);
    expect(midRanks([5, Infinity, 1, Infinity])).toEqual([2, 3.5, 1, 3.5]);
    expect(() => midRanks([1, Number.NaN])).toThrow(/NaN/);
  });

  it('agrees with scipy.stats.spearmanr (1.17.1) on tied and censored data', () => {
    // python3 -c "from scipy.stats import spearmanr; print(spearmanr(x, y).statistic)"
    const x = [2, 2, 2, 3, 3, 3, 4, 4, 4];
    const y = [800, 900, 700, 1500, 1300, Infinity, 2500, Infinity, Infinity];
    expect(spearman(x, y)).toBeCloseTo(0.8576900278702358, 12);
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.8207826816681233, 12);
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN();
  });

  it('bootstrap interval: seeded (same runs, same interval), brackets rho, widens with fewer runs', () => {
    const x = [2, 2, 2, 3, 3, 3, 4, 4, 4];
    const y = [800, 900, 700, 1500, 1300, Infinity, 2500, Infinity, Infinity];
    const a = rankTrend(x, y);
    expect(rankTrend(x, y)).toEqual(a);
    expect(a.low).toBeLessThanOrEqual(a.rho);
    expect(a.high).toBeGreaterThanOrEqual(a.rho);
    expect(a.low).toBeGreaterThan(0);
    expect(a.resamples).toBeGreaterThan(1900);
    const noisy = rankTrend([1, 1, 2, 2, 3, 3], [5, 1, 2, 6, 3, 4]);
    expect(noisy.low).toBeLessThan(0);
    expect(noisy.high).toBeGreaterThan(0);
    expect(rankTrend(x, y, 1)).not.toEqual(a);
  });

  it('the statement says what the interval says', () => {
    const base = { knob: 'values', metric: 'ood_step_0.9', split: 'OOD', threshold: 0.9, runs: 9, reached: 7 };
    expect(trendStatement({ ...base, trend: { rho: 0.86, low: 0.62, high: 0.97, resamples: 2000 } })).toBe(
      'OOD ≥0.9 vs values: Spearman ρ = +0.86, 95% CI [+0.62, +0.97] (9 runs, 7 reached; never = slowest): later as values grows',
    );
    expect(trendStatement({ ...base, trend: { rho: -0.5, low: -0.9, high: -0.1, resamples: 2000 } })).toMatch(
      /sooner as values grows$/,
    );
    expect(trendStatement({ ...base, trend: { rho: 0.2, low: -0.4, high: 0.7, resamples: 2000 } })).toMatch(
      /no clear trend \(the interval includes 0\)$/,
    );
    expect(
      trendStatement({
        ...base,
        reached: 0,
        trend: { rho: Number.NaN, low: Number.NaN, high: Number.NaN, resamples: 0 },
      }),
    ).toMatch(/no trend measurable, no run reached θ$/);
  });
});

describe('NULL in tables', () => {
  it('round-trips through Parquet as NULL; a column without NULLs hashes as before', async () => {
    const plain: Table = { columns: [{ name: 's', type: 'INT32', data: Int32Array.from([1, 2]) }] };
    const flagged: Table = {
      columns: [{ name: 's', type: 'INT32', data: Int32Array.from([1, 2]), nulls: [false, false] }],
    };
    expect(tableHash(flagged)).toBe(tableHash(plain));
    const t: Table = {
      columns: [
        { name: 's', type: 'INT32', data: Int32Array.from([1, 7]), nulls: [false, true] },
        { name: 'd', type: 'DOUBLE', data: Float64Array.from([0, 0.5]), nulls: [true, false] },
      ],
    };
    const other: Table = {
      columns: [
        { name: 's', type: 'INT32', data: Int32Array.from([1, 0]), nulls: [false, true] },
        { name: 'd', type: 'DOUBLE', data: Float64Array.from([Number.NaN, 0.5]), nulls: [true, false] },
      ],
    };
    // The placeholder under a NULL is not part of the value.
    expect(tableHash(other)).toBe(tableHash(t));
    const { bytes, contentHash } = encodeTable(t);
    const back = await decodeTable(bytes, 't.parquet');
    expect(toRows(back)).toEqual([
      { s: 1, d: null },
      { s: null, d: 0.5 },
    ]);
    expect(tableHash(back)).toBe(contentHash);
  });
});

/**
 * Uniform sampling without replacement over index spaces too large to enumerate.
 *
 * The split draws facts by *index*: an integer that decodes to an (attribute, entity pair) or an
 * (attribute, entity). These helpers return sorted index sets; decoding them is the caller's job.
 * Indices are plain numbers (safe integers, up to 2^53), kept in `Float64Array`s.
 */
import type { RandomGenerator } from './streams.js';
import { below } from './streams.js';

/**
 * `k` distinct integers drawn uniformly from `[0, n)` (every k-subset equally likely), ascending.
 * Floyd's algorithm: `k` draws and a hash set of `k` entries, whatever `n`.
 * @throws RangeError when `k` is negative, not an integer, or greater than `n`.
 */
export function sampleDistinct(rng: RandomGenerator, n: number, k: number): Float64Array {
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`cannot draw ${k} distinct integers from [0, ${n})`);
  if (k === n) return Float64Array.from({ length: n }, (_, i) => i);
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = below(rng, j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return Float64Array.from(chosen).sort();
}

/**
 * A subset of an index space `[0, space)` known by a membership test rather than by a list: e.g. the
 * ordered ID-ID pairs whose unordered pair the pair hash sends to the training pool.
 */
export interface IndexPool {
  /** Size of the index space the pool lives in (a safe integer). */
  readonly space: number;
  /** Expected fraction of the space that is in the pool, in `[0, 1]` (chooses the method); 0 means the pool is empty. */
  readonly rate: number;
  /** True when index `i` (an integer in `[0, space)`) is in the pool. */
  contains(i: number): boolean;
  /** Every index of the pool, in any order. Called only when the pool is expected to be small. */
  enumerate(): Float64Array;
}

/** Result of `sampleFromPool`. */
export interface PoolSample {
  /** The drawn indices, ascending: `k` of them, or the whole pool when it has fewer than `k`. */
  readonly indices: Float64Array;
  /** The exact pool size when the pool was enumerated, else `undefined` (only its expectation is known). */
  readonly poolSize: number | undefined;
}

/**
 * Draws `k` distinct indices uniformly from `pool` (every k-subset of the pool equally likely), or
 * the whole pool when it holds fewer than `k` (callers that need exactly `k` check the length).
 *
 * Method: when `k` is at most half the expected pool (`rate × space / 2`), rejection sampling: draw
 * uniform indices of the space, keep those in the pool and not yet drawn. Its expected number of
 * draws is at most `2k / rate`; past a budget of `8k / rate + 1024` draws (a pool much smaller than
 * expected) it falls back to the second method. Otherwise: enumerate the pool (then at most about
 * `2k` indices) and draw `k` of them by a partial Fisher-Yates shuffle.
 * @throws RangeError when `k` is negative or not an integer.
 */
export function sampleFromPool(rng: RandomGenerator, pool: IndexPool, k: number): PoolSample {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`cannot draw ${k} indices`);
  if (pool.rate === 0) return { indices: new Float64Array(0), poolSize: 0 };
  if (k === 0) return { indices: new Float64Array(0), poolSize: undefined };
  if (k <= (pool.rate * pool.space) / 2) {
    const budget = Math.ceil((8 * k) / pool.rate) + 1024;
    const chosen = new Set<number>();
    for (let draws = 0; draws < budget && chosen.size < k; draws++) {
      const i = below(rng, pool.space);
      if (pool.contains(i)) chosen.add(i);
    }
    if (chosen.size === k) return { indices: Float64Array.from(chosen).sort(), poolSize: undefined };
  }
  const all = pool.enumerate();
  if (all.length <= k) return { indices: all.sort(), poolSize: all.length };
  for (let t = 0; t < k; t++) {
    const r = t + below(rng, all.length - t);
    const tmp = all[t];
    all[t] = all[r];
    all[r] = tmp;
  }
  return { indices: all.slice(0, k).sort(), poolSize: all.length };
}

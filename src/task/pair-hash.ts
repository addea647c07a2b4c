/**
 * The seeded hash that decides on which side (training pool or ID-test pool) an unordered pair of
 * in-distribution entities falls, for one attribute.
 *
 * Wang et al. 2024 / docs/design.md §4: an ID-ID unordered pair goes to the ID-test pool with
 * probability `id_test_fraction`, else to the training pool, both orders on the same side.
 * Deciding the side by a hash of `(keys, attribute, min(e1, e2), max(e1, e2))` makes it a pure
 * function of the split's seed and the pair: no pair needs to be enumerated or remembered, and
 * both orders of a pair land on the same side by construction.
 *
 * The hash is MurmurHash3 (x86, 32-bit) over the four words `keyA, attribute, lo, hi` seeded with
 * `keyB`; the keys come from `streamWords` (SHA-256 of the split's seed and input). The side is
 * "test" when `hash / 2^32 < id_test_fraction`, so the probability is exact up to 2^-32.
 */

/** The two 32-bit keys of the pair hash (any int32 values). */
export interface PairHashKeys {
  readonly a: number;
  readonly b: number;
}

function mixWord(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * MurmurHash3-32 of `(keys.a, attribute, lo, hi)` seeded with `keys.b`, as an unsigned integer in
 * `[0, 2^32)`. Arguments are int32 values (entity and attribute indices); order matters, so callers
 * pass `lo <= hi` (see `pairGoesToTest`).
 */
export function pairHash(keys: PairHashKeys, attribute: number, lo: number, hi: number): number {
  let h = keys.b | 0;
  h = mixWord(h, keys.a);
  h = mixWord(h, attribute);
  h = mixWord(h, lo);
  h = mixWord(h, hi);
  h ^= 16; // length in bytes, as MurmurHash3 does
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The threshold for `pairGoesToTest`: `floor(probability × 2^32)`, clamped to `[0, 2^32]`.
 * `probability` is `id_test_fraction` in `[0, 1]`.
 */
export function testThreshold(probability: number): number {
  return Math.min(2 ** 32, Math.max(0, Math.floor(probability * 2 ** 32)));
}

/**
 * True when the unordered pair `{e1, e2}` of ID entities for `attribute` belongs to the ID-test
 * pool, false when it belongs to the training pool. Symmetric in `e1, e2`.
 * `threshold` is `testThreshold(id_test_fraction)`.
 */
export function pairGoesToTest(
  keys: PairHashKeys,
  threshold: number,
  attribute: number,
  e1: number,
  e2: number,
): boolean {
  return e1 < e2 ? pairHash(keys, attribute, e1, e2) < threshold : pairHash(keys, attribute, e2, e1) < threshold;
}

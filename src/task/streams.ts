/**
 * Seeded random streams for the comparison task, built on `pure-rand` (xoroshiro128+).
 *
 * Every random decision of `generate` and `split` draws from a stream opened here. A stream is
 * named by a list of parts (stage, seed, input hash, purpose); its 128-bit starting state is the
 * first 16 bytes of SHA-256 over those parts. So the same parts give the same numbers on every
 * platform, any change of a part gives an unrelated stream, and streams for different purposes
 * (e.g. the ID/OOD partition and the test sample) never share numbers: changing `test_size` does
 * not move the training set.
 *
 * Why not `src/models/train-rng.ts`, training's randomness: that one is seeded by the `seed` param
 * and a stream number, and its state is saved in checkpoints; the data stages need streams named
 * by what they are for and what they read. Both use the same generator; their seeding differs,
 * and changing either scheme changes every cached result of the stages that use it.
 */
import { createHash } from 'node:crypto';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

export type { RandomGenerator };

/** A part of a stream's name: stage and purpose tags, integer seeds, hex hashes. */
export type StreamPart = string | number;

/**
 * Four 32-bit words (signed int32) derived from `parts` by SHA-256, never all zero.
 * Used as a xoroshiro128+ state and as keys of the pair hash (`pair-hash.ts`).
 * @throws TypeError when a numeric part is not a finite number.
 */
export function streamWords(parts: readonly StreamPart[]): [number, number, number, number] {
  for (const p of parts) {
    if (typeof p === 'number' && !Number.isFinite(p)) throw new TypeError(`stream part ${p} is not finite`);
  }
  const digest = createHash('sha256')
    .update(JSON.stringify(['grokpipe-stream-v1', ...parts]))
    .digest();
  const words: [number, number, number, number] = [
    digest.readInt32LE(0),
    digest.readInt32LE(4),
    digest.readInt32LE(8),
    digest.readInt32LE(12),
  ];
  // xoroshiro128+ must not start from the all-zero state (probability 2^-128, but cheap to rule out).
  if (words.every((w) => w === 0)) words[0] = 1;
  return words;
}

/**
 * Opens the seeded stream named by `parts` (see the module comment).
 * @throws TypeError when a numeric part is not a finite number.
 */
export function openStream(...parts: StreamPart[]): RandomGenerator {
  return xoroshiro128plusFromState(streamWords(parts));
}

/**
 * A uniform integer in `[0, n)` from `rng` (unbiased: `pure-rand`'s `uniformInt`).
 * `n` must be a positive safe integer; for `n` up to 2^32 it consumes one draw (more on rejection).
 */
export function below(rng: RandomGenerator, n: number): number {
  return uniformInt(rng, 0, n - 1);
}

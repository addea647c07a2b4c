/**
 * Seeded randomness for model initialisation and data shuffling (pure-rand's xoroshiro128+).
 *
 * Every random draw of training goes through a `Rng` made from an integer seed, so a run is a
 * function of its params; a generator's state is a short list of int32 that a checkpoint stores.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

/** A seeded, mutable random generator (xoroshiro128+, period 2^128 - 1). */
export type Rng = JumpableRandomGenerator;

/**
 * A generator seeded with `seed` (an integer; only its low 32 bits matter).
 * `stream` > 0 jumps it 2^64 draws ahead per stream, giving independent sequences from one seed
 * (stream 0: weight init, stream 1: data order).
 */
export function makeRng(seed: number, stream = 0): Rng {
  const rng = xoroshiro128plus(seed | 0);
  for (let i = 0; i < stream; i++) rng.jump();
  return rng;
}

/** The generator's state, to store in a checkpoint (4 int32). */
export function rngState(rng: Rng): number[] {
  return [...rng.getState()];
}

/** A generator restored from `rngState`. @throws Error when the state is malformed. */
export function rngFromState(state: readonly number[]): Rng {
  if (state.length !== 4 || !state.every(Number.isInteger)) {
    throw new Error(`bad RNG state ${JSON.stringify(state)} (expected 4 integers)`);
  }
  return xoroshiro128plusFromState(state);
}

/**
 * Fills `out` with independent normal draws N(mean, std^2) (Box–Muller on 53-bit uniforms).
 * @returns `out`
 */
export function fillNormal(rng: Rng, out: Float32Array, mean = 0, std = 1): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - uniformFloat64(rng); // (0, 1]: log is finite
    const u2 = uniformFloat64(rng);
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** A uniformly random permutation of `0 .. n-1` (Fisher–Yates), as int32. */
export function permutation(rng: Rng, n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Seeded randomness of training: weight initialisation and the order of training examples
 * (pure-rand's xoroshiro128+).
 *
 * Every random draw of training goes through a `Rng` made from the `seed` param and a stream
 * number (jumps of 2^64 draws), so a run is a function of its params; a generator's state is a
 * short list of int32 that a checkpoint stores, so a resumed run draws what it would have drawn.
 *
 * Why not `src/task/streams.ts`, the data stages' randomness: those streams are named by hashing
 * their purpose and inputs (a new purpose never shifts another's numbers), and are never saved
 * mid-way. Here one seed must reproduce a training run bit for bit, and the state must fit in a
 * checkpoint. Both use the same generator; their seeding differs, and changing either scheme
 * changes every cached result of the stages that use it.
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

/**
 * Fills `out` with independent uniform draws from `[low, high)` (53-bit uniforms).
 * @returns `out`
 */
export function fillUniform(rng: Rng, out: Float32Array, low: number, high: number): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * uniformFloat64(rng);
  return out;
}

/**
 * A `[rows, cols]` matrix (row-major) with orthonormal rows (when `rows <= cols`) or orthonormal
 * columns (otherwise), times `gain`: PyTorch's `nn.init.orthogonal_` (Saxe et al. 2014), drawn as
 * modified Gram–Schmidt on a standard normal matrix (the same distribution as its QR with sign
 * correction: Haar-uniform). O(min(rows, cols)² · max(rows, cols)) on the host.
 */
export function orthogonal(rng: Rng, rows: number, cols: number, gain = 1): Float32Array {
  const k = Math.min(rows, cols);
  const n = Math.max(rows, cols);
  // k vectors of length n, to orthonormalise: the rows, or the columns of a tall matrix.
  const v = Float64Array.from(fillNormal(rng, new Float32Array(k * n)));
  for (let i = 0; i < k; i++) {
    const vi = v.subarray(i * n, i * n + n);
    for (let j = 0; j < i; j++) {
      const vj = v.subarray(j * n, j * n + n);
      let dot = 0;
      for (let c = 0; c < n; c++) dot += vi[c] * vj[c];
      for (let c = 0; c < n; c++) vi[c] -= dot * vj[c];
    }
    let norm = 0;
    for (let c = 0; c < n; c++) norm += vi[c] * vi[c];
    const s = 1 / Math.sqrt(norm);
    for (let c = 0; c < n; c++) vi[c] *= s;
  }
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < k; i++) {
    for (let c = 0; c < n; c++) {
      // Vector i is row i (rows <= cols) or column i (rows > cols).
      if (rows <= cols) out[i * cols + c] = gain * v[i * n + c];
      else out[c * cols + i] = gain * v[i * n + c];
    }
  }
  return out;
}

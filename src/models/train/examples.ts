/**
 * Examples as the trainer sees them (flat host arrays of the tokenize tables' rows), the rows of a
 * batch as tensors, and the seeded order in which training draws them (`BatchSampler`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { permutation, rngFromState, rngState } from '../train-rng.js';
import type { Rng } from '../train-rng.js';

/** A set of examples as flat host arrays (the tokenize tables' rows). */
export interface Examples {
  /** Input token ids, row-major `[n, seqLen]`, right-padded. */
  tokens: Int32Array;
  /** Answer position of each example, `length - 1`, `[n]`. */
  positions: Int32Array;
  /** Target token id of each example, `[n]`. */
  targets: Int32Array;
  /** Number of examples. */
  n: number;
  /** Columns of `tokens`. */
  seqLen: number;
}

/** The rows `indices` of `data`, as a new `Examples`. */
export function selectRows(data: Examples, indices: ArrayLike<number>): Examples {
  const L = data.seqLen;
  const n = indices.length;
  const out: Examples = {
    tokens: new Int32Array(n * L),
    positions: new Int32Array(n),
    targets: new Int32Array(n),
    n,
    seqLen: L,
  };
  for (let i = 0; i < n; i++) {
    const r = indices[i];
    out.tokens.set(data.tokens.subarray(r * L, r * L + L), i * L);
    out.positions[i] = data.positions[r];
    out.targets[i] = data.targets[r];
  }
  return out;
}

/** Rows `indices` of `data` as tensors: tokens `[b, seqLen]`, positions `[b]`, targets `[b]` (int32). */
export function batchTensors(
  data: Examples,
  indices: ArrayLike<number>,
): { tokens: tf.Tensor2D; positions: tf.Tensor1D; targets: tf.Tensor1D } {
  const rows = selectRows(data, indices);
  return {
    tokens: tf.tensor2d(rows.tokens, [rows.n, rows.seqLen], 'int32'),
    positions: tf.tensor1d(rows.positions, 'int32'),
    targets: tf.tensor1d(rows.targets, 'int32'),
  };
}

/**
 * Rows of each member's examples as one ensemble batch (`members.ts`): member m's rows
 * `indices[m]` of `data[m]`, each member the same number of rows `b`. Tokens
 * `[members, b, seqLen]`, positions and targets `[members, b]` (int32).
 * @throws Error when the members' row counts or sequence lengths differ.
 */
export function membersBatchTensors(
  data: readonly Examples[],
  indices: readonly ArrayLike<number>[],
): { tokens: tf.Tensor3D; positions: tf.Tensor2D; targets: tf.Tensor2D } {
  const b = indices[0].length;
  const L = data[0].seqLen;
  if (indices.some((ix) => ix.length !== b) || data.some((d) => d.seqLen !== L))
    throw new Error('ensemble batch: members need the same number of rows and sequence length');
  const M = data.length;
  const tokens = new Int32Array(M * b * L);
  const positions = new Int32Array(M * b);
  const targets = new Int32Array(M * b);
  data.forEach((d, m) => {
    const rows = selectRows(d, indices[m]);
    tokens.set(rows.tokens, m * b * L);
    positions.set(rows.positions, m * b);
    targets.set(rows.targets, m * b);
  });
  return {
    tokens: tf.tensor3d(tokens, [M, b, L], 'int32'),
    positions: tf.tensor2d(positions, [M, b], 'int32'),
    targets: tf.tensor2d(targets, [M, b], 'int32'),
  };
}

/** Where a `BatchSampler` stands: epoch, offset in it, RNG state before that epoch's permutation. */
export interface SamplerState {
  epoch: number;
  offset: number;
  rng: number[];
}

/**
 * Draws training example indices from a stream of seeded epoch permutations (an epoch is one pass
 * over the training examples; a batch may straddle two epochs, so every batch has the same size).
 * Its state fits in a checkpoint.
 */
export class BatchSampler {
  private perm: Int32Array;
  private rngAtEpoch: number[];

  /** @param rng consumed, one permutation per epoch. */
  constructor(
    readonly n: number,
    private rng: Rng,
    /** Epochs started (0-based index of the current one). */
    public epoch = 0,
    /** Examples of the current epoch already drawn. */
    public offset = 0,
  ) {
    if (n < 1) throw new Error('no training examples');
    this.rngAtEpoch = rngState(rng);
    this.perm = permutation(rng, n);
  }

  /** The next `size` indices (crossing into the next epoch as needed). */
  next(size: number): Int32Array {
    const out = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      if (this.offset === this.n) {
        this.epoch++;
        this.offset = 0;
        this.rngAtEpoch = rngState(this.rng);
        this.perm = permutation(this.rng, this.n);
      }
      out[i] = this.perm[this.offset++];
    }
    return out;
  }

  /** The next `size` indices without consuming them. */
  peek(size: number): Int32Array {
    return this.clone().next(size);
  }

  /** An independent copy. */
  clone(): BatchSampler {
    return BatchSampler.fromState(this.n, this.state());
  }

  /** Serialisable state. */
  state(): SamplerState {
    return { epoch: this.epoch, offset: this.offset, rng: [...this.rngAtEpoch] };
  }

  /** A sampler continuing from `state`. */
  static fromState(n: number, state: SamplerState): BatchSampler {
    return new BatchSampler(n, rngFromState(state.rng), state.epoch, state.offset);
  }
}

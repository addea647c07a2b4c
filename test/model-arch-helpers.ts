/**
 * Shared fixtures of the architecture tests (test/model-arch-*.test.ts): a tiny config of every
 * architecture, random tokens and tensors, tiny fact sets, random weight perturbations, and
 * relative differences (element-wise and norm-wise).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Arch, ModelConfig } from '../src/models/arch/registry.js';
import type { LanguageModel } from '../src/models/model.js';
import { fillNormal, makeRng, permutation } from '../src/models/train-rng.js';
import type { Examples } from '../src/models/train/examples.js';

/** Every architecture, in the order of the architectures pipeline. */
export const ARCHS: readonly Arch[] = ['gpt2', 'llama', 'rwkv', 'mamba'];

/** A small config of `arch`: 2 layers, d_model `d`, its defaults otherwise. */
export function tinyConfig(arch: Arch, vocab = 23, seq = 5, d = 16): ModelConfig {
  const base = { n_layers: 2, d_model: d, vocab_size: vocab, seq_len: seq };
  switch (arch) {
    case 'gpt2':
      return { arch, ...base, n_heads: 4, d_mlp: 4 * d };
    case 'llama':
      return { arch, ...base, n_heads: 2, d_mlp: 48, tie_embeddings: false, rope_base: 10000 };
    case 'rwkv':
      return { arch, ...base, d_mlp: 4 * d };
    case 'mamba':
      return { arch, ...base, d_state: 16, expand: 2, d_conv: 4, dt_rank: 2, tie_embeddings: true };
  }
}

/** `batch · seq` token ids uniform in `[0, vocab)`. */
export function randomTokens(batch: number, seq: number, vocab: number, seed: number): Int32Array {
  const rng = makeRng(seed);
  return Int32Array.from({ length: batch * seq }, () => (rng.next() >>> 0) % vocab);
}

/** A float32 tensor of N(0, std²) draws. */
export function randn(shape: number[], seed: number, std = 1): tf.Tensor {
  const n = shape.reduce((a, d) => a * d, 1);
  return tf.tensor(fillNormal(makeRng(seed), new Float32Array(n), 0, std), shape);
}

/** `max |a − b| / max(max |b|, 1e-12)`. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/**
 * Norm-wise relative error `‖a − b‖₂ / ‖b‖₂` (`b` the reference), summed in float64. Unlike an
 * element-wise relative error it stays meaningful for entries near zero: their differences are
 * measured against the size of the whole vector, not their own.
 * @returns 0 when `a` and `b` are both all zero, Infinity when only `b` is, NaN when either holds a NaN.
 * @throws Error when the lengths differ.
 */
export function relL2Error(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relL2Error: lengths differ (${a.length} vs ${b.length})`);
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    ref += b[i] ** 2;
  }
  if (ref === 0 && diff === 0) return 0;
  return Math.sqrt(diff / ref);
}

/**
 * Adds seeded Gaussian noise to every parameter of `model`, in `params` order: std `vectorStd` for
 * scalars and vectors, `matrixGain / sqrt(last axis)` for higher ranks (the 1/sqrt(width) scale
 * of the initialisations). Moves a model away from its initialisation, where some parameters are
 * exactly zero (RWKV-4's output projections) and so make the gradients of the parameters before
 * them vanish.
 */
export function perturbParams(model: LanguageModel, seed: number, vectorStd = 0.1, matrixGain = 0.5): void {
  const rng = makeRng(seed);
  tf.tidy(() => {
    for (const p of model.params.values()) {
      const std = p.rank >= 2 ? matrixGain / Math.sqrt(p.shape[p.rank - 1]) : vectorStd;
      p.assign(tf.add(p, tf.tensor(fillNormal(rng, new Float32Array(p.size), 0, std), p.shape)));
    }
  });
}

/** `max |a − b|`. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  return diff;
}

/**
 * `n` (≤ 81) distinct facts `a b <q> -> y` over a vocabulary of 24: (a, b) a pair of tokens in
 * [3, 12), the answer at position 2, an arbitrary target in [12, 24) that must be memorised.
 */
export function tinyFacts(n: number, seed: number): Examples {
  const rng = makeRng(seed);
  const pairs = permutation(rng, 81);
  const tokens = new Int32Array(n * 3);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    tokens[i * 3] = 3 + (pairs[i] % 9);
    tokens[i * 3 + 1] = 3 + Math.floor(pairs[i] / 9);
    tokens[i * 3 + 2] = 1;
    targets[i] = 12 + ((rng.next() >>> 0) % 12);
  }
  return { tokens, positions: new Int32Array(n).fill(2), targets, n, seqLen: 3 };
}

/**
 * The shared layer kit every architecture is built from: parameter creation with seeded
 * initialisation, a matmul whose gradient avoids transposed products, linear (in both weight
 * layouts), LayerNorm, RMSNorm, GELU, SiLU, embedding lookup and causal multi-head attention.
 * Functions are pure tensor code: call them inside `tf.tidy` (the trainer does).
 *
 * Shapes use `batch` (examples), `seq` (positions, at most 10 here), `d_model` (residual width).
 */
import * as tf from '@tensorflow/tfjs-core';
import { addBroadcast, fusedGelu, fusedLayerNorm, fusedLinear, fusedRmsNorm } from './fused.js';
import { fusedAttention, fusedAttentionApplies } from './native-attention.js';
import { nativeSilu, nativeSwiglu } from './native-activations.js';
import { nativeTokenPositionEmbedding } from './native-embedding.js';
import { nativeKernelsOn } from './native-kernels.js';
import { nativeLinear } from './native-linear.js';
import { nativePositionMask, nativeSelectPositions } from './native-positions.js';
import { fillNormal, fillUniform } from './train-rng.js';
import type { Rng } from './train-rng.js';

/** Swaps the last two axes of a rank-2 or rank-3 tensor (`[.., m, n]` → `[.., n, m]`), materialised. */
export function transposeLast<T extends tf.Tensor2D | tf.Tensor3D>(x: T): T {
  return (x.rank === 2 ? tf.transpose(x, [1, 0]) : tf.transpose(x, [0, 2, 1])) as T;
}

const explicitTransposeMatMul = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor2D | tf.Tensor3D, tf.Tensor2D | tf.Tensor3D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D | tf.Tensor3D, tf.Tensor2D | tf.Tensor3D];
      const g = dy as tf.Tensor2D | tf.Tensor3D;
      return [tf.matMul(g, transposeLast(sb)), tf.matMul(transposeLast(sa), g)];
    },
  };
});

let explicitTranspose = true;
let fused = true;
let fusedAffine = true;

/**
 * Chooses between the fused GELU/LayerNorm/RMSNorm of `fused.ts` (default: one tape node each,
 * far less memory) and the plain op chains written here (the reference forms, for tests).
 */
export function useFusedLayers(enabled: boolean): void {
  fused = enabled;
}

/**
 * Chooses between `linear` with a bias as one tape node (`fusedLinear` of `fused.ts`, default:
 * the same values bit for bit, fewer kernels) and the op chain written here (for tests).
 */
export function useFusedLinear(enabled: boolean): void {
  fusedAffine = enabled;
}

/**
 * Chooses how products with a transposed operand are computed: with explicit, materialised
 * transposes and plain products (`enabled`, for wasm, whose products with transpose flags run
 * 15-20x slower), or with TF.js's transpose flags (for BLAS and libtensorflow, where they are free).
 * `initBackend` sets it for the backend it starts; both give the same values.
 */
export function useExplicitTransposeGradient(enabled: boolean): void {
  explicitTranspose = enabled;
}

/**
 * `a @ b` (or `a @ bᵀ` with `transposeB`) for `[m, k] @ [k, n]` or batched `[B, m, k] @ [B, k, n]`
 * (`b` stored `[.., n, k]` when transposed) → `[.., m, n]`. With explicit transposes (see
 * `useExplicitTransposeGradient`) the gradient is `da = dy @ bᵀ`, `db = aᵀ @ dy` with the
 * transposes materialised, so every product is a plain one; otherwise TF.js's `BatchMatMul`
 * gradient with transpose flags (gradients.ts).
 */
export function matMul<T extends tf.Tensor2D | tf.Tensor3D>(a: T, b: T, transposeB = false): T {
  if (!explicitTranspose) return tf.matMul(a, b, false, transposeB) as T;
  return explicitTransposeMatMul(a, transposeB ? transposeLast(b) : b) as T;
}

/**
 * Affine map on the last axis: `x @ w + b`, for one model or for the members of an ensemble.
 * @param x `[..., d_in]` (one model), or `[members, ..., d_in]` when `w` is stacked
 * @param w `[d_in, d_out]` (the Hugging Face `Conv1D` layout of GPT-2), or `[members, d_in, d_out]`
 *   stacked: member m's rows of `x` use its matrix (one batched product)
 * @param b `[d_out]`, or `[members, 1, d_out]` when stacked; optional
 * @returns `[..., d_out]`
 * On `wasm-blas` one native kernel each way, with a bias or without (`native-linear.ts`).
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  if (b && fusedAffine) return fusedLinear(x, w, b, explicitTranspose);
  if (!b && nativeAffine(x, w)) return nativeLinear(x, w);
  const [dIn, dOut] = w.shape.slice(-2) as [number, number];
  const flat = matMul(tf.reshape(x, rows(w, dIn)) as tf.Tensor2D, w as tf.Tensor2D);
  const y = b ? tf.add(flat, b) : flat;
  return tf.reshape(y, [...x.shape.slice(0, -1), dOut]);
}

/**
 * A residual connection around an affine map: `residual + (x @ w + b)` (shapes as `linear`;
 * `residual` of the output's shape). On `wasm-blas` one native kernel each way, the `Add` folded
 * into the affine map's (`native-linear.ts`), with the same values bit for bit.
 */
export function residualLinear(residual: tf.Tensor, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const fits =
    residual.rank === x.rank &&
    residual.shape.every((d, i) => d === (i < x.rank - 1 ? x.shape[i] : w.shape[w.rank - 1]));
  if (fits && nativeAffine(x, w, residual, b)) return nativeLinear(x, w, b, residual);
  return tf.add(residual, linear(x, w, b));
}

/**
 * Affine map with a PyTorch `nn.Linear` weight (`[d_out, d_in]`, the layout of Hugging Face
 * LLaMA, RWKV and Mamba checkpoints): `x @ wᵀ (+ b)` (see `matMul` for how the transpose runs).
 * Without a bias, on `wasm-blas` one native kernel each way (`native-linear.ts`).
 * @param x `[..., d_in]`, or `[members, ..., d_in]` when `w` is stacked
 * @param w `[d_out, d_in]`, or `[members, d_out, d_in]` stacked (see `linear`)
 * @param b `[d_out]` (`[members, 1, d_out]` stacked), optional. @returns `[..., d_out]`
 */
export function linearT(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  if (!b && nativeAffine(x, w)) return nativeLinear(x, w, undefined, undefined, true);
  const [dOut, dIn] = w.shape.slice(-2) as [number, number];
  const flat = matMul(tf.reshape(x, rows(w, dIn)) as tf.Tensor2D, w as tf.Tensor2D, true);
  const y = b ? tf.add(flat, b) : flat;
  return tf.reshape(y, [...x.shape.slice(0, -1), dOut]);
}

/**
 * Whether an affine map of `x` and `w` (and the other operands `rest`) runs as `native-linear.ts`'
 * kernels: fused, with transpose flags, on `wasm-blas`, float32, and a stacked `w` with one matrix
 * per member of `x`. Without a bias, or with `linearT`'s, the op chains' bits are theirs too.
 */
function nativeAffine(x: tf.Tensor, w: tf.Tensor, ...rest: tf.Tensor[]): boolean {
  return (
    fusedAffine &&
    !explicitTranspose &&
    (w.rank === 2 || x.shape[0] === w.shape[0]) &&
    nativeKernelsOn() &&
    [x, w, ...rest].every((t) => t.dtype === 'float32')
  );
}

/** The shape that flattens an input of `w` to rows: `[n, d_in]`, or `[members, n, d_in]` for a stacked `w`. */
function rows(w: tf.Tensor, dIn: number): [number, number] {
  return (w.rank === 3 ? [w.shape[0], -1, dIn] : [-1, dIn]) as [number, number];
}

/**
 * Root-mean-square normalisation over the last axis (Zhang & Sennrich 2019), as LLaMA and Mamba:
 * `y = x / sqrt(mean(x²) + eps) * gamma`, no centring, no shift.
 * @param x `[..., d]`; `gamma` `[d]`. @returns `[..., d]`
 */
export function rmsNorm(x: tf.Tensor, gamma: tf.Tensor, eps = 1e-6): tf.Tensor {
  if (fused) return fusedRmsNorm(x, gamma, eps);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), gamma);
}

/**
 * SiLU / swish (Elfwing et al. 2018; Ramachandran et al. 2017): `x · σ(x)`. Elementwise. With the
 * fused layers on `wasm-blas`, one native kernel each way (`native-activations.ts`).
 */
export function silu(x: tf.Tensor): tf.Tensor {
  if (fused && nativeKernelsOn()) return nativeSilu(x);
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * SwiGLU's gate (Shazeer 2020), LLaMA's MLP before its down projection: `silu(gate) ⊙ up`. With
 * the fused layers on `wasm-blas`, one native kernel each way (`native-activations.ts`).
 * @param gate `[...]`; @param up the same shape. @returns `[...]`
 */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (fused && nativeKernelsOn()) return nativeSwiglu(gate, up);
  return tf.mul(silu(gate), up);
}

/**
 * Layer normalisation over the last axis (Ba et al. 2016):
 * `y = (x - mean) / sqrt(var + eps) * gamma + beta`, biased variance.
 * @param x `[..., d]`; `gamma`, `beta` `[d]`. @returns `[..., d]`
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  if (fused) return fusedLayerNorm(x, gamma, beta, eps);
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation as in GPT-2 (Hendrycks & Gimpel 2016, §2):
 * `0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))`, computed as the identical
 * `x · σ(2 sqrt(2/π) (x + 0.044715 x³))` because `0.5 (1 + tanh(u)) = σ(2u)` and the wasm
 * backend's `Sigmoid` is ~30x faster than its `Tanh`. Elementwise.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fused) return fusedGelu(x);
  const u = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), 2 * GELU_C);
  return tf.mul(x, tf.sigmoid(u));
}

/**
 * Embedding lookup: rows of `table` by id. Its gradient is an `UnsortedSegmentSum` over the ids
 * (registered for wasm/cpu in `backend.ts`).
 * @param table `[n_rows, d]`, or `[members, n_rows, d]` stacked (member m looks up its own table)
 * @param ids int32 `[..., seq]`; with a stacked table `[members, ..., seq]`
 * @returns `[...ids.shape, d]`
 */
export function embedding<R extends tf.Rank = tf.Rank.R3>(table: tf.Tensor, ids: tf.Tensor): tf.Tensor<R> {
  const d = table.shape[table.rank - 1];
  const flatIds = tf.reshape(ids, [-1]);
  if (table.rank === 2 || table.shape[0] === 1) {
    const rowsOf = table.rank === 2 ? table : tf.reshape(table, table.shape.slice(1));
    return tf.reshape<tf.Rank>(tf.gather(rowsOf, flatIds), [...ids.shape, d]) as tf.Tensor<R>;
  }
  // Member m's ids index rows m·n_rows ... of the tables laid end to end.
  const [members, nRows] = table.shape;
  const offsets = tf.mul(tf.range(0, members, 1, 'int32'), tf.scalar(nRows, 'int32'));
  const shifted = tf.add(tf.reshape(ids, [members, -1]), tf.reshape(offsets, [members, 1]));
  const rowsOf = tf.reshape(table, [members * nRows, d]);
  return tf.reshape<tf.Rank>(tf.gather(rowsOf, tf.reshape(shifted, [-1])), [...ids.shape, d]) as tf.Tensor<R>;
}

/**
 * Token plus learned position embeddings (GPT-2): `wte[tokens] + wpe[position]`, the position
 * table's first `seq` rows broadcast over the batch. With the fused layers on `wasm-blas`, one
 * native kernel each way (`native-embedding.ts`); otherwise a gather, a slice and `addBroadcast`.
 * @param wte `[vocab, d]`, or `[members, vocab, d]` stacked; @param wpe `[seq_len, d]` (`[members, seq_len, d]`)
 * @param tokens int32 `[members, batch, seq]` (members 1 with unstacked tables), `seq ≤ seq_len`
 * @returns `[members, batch, seq, d]`
 */
export function tokenPositionEmbedding(wte: tf.Tensor, wpe: tf.Tensor, tokens: tf.Tensor3D): tf.Tensor4D {
  if (fused && nativeKernelsOn()) return nativeTokenPositionEmbedding(wte, wpe, tokens) as tf.Tensor4D;
  const [members, , seq] = tokens.shape;
  const d = wte.shape[wte.rank - 1];
  const pos =
    wpe.rank === 3
      ? tf.reshape(tf.slice(wpe, [0, 0, 0], [members, seq, d]), [members, 1, seq, d])
      : tf.slice(wpe, [0, 0], [seq, d]);
  return addBroadcast(embedding(wte, tokens), pos) as tf.Tensor4D;
}

/**
 * Row `positions[i]` of example `i`: the hidden state at each example's answer position. On
 * `wasm-blas` one native kernel each way (`native-positions.ts`).
 * @param x `[batch, seq, d]`; @param positions int32 `[batch]`, each in `[0, seq)`. @returns `[batch, d]`
 */
export function selectPositions(x: tf.Tensor3D, positions: tf.Tensor1D): tf.Tensor2D {
  if (nativeKernelsOn() && x.dtype === 'float32') return nativeSelectPositions(x, positions);
  const [batch, seq, d] = x.shape;
  const rows = tf.add(tf.range(0, batch * seq, seq, 'int32'), tf.cast(positions, 'int32'));
  return tf.gather(tf.reshape(x, [batch * seq, d]), rows) as tf.Tensor2D;
}

/** Additive causal mask `[seq, seq]`: 0 where key ≤ query, -1e9 above the diagonal. */
export function causalMask(seq: number): tf.Tensor2D {
  const m = new Float32Array(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) m[i * seq + j] = -1e9;
  return tf.tensor2d(m, [seq, seq]);
}

/**
 * Additive mask `[batch, 1, 1, seq]` for one query per example at `positions[b]`: 0 for keys at or
 * before it, -1e9 after (the causal mask's row `positions[b]`). On `wasm-blas` one native kernel.
 * @param positions int32 `[batch]`
 */
export function positionMask(positions: tf.Tensor1D, seq: number): tf.Tensor4D {
  if (nativeKernelsOn()) return nativePositionMask(positions, seq);
  const after = tf.greater(tf.reshape(tf.range(0, seq, 1, 'int32'), [1, seq]), tf.reshape(positions, [-1, 1]));
  return tf.reshape(tf.mul(tf.cast(after, 'float32'), -1e9), [-1, 1, 1, seq]);
}

/**
 * Multi-head scaled dot-product attention (Vaswani et al. 2017, §3.2.1–3.2.2), all heads in one
 * batched product: `softmax(q kᵀ / sqrt(d_head) + mask) v`, per head.
 * @param q `[batch, n_q, d_model]`; @param k, v `[batch, seq, d_model]`; heads are `n_heads`
 *   consecutive slices of `d_head = d_model / n_heads` (the GPT-2 layout).
 * @param mask additive, broadcastable to `[batch, n_heads, n_q, seq]` (`causalMask`, `positionMask`).
 * @returns `[batch, n_q, d_model]`, heads concatenated in the same layout.
 * On `wasm-blas`, for sequences up to `MAX_FUSED_SEQ`, two native kernels (`native-attention.ts`).
 */
export function multiHeadAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  nHeads: number,
  mask: tf.Tensor,
): tf.Tensor3D {
  const [batch, nQ, dModel] = q.shape;
  const seq = k.shape[1];
  if (q.dtype === 'float32' && fusedAttentionApplies([batch, nQ, seq, dModel], nHeads, mask))
    return fusedAttention(q, k, v, nHeads, mask);
  const dHead = dModel / nHeads;
  const heads = (x: tf.Tensor3D, n: number) => tf.reshape(x, [batch, n, nHeads, dHead]);
  const qh = tf.reshape(tf.transpose(heads(q, nQ), [0, 2, 1, 3]), [batch * nHeads, nQ, dHead]) as tf.Tensor3D;
  const kh = tf.reshape(tf.transpose(heads(k, seq), [0, 2, 1, 3]), [batch * nHeads, seq, dHead]) as tf.Tensor3D;
  const vh = tf.reshape(tf.transpose(heads(v, seq), [0, 2, 1, 3]), [batch * nHeads, seq, dHead]) as tf.Tensor3D;
  const scores = tf.add(tf.mul(tf.reshape(matMul(qh, kh, true), [batch, nHeads, nQ, seq]), 1 / Math.sqrt(dHead)), mask);
  const probs = tf.reshape(tf.softmax(scores), [batch * nHeads, nQ, seq]) as tf.Tensor3D;
  const out = matMul(probs, vh); // [batch * n_heads, n_q, d_head]
  return tf.reshape(tf.transpose(tf.reshape(out, [batch, nHeads, nQ, dHead]), [0, 2, 1, 3]), [batch, nQ, dModel]);
}

/** Causal self-attention: `multiHeadAttention` with `causalMask`. Shapes `[batch, seq, d_model]`. */
export function causalSelfAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, nHeads: number): tf.Tensor3D {
  return multiHeadAttention(q, k, v, nHeads, causalMask(q.shape[1]));
}

/**
 * The weight-decay rule of GPT-2 training as in nanoGPT (`configure_optimizers`): decay every
 * parameter of rank ≥ 2 (linear weights and the token/position embeddings), none on rank-1
 * parameters (biases, LayerNorm gains and shifts). Matches docs/design.md §4 "none on biases and norms".
 */
export function decaysByRank(param: tf.Tensor): boolean {
  return param.rank >= 2;
}

let modelCounter = 0;

/**
 * Creates a model's parameters as `tf.Variable`s under their checkpoint names (`h.0.attn.c_attn.weight`),
 * drawing initial values from a seeded generator in creation order. TF.js variable names must be
 * unique per process, so each store prefixes an id internally; `params` is keyed by the plain name.
 *
 * Given one generator per member (an ensemble, `members.ts`), every parameter is stacked
 * `[members, ...shape]`: member m's slice holds what a store with generator m alone would have
 * drawn, since each generator is consumed in the same creation order.
 */
export class ParamStore {
  /** Parameters by checkpoint name, in creation order. */
  readonly params = new Map<string, tf.Variable>();
  private readonly prefix = `grokpipe${modelCounter++}/`;
  private readonly rngs: readonly Rng[];
  /** Whether parameters carry a leading member axis. */
  readonly stacked: boolean;

  /** @param rng one generator (one model, parameters of their own shape), or one per member (stacked). */
  constructor(rng: Rng | readonly Rng[]) {
    this.stacked = Array.isArray(rng);
    this.rngs = Array.isArray(rng) ? rng : [rng as Rng];
    if (this.rngs.length === 0) throw new Error('ParamStore: no members');
  }

  /** A parameter drawn from N(0, std²), e.g. std 0.02 for GPT-2 weights. */
  normal(name: string, shape: number[], std: number): tf.Variable {
    return this.draw(name, shape, (rng, out) => fillNormal(rng, out, 0, std));
  }

  /** A parameter drawn from U(-bound, bound), e.g. PyTorch's default `nn.Linear` init with bound `1/sqrt(d_in)`. */
  uniform(name: string, shape: number[], bound: number): tf.Variable {
    return this.draw(name, shape, (rng, out) => fillUniform(rng, out, -bound, bound));
  }

  /** A parameter with explicit initial values (row-major, `shape`'s size), e.g. a schedule over channels; every member alike. */
  values(name: string, shape: number[], data: Float32Array): tf.Variable {
    return this.draw(name, shape, (_rng, out) => out.set(data));
  }

  /** The store's generator, for initialisers computed on the host (consumed in creation order); one model only. */
  get random(): Rng {
    if (this.stacked) throw new Error('ParamStore: host initialisers are for one model, not an ensemble');
    return this.rngs[0];
  }

  /** A parameter filled with `value` (0 for biases, 1 for norm gains). */
  constant(name: string, shape: number[], value: number): tf.Variable {
    return this.add(name, tf.fill(this.stacked ? [this.rngs.length, ...shape] : shape, value));
  }

  /** A parameter whose values each member's generator fills in turn (`fill(rng, out)`). */
  private draw(name: string, shape: number[], fill: (rng: Rng, out: Float32Array) => void): tf.Variable {
    const size = shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(size * this.rngs.length);
    this.rngs.forEach((rng, m) => fill(rng, data.subarray(m * size, (m + 1) * size)));
    return this.add(name, tf.tensor(data, this.stacked ? [this.rngs.length, ...shape] : shape, 'float32'));
  }

  private add(name: string, init: tf.Tensor): tf.Variable {
    if (this.params.has(name)) throw new Error(`duplicate parameter ${name}`);
    const v = tf.variable(init, true, this.prefix + name);
    init.dispose();
    this.params.set(name, v);
    return v;
  }
}

/**
 * Mamba-1 (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
 * §3, Algorithm 2 and Figure 3): a stack of selective state-space blocks, each a pre-RMSNorm
 * residual `x = x + mixer(rms(x))` (eps 1e-5), then a final RMSNorm and the unembedding, tied to
 * the token embedding by default (as `MambaLMHeadModel`). No attention, no position embedding.
 *
 * The mixer, with `E = expand · d_model`, `N = d_state`, `R = dt_rank`, `K = d_conv` and
 * `h: [batch, seq, d_model]`:
 *
 *     x, z  = h W_inᵀ split in two                          [batch, seq, E] each, W_in: [2E, d_model]
 *     u     = silu(causal depthwise conv_K(x) + b_conv)     u_t = Σ_j w[:, j] ⊙ x_{t−K+1+j}, w: [E, 1, K]
 *     δ, B, C = u W_xᵀ split in (R, N, N)                   W_x: [R + 2N, E]
 *     Δ     = softplus(δ W_dtᵀ + b_dt)                      [batch, seq, E], W_dt: [E, R]
 *     A     = −exp(A_log)                                   [E, N]
 *     s_t   = exp(Δ_t ⊙ A) ⊙ s_{t−1} + (Δ_t ⊙ u_t) ⊗ B_t     state [batch, E, N], s_{−1} = 0
 *     y_t   = s_t C_t + D ⊙ u_t                             [batch, E], D: [E]
 *     out   = (y ⊙ silu(z)) W_outᵀ                          [batch, seq, d_model], W_out: [d_model, E]
 *
 * The selective scan runs over the (at most 10) positions as an unrolled loop of tensor ops, one
 * state update per position; `selectiveScanHost` is an independent host reference. The
 * convolution is a sum of K shifted copies times per-channel weights (the wasm backend has no
 * convolution gradients). Internally the activations are laid out `[seq, batch, …]` so that the
 * per-position slices and the shifts are contiguous.
 *
 * Parameter names and layouts follow the reference implementation (state-spaces/mamba,
 * `mamba_simple.py` and `MambaLMHeadModel`): `backbone.embedding.weight`,
 * `backbone.layers.i.norm.weight`, `backbone.layers.i.mixer.{in_proj, conv1d, x_proj, dt_proj,
 * out_proj}` (linear weights `[d_out, d_in]`), `mixer.A_log` `[E, N]`, `mixer.D` `[E]`,
 * `backbone.norm_f.weight`, `lm_head.weight` (only when untied). Initialisation as there: PyTorch's
 * default U(±1/sqrt(fan_in)) for in_proj, conv1d (fan_in = K) and x_proj; out_proj the same
 * divided by sqrt(n_layers); dt_proj weight U(±R^−½), its bias the inverse softplus of Δ drawn
 * log-uniformly in [0.001, 0.1]; `A_log = log(1..N)` on every channel; D = 1; the embedding
 * N(0, 0.02²); norm gains 1.
 *
 * The network only: its config type, knobs, checks and size are declared in `mamba.ts`, which the
 * registry lists; `factories.ts` builds this network for a config.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RecurrentModel } from '../base.js';
import { embedding, linearT, ParamStore, rmsNorm, silu } from '../layers.js';
import type { LanguageModel } from '../model.js';
import type { MambaConfig } from './mamba.js';
import { fillUniform } from '../train-rng.js';
import type { Rng } from '../train-rng.js';

/** RMSNorm epsilon of Mamba (`norm_epsilon`). */
export const RMS_EPS = 1e-5;
/** Std of the embedding's normal initialisation (`initializer_range`). */
export const EMB_STD = 0.02;
/** Range of the initial Δ (`dt_min`, `dt_max`), drawn log-uniformly; floor `dt_init_floor`. */
export const DT_MIN = 0.001;
export const DT_MAX = 0.1;
export const DT_FLOOR = 1e-4;

/** The parameters of one block (linear weights `[d_out, d_in]`). */
interface Block {
  norm: tf.Variable; // [d_model]
  inProj: tf.Variable; // [2E, d_model]
  convW: tf.Variable; // [E, 1, K]
  convB: tf.Variable; // [E]
  xProj: tf.Variable; // [R + 2N, E]
  dtW: tf.Variable; // [E, R]
  dtB: tf.Variable; // [E]
  aLog: tf.Variable; // [E, N]
  d: tf.Variable; // [E]
  outProj: tf.Variable; // [d_model, E]
}

/**
 * Causal depthwise convolution along the leading (position) axis: `y_t = Σ_j w[:, j] ⊙ x_{t−K+1+j}`
 * with zeros before position 0, as PyTorch's `Conv1d(groups=E, padding=K−1)` cut to the first
 * `seq` outputs.
 * @param x `[seq, batch, E]`; @param w `[E, 1, K]` (the `conv1d.weight` layout). @returns `[seq, batch, E]`
 */
export function causalDepthwiseConv(x: tf.Tensor3D, w: tf.Tensor3D): tf.Tensor3D {
  const [seq, batch, E] = x.shape;
  const K = w.shape[2];
  const taps = tf.transpose(tf.reshape(w, [E, K]), [1, 0]); // [K, E]
  const padded = tf.concat([tf.zeros([K - 1, batch, E]), x], 0); // [seq + K − 1, batch, E]
  let y: tf.Tensor | undefined;
  for (let j = 0; j < K; j++) {
    const term = tf.mul(
      tf.slice(padded, [j, 0, 0], [seq, batch, E]),
      tf.reshape(tf.slice(taps, [j, 0], [1, E]), [1, 1, E]),
    );
    y = y ? tf.add(y, term) : term;
  }
  return y as tf.Tensor3D;
}

/**
 * Outer product per row: `out[i, e, n] = x[i, e] · y[i, n]`, with a gradient of batched
 * matrix–vector products (`dx = dy @ y`, `dy_y = x @ dy`) instead of broadcast reductions over a
 * middle axis, which the wasm backend runs ~3x slower; a `[E, 1] @ [1, N]` product is no faster.
 * @param x `[batch, E]`; @param y `[batch, N]`. @returns `[batch, E, N]`
 */
export const rowOuter: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor3D = tf.customGrad(
  (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const [batch, E] = x.shape;
    const N = y.shape[1];
    save([x, y]);
    return {
      value: tf.mul(tf.reshape(x, [batch, E, 1]), tf.reshape(y, [batch, 1, N])),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor3D;
        return [
          tf.reshape(tf.matMul(g, tf.reshape(saved[1], [batch, N, 1]) as tf.Tensor3D), [batch, E]),
          tf.reshape(tf.matMul(tf.reshape(saved[0], [batch, 1, E]) as tf.Tensor3D, g), [batch, N]),
        ];
      },
    };
  },
) as unknown as (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor3D;

/**
 * Contraction of the last axis per row: `out[i, e] = Σ_n s[i, e, n] · c[i, n]`, as a batched
 * matrix–vector product, with a gradient of a broadcast product and another matrix–vector product
 * (no transposes, no `[E, 1] @ [1, N]` outer products).
 * @param s `[batch, E, N]`; @param c `[batch, N]`. @returns `[batch, E]`
 */
export const rowContract: (s: tf.Tensor3D, c: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [s, c, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.GradSaveFunc];
    const [batch, E, N] = s.shape;
    save([s, c]);
    return {
      value: tf.reshape(tf.matMul(s, tf.reshape(c, [batch, N, 1]) as tf.Tensor3D), [batch, E]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.mul(tf.reshape(dy, [batch, E, 1]), tf.reshape(saved[1], [batch, 1, N])),
        tf.reshape(tf.matMul(tf.reshape(dy, [batch, 1, E]) as tf.Tensor3D, saved[0] as tf.Tensor3D), [batch, N]),
      ],
    };
  },
) as unknown as (s: tf.Tensor3D, c: tf.Tensor2D) => tf.Tensor2D;

/**
 * The selective scan, position by position: `s_t = exp(Δ_t ⊙ A) ⊙ s_{t−1} + (Δ_t ⊙ u_t) ⊗ B_t`,
 * `y_t = s_t C_t + D ⊙ u_t`, from `s_{−1} = 0`.
 * @param u, delta `[seq, batch, E]`; @param a `A = −exp(A_log)` `[E, N]`;
 * @param b, c `[seq, batch, N]`; @param d `[E]`. @returns y `[seq, batch, E]`
 */
export function selectiveScan(
  u: tf.Tensor3D,
  delta: tf.Tensor3D,
  a: tf.Tensor2D,
  b: tf.Tensor3D,
  c: tf.Tensor3D,
  d: tf.Tensor1D,
): tf.Tensor3D {
  const [seq, batch, E] = u.shape;
  const N = a.shape[1];
  // One split per input (its gradient is one concat), rather than a slice (and pad) per position.
  const row = (x: tf.Tensor, width: number) => tf.reshape(x, [batch, width]) as tf.Tensor2D;
  const us = tf.split(u, seq, 0);
  const ds = tf.split(delta, seq, 0);
  const bs = tf.split(b, seq, 0);
  const cs = tf.split(c, seq, 0);
  const ys: tf.Tensor[] = [];
  let s: tf.Tensor3D | undefined;
  for (let t = 0; t < seq; t++) {
    const input = rowOuter(row(tf.mul(ds[t], us[t]), E), row(bs[t], N)); // (Δ ⊙ u) ⊗ B  [batch, E, N]
    s = s ? (tf.add(tf.mul(tf.exp(tf.mul(tf.reshape(ds[t], [batch, E, 1]), a)), s), input) as tf.Tensor3D) : input;
    ys.push(tf.reshape(rowContract(s, row(cs[t], N)), [1, batch, E]));
  }
  return tf.add(tf.concat(ys, 0), tf.mul(u, d)) as tf.Tensor3D;
}

/**
 * Host reference of `selectiveScan` (plain loops in float64 over row-major arrays of the same
 * shapes): the recurrence exactly as written, for tests.
 */
export function selectiveScanHost(
  u: ArrayLike<number>,
  delta: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  c: ArrayLike<number>,
  d: ArrayLike<number>,
  seq: number,
  batch: number,
  E: number,
  N: number,
): Float64Array {
  const y = new Float64Array(seq * batch * E);
  const s = new Float64Array(batch * E * N);
  for (let t = 0; t < seq; t++) {
    for (let i = 0; i < batch; i++) {
      for (let e = 0; e < E; e++) {
        const x = (t * batch + i) * E + e;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const k = (i * E + e) * N + n;
          const bn = b[(t * batch + i) * N + n];
          s[k] = Math.exp(delta[x] * a[e * N + n]) * s[k] + delta[x] * u[x] * bn;
          acc += s[k] * c[(t * batch + i) * N + n];
        }
        y[x] = acc + d[e] * u[x];
      }
    }
  }
  return y;
}

class Mamba extends RecurrentModel implements LanguageModel {
  readonly params: Map<string, tf.Variable>;
  private readonly emb: tf.Variable; // [vocab, d_model]
  private readonly blocks: Block[] = [];
  private readonly normF: tf.Variable;
  private readonly head: tf.Variable; // [vocab, d_model]; the embedding itself when tied

  constructor(
    readonly config: MambaConfig,
    rng: Rng,
  ) {
    super();
    const { n_layers: L, d_model: dm, vocab_size: V, d_state: N, expand, d_conv: K, dt_rank: R } = config;
    const E = expand * dm;
    const p = new ParamStore(rng);
    this.emb = p.normal('backbone.embedding.weight', [V, dm], EMB_STD);
    for (let i = 0; i < L; i++) {
      const n = `backbone.layers.${i}`;
      const aLog = Float32Array.from({ length: E * N }, (_, k) => Math.log(1 + (k % N)));
      this.blocks.push({
        norm: p.constant(`${n}.norm.weight`, [dm], 1),
        inProj: p.uniform(`${n}.mixer.in_proj.weight`, [2 * E, dm], 1 / Math.sqrt(dm)),
        convW: p.uniform(`${n}.mixer.conv1d.weight`, [E, 1, K], 1 / Math.sqrt(K)),
        convB: p.uniform(`${n}.mixer.conv1d.bias`, [E], 1 / Math.sqrt(K)),
        xProj: p.uniform(`${n}.mixer.x_proj.weight`, [R + 2 * N, E], 1 / Math.sqrt(E)),
        dtW: p.uniform(`${n}.mixer.dt_proj.weight`, [E, R], 1 / Math.sqrt(R)),
        dtB: p.values(`${n}.mixer.dt_proj.bias`, [E], dtBias(p.random, E)),
        aLog: p.values(`${n}.mixer.A_log`, [E, N], aLog),
        d: p.constant(`${n}.mixer.D`, [E], 1),
        outProj: p.uniform(`${n}.mixer.out_proj.weight`, [dm, E], 1 / Math.sqrt(E) / Math.sqrt(L)),
      });
    }
    this.normF = p.constant('backbone.norm_f.weight', [dm], 1);
    this.head = config.tie_embeddings ? this.emb : p.normal('lm_head.weight', [V, dm], EMB_STD);
    this.params = p.params;
  }

  /** The selective SSM mixer. @param h `[seq, batch, d_model]` (normed) → `[seq, batch, d_model]` */
  private mixer(blk: Block, h: tf.Tensor3D): tf.Tensor3D {
    const { d_state: N, dt_rank: R } = this.config;
    const E = this.config.expand * this.config.d_model;
    const dm = this.config.d_model;
    const rows = (w: tf.Variable, from: number, n: number, width: number) => tf.slice(w, [from, 0], [n, width]);
    const x = linearT(h, rows(blk.inProj, 0, E, dm)) as tf.Tensor3D;
    const z = linearT(h, rows(blk.inProj, E, E, dm));
    const u = silu(tf.add(causalDepthwiseConv(x, blk.convW as tf.Tensor3D), blk.convB)) as tf.Tensor3D;
    const dtIn = linearT(u, rows(blk.xProj, 0, R, E));
    const b = linearT(u, rows(blk.xProj, R, N, E)) as tf.Tensor3D;
    const c = linearT(u, rows(blk.xProj, R + N, N, E)) as tf.Tensor3D;
    const delta = tf.softplus(linearT(dtIn, blk.dtW, blk.dtB)) as tf.Tensor3D;
    const a = tf.neg(tf.exp(blk.aLog)) as tf.Tensor2D;
    const y = selectiveScan(u, delta, a, b, c, blk.d as tf.Tensor1D);
    return linearT(tf.mul(y, silu(z)), blk.outProj) as tf.Tensor3D;
  }

  /** Hidden states after the last block, before `norm_f`. @param tokens `[batch, seq]` → `[batch, seq, d_model]` */
  protected hidden(tokens: tf.Tensor2D, states?: tf.Tensor3D[]): tf.Tensor3D {
    let x = tf.transpose(embedding(this.emb as tf.Tensor2D, tokens), [1, 0, 2]) as tf.Tensor3D; // [seq, batch, d]
    states?.push(tf.transpose(x, [1, 0, 2]));
    for (const blk of this.blocks) {
      x = tf.add(x, this.mixer(blk, rmsNorm(x, blk.norm, RMS_EPS) as tf.Tensor3D));
      states?.push(tf.transpose(x, [1, 0, 2]));
    }
    return tf.transpose(x, [1, 0, 2]);
  }

  /** `norm_f(h) @ lm_headᵀ`. @param h `[n, d_model]` → `[n, vocab]` */
  protected unembed(h: tf.Tensor2D): tf.Tensor2D {
    return linearT(rmsNorm(h, this.normF, RMS_EPS), this.head) as tf.Tensor2D;
  }

  /**
   * As the reference: decay on the projection and convolution weights and the embedding; none on
   * `A_log` and `D` (`_no_weight_decay`), biases and norm gains.
   */
  override decays(name: string): boolean {
    return super.decays(name) && !name.endsWith('.A_log');
  }
}

/**
 * `dt_proj.bias` at initialisation: `Δ = exp(U(ln DT_MIN, ln DT_MAX))` floored at DT_FLOOR, stored
 * as its inverse softplus `Δ + ln(1 − e^{−Δ})`, so that `softplus(bias) = Δ` (`E` channels).
 */
export function dtBias(rng: Rng, E: number): Float32Array {
  const u = fillUniform(rng, new Float32Array(E), Math.log(DT_MIN), Math.log(DT_MAX));
  return u.map((x) => {
    const dt = Math.max(Math.exp(x), DT_FLOOR);
    return dt + Math.log(-Math.expm1(-dt));
  });
}

/** A Mamba with seeded initial weights (see the module docstring for the scheme). */
export function createMamba(config: MambaConfig, rng: Rng): LanguageModel {
  return new Mamba(config, rng);
}

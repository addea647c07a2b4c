/**
 * RWKV-4 (Peng et al. 2023, "RWKV: Reinventing RNNs for the Transformer Era", §3–4): a recurrent
 * network trained in parallel. No attention and no position embedding: order enters through the
 * token shift and the per-channel exponential decay of the WKV recurrence.
 *
 * With `x: [batch, seq, d_model]` and `shift(x)_t = x_{t-1}` (`shift(x)_0 = 0`), the token shift
 * with learned mixing `μ: [d_model]` is `lerp_μ(x) = μ ⊙ x + (1 − μ) ⊙ shift(x)`. A block:
 *
 *     time mixing, on a = ln₁(x):
 *       r, k, v = lerp_μr(a) Wrᵀ, lerp_μk(a) Wkᵀ, lerp_μv(a) Wvᵀ        [batch, seq, d_model]
 *       wkv_t   = (Σ_{i<t} e^{(t−1−i)w + k_i} v_i + e^{u + k_t} v_t)
 *               / (Σ_{i<t} e^{(t−1−i)w + k_i}     + e^{u + k_t})       per channel
 *       x       = x + (σ(r) ⊙ wkv) Woᵀ
 *     channel mixing, on c = ln₂(x):
 *       r, k    = lerp_μr'(c) Wr'ᵀ, lerp_μk'(c) Wk'ᵀ                     k: [batch, seq, d_mlp]
 *       x       = x + σ(r) ⊙ (relu(k)² Wv'ᵀ)                             Wv': [d_model, d_mlp]
 *
 * with the per-channel decay `w = −exp(time_decay)` (< 0) and bonus `u = time_first`, both
 * `[d_model]`. The embedding is followed by `ln0` (block 0's `pre_ln`), the last block by `ln_out`
 * and the head `[vocab, d_model]` (untied). All LayerNorms have a gain and a shift (eps 1e-5).
 *
 * The WKV recurrence is computed in its parallel form over the short sequence: `wkv_t` is a
 * softmax-weighted mean of `v_i` over `i ≤ t` with logits `E[t, i] = k_i + W[t, i]`,
 * `W[t, i] = (t−1−i)·w` for `i < t`, `u` for `i = t` and −∞ for `i > t` (an explicit
 * `[seq, d_model, seq]` decay mask). The softmax subtracts the row maximum, as the reference
 * CUDA kernel does, so no exponential overflows. `wkvRecurrent` is the step-by-step form.
 *
 * Parameter names and layouts follow the reference implementation (BlinkDL/RWKV-LM, RWKV-v4neo
 * `model.py`): `emb.weight`, `blocks.0.ln0`, `blocks.i.att.time_decay`, `blocks.i.att.key.weight`
 * as `[d_out, d_in]`, `time_mix_*` as `[1, 1, d_model]`, `head.weight`. Initialisation as there:
 * the "fancy" time_decay, time_first and time_mix schedules over channels and layers; the
 * embedding U(−1e-4, 1e-4); att.key/receptance/output and ffn.receptance/value zero; att.value,
 * ffn.key and the head orthogonal with gain `sqrt(d_out/d_in)` when `d_out > d_in` (head × 0.5).
 *
 * The network only: its config type, knobs, checks and size are declared in `rwkv.ts`, which the
 * registry lists; `factories.ts` builds this network for a config.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RecurrentModel } from '../base.js';
import { embedding, layerNorm, linearT, ParamStore } from '../layers.js';
import type { LanguageModel } from '../model.js';
import type { RwkvConfig } from './rwkv.js';
import { orthogonal } from '../train-rng.js';
import type { Rng } from '../train-rng.js';

/** LayerNorm epsilon of RWKV-4 (PyTorch's default). */
export const LN_EPS = 1e-5;
/** Half-width of the embedding's uniform initialisation (RWKV-v4neo: ±lr_init, 1e-4 here). */
export const EMB_INIT = 1e-4;

/** The parameters of one block. Linear weights are `[d_out, d_in]`; `mix*` are `[1, 1, d_model]`. */
interface Block {
  ln1: [tf.Variable, tf.Variable];
  att: {
    decay: tf.Variable; // time_decay [d_model]
    first: tf.Variable; // time_first [d_model]
    mixK: tf.Variable;
    mixV: tf.Variable;
    mixR: tf.Variable;
    key: tf.Variable; // [d_model, d_model]
    value: tf.Variable;
    receptance: tf.Variable;
    output: tf.Variable;
  };
  ln2: [tf.Variable, tf.Variable];
  ffn: {
    mixK: tf.Variable;
    mixR: tf.Variable;
    key: tf.Variable; // [d_mlp, d_model]
    receptance: tf.Variable; // [d_model, d_model]
    value: tf.Variable; // [d_model, d_mlp]
  };
}

/**
 * The initial time-mixing schedules of layer `layer` of `nLayers` over `d` channels (RWKV-v4neo):
 * `time_decay[h] = −5 + 8 (h/(d−1))^(0.7 + 1.3 ρ₀)`, `time_first[h] = ln 0.3 + 0.5·((h+1) mod 3 − 1)`,
 * `time_mix_k = (h/d)^ρ₁`, `time_mix_v = (h/d)^ρ₁ + 0.3 ρ₀`, `time_mix_r = (h/d)^(ρ₁/2)` and for
 * channel mixing `time_mix_k = time_mix_r = (h/d)^ρ₁`, with `ρ₀ = layer/(nLayers−1)` (0 for one
 * layer) and `ρ₁ = 1 − layer/nLayers`.
 */
export function rwkvSchedules(
  layer: number,
  nLayers: number,
  d: number,
): Record<'decay' | 'first' | 'mixK' | 'mixV' | 'mixR' | 'ffnMix', Float32Array> {
  const r0 = nLayers > 1 ? layer / (nLayers - 1) : 0;
  const r1 = 1 - layer / nLayers;
  const f = (fn: (h: number) => number) => Float32Array.from({ length: d }, (_, h) => fn(h));
  return {
    decay: f((h) => -5 + 8 * Math.pow(d > 1 ? h / (d - 1) : 0, 0.7 + 1.3 * r0)),
    first: f((h) => Math.log(0.3) + 0.5 * (((h + 1) % 3) - 1)),
    mixK: f((h) => Math.pow(h / d, r1)),
    mixV: f((h) => Math.pow(h / d, r1) + 0.3 * r0),
    mixR: f((h) => Math.pow(h / d, 0.5 * r1)),
    ffnMix: f((h) => Math.pow(h / d, r1)),
  };
}

/**
 * `x_{t-1}` at every position t, zeros at t = 0 (RWKV's `nn.ZeroPad2d((0, 0, 1, -1))`).
 * @param x `[batch, seq, d]` → `[batch, seq, d]`
 */
export function tokenShift(x: tf.Tensor3D): tf.Tensor3D {
  const [batch, seq, d] = x.shape;
  if (seq === 1) return tf.zerosLike(x);
  return tf.concat([tf.zeros([batch, 1, d]), tf.slice(x, [0, 0, 0], [batch, seq - 1, d])], 1);
}

/** `μ ⊙ x + (1 − μ) ⊙ xPrev`, as `xPrev + μ ⊙ (x − xPrev)`. `μ` broadcasts over `[batch, seq, d]`. */
function lerp(x: tf.Tensor, xPrev: tf.Tensor, mix: tf.Tensor): tf.Tensor {
  return tf.add(xPrev, tf.mul(tf.sub(x, xPrev), mix));
}

/**
 * The additive WKV logit mask `W[t, c, i]` `[seq, d, seq]`: `(t−1−i)·w_c` for `i < t`, `u_c` for
 * `i = t`, −1e30 for `i > t` (exp underflows to exactly 0).
 * @param w decay `[d]` (negative); @param u bonus `[d]`.
 */
export function wkvDecayMask(w: tf.Tensor1D, u: tf.Tensor1D, seq: number): tf.Tensor3D {
  const dist = new Float32Array(seq * seq);
  const diag = new Float32Array(seq * seq);
  const future = new Float32Array(seq * seq);
  for (let t = 0; t < seq; t++) {
    for (let i = 0; i < seq; i++) {
      if (i < t) dist[t * seq + i] = t - 1 - i;
      else if (i === t) diag[t * seq + i] = 1;
      else future[t * seq + i] = -1e30;
    }
  }
  const d = w.shape[0];
  const col = (x: tf.Tensor1D) => tf.reshape(x, [1, d, 1]);
  const at = (m: Float32Array) => tf.tensor3d(m, [seq, 1, seq]);
  return tf.add(tf.add(tf.mul(at(dist), col(w)), tf.mul(at(diag), col(u))), at(future)) as tf.Tensor3D;
}

/**
 * WKV in parallel form: `wkv_t = Σ_{i≤t} softmax_i(k_i + W[t, i]) v_i` per channel, with
 * `W = wkvDecayMask(w, u)`; equal to `wkvRecurrent`.
 * @param k, v `[batch, seq, d]`; @param w decay `[d]` (negative); @param u bonus `[d]`.
 * @returns `[batch, seq, d]`
 */
export function wkvParallel(k: tf.Tensor3D, v: tf.Tensor3D, w: tf.Tensor1D, u: tf.Tensor1D): tf.Tensor3D {
  const [batch, seq, d] = k.shape;
  const byPos = (x: tf.Tensor3D) => tf.reshape(tf.transpose(x, [0, 2, 1]), [batch, 1, d, seq]); // x_i at [b, ·, c, i]
  const logits = tf.add(byPos(k), tf.reshape(wkvDecayMask(w, u, seq), [1, seq, d, seq])); // [b, t, c, i]
  return tf.sum(tf.mul(tf.softmax(logits), byPos(v)), -1) as tf.Tensor3D;
}

/**
 * WKV step by step, the RNN form of the reference CUDA kernel with its running maximum `p`:
 * numerator `a` and denominator `b` of `Σ_{i<t} e^{(t−1−i)w + k_i}·(v_i, 1)` carried in units of
 * `e^p`. The reference for `wkvParallel`; cost O(seq) tensor ops.
 * @param k, v `[batch, seq, d]`; @param w decay `[d]` (negative); @param u bonus `[d]`.
 * @returns `[batch, seq, d]`
 */
export function wkvRecurrent(k: tf.Tensor3D, v: tf.Tensor3D, w: tf.Tensor1D, u: tf.Tensor1D): tf.Tensor3D {
  const [batch, seq, d] = k.shape;
  let a: tf.Tensor = tf.zeros([batch, d]);
  let b: tf.Tensor = tf.zeros([batch, d]);
  let p: tf.Tensor = tf.fill([batch, d], -1e38);
  const out: tf.Tensor[] = [];
  for (let t = 0; t < seq; t++) {
    const kt = tf.reshape(tf.slice(k, [0, t, 0], [batch, 1, d]), [batch, d]);
    const vt = tf.reshape(tf.slice(v, [0, t, 0], [batch, 1, d]), [batch, d]);
    const ww = tf.add(u, kt);
    const q = tf.maximum(p, ww);
    const e1 = tf.exp(tf.sub(p, q));
    const e2 = tf.exp(tf.sub(ww, q));
    out.push(tf.div(tf.add(tf.mul(e1, a), tf.mul(e2, vt)), tf.add(tf.mul(e1, b), e2)));
    const ww2 = tf.add(p, w);
    const q2 = tf.maximum(ww2, kt);
    const f1 = tf.exp(tf.sub(ww2, q2));
    const f2 = tf.exp(tf.sub(kt, q2));
    a = tf.add(tf.mul(f1, a), tf.mul(f2, vt));
    b = tf.add(tf.mul(f1, b), f2);
    p = q2;
  }
  return tf.stack(out, 1) as tf.Tensor3D;
}

class Rwkv extends RecurrentModel implements LanguageModel {
  readonly params: Map<string, tf.Variable>;
  private readonly emb: tf.Variable; // [vocab, d_model]
  private readonly ln0: [tf.Variable, tf.Variable];
  private readonly blocks: Block[] = [];
  private readonly lnOut: [tf.Variable, tf.Variable];
  private readonly head: tf.Variable; // [vocab, d_model]
  private readonly noDecay = new Set<string>();

  constructor(
    readonly config: RwkvConfig,
    rng: Rng,
  ) {
    super();
    const { n_layers: L, d_model: d, d_mlp: m, vocab_size: V } = config;
    const p = new ParamStore(rng);
    const ln = (name: string): [tf.Variable, tf.Variable] => [
      p.constant(`${name}.weight`, [d], 1),
      p.constant(`${name}.bias`, [d], 0),
    ];
    const zero = (name: string, shape: number[]) => p.constant(name, shape, 0);
    // Orthogonal with PyTorch's [d_out, d_in] layout and RWKV's gain sqrt(d_out / d_in) when d_out > d_in.
    const ortho = (name: string, dOut: number, dIn: number, scale = 1) =>
      p.values(name, [dOut, dIn], orthogonal(p.random, dOut, dIn, scale * (dOut > dIn ? Math.sqrt(dOut / dIn) : 1)));
    this.emb = p.uniform('emb.weight', [V, d], EMB_INIT);
    this.ln0 = ln('blocks.0.ln0');
    for (let i = 0; i < L; i++) {
      const n = `blocks.${i}`;
      const s = rwkvSchedules(i, L, d);
      const ln1 = ln(`${n}.ln1`);
      const ln2 = ln(`${n}.ln2`);
      this.blocks.push({
        ln1,
        att: {
          decay: p.values(`${n}.att.time_decay`, [d], s.decay),
          first: p.values(`${n}.att.time_first`, [d], s.first),
          mixK: p.values(`${n}.att.time_mix_k`, [1, 1, d], s.mixK),
          mixV: p.values(`${n}.att.time_mix_v`, [1, 1, d], s.mixV),
          mixR: p.values(`${n}.att.time_mix_r`, [1, 1, d], s.mixR),
          key: zero(`${n}.att.key.weight`, [d, d]),
          value: ortho(`${n}.att.value.weight`, d, d),
          receptance: zero(`${n}.att.receptance.weight`, [d, d]),
          output: zero(`${n}.att.output.weight`, [d, d]),
        },
        ln2,
        ffn: {
          mixK: p.values(`${n}.ffn.time_mix_k`, [1, 1, d], s.ffnMix),
          mixR: p.values(`${n}.ffn.time_mix_r`, [1, 1, d], s.ffnMix.slice()),
          key: ortho(`${n}.ffn.key.weight`, m, d),
          receptance: zero(`${n}.ffn.receptance.weight`, [d, d]),
          value: zero(`${n}.ffn.value.weight`, [d, m]),
        },
      });
    }
    this.lnOut = ln('ln_out');
    this.head = ortho('head.weight', V, d, 0.5);
    this.params = p.params;
    // RWKV-v4neo's optimizer groups: decay only on matrices (squeezed rank ≥ 2).
    for (const [name, v] of this.params) if (v.shape.filter((s) => s > 1).length < 2) this.noDecay.add(name);
  }

  /** Time mixing (the WKV "attention"). @param a `ln₁(x)` `[batch, seq, d_model]` → `[batch, seq, d_model]` */
  private timeMix(blk: Block, a: tf.Tensor3D): tf.Tensor3D {
    const att = blk.att;
    const prev = tokenShift(a);
    const k = linearT(lerp(a, prev, att.mixK), att.key) as tf.Tensor3D;
    const v = linearT(lerp(a, prev, att.mixV), att.value) as tf.Tensor3D;
    const r = tf.sigmoid(linearT(lerp(a, prev, att.mixR), att.receptance));
    const w = tf.neg(tf.exp(att.decay)) as tf.Tensor1D;
    return linearT(tf.mul(r, wkvParallel(k, v, w, att.first as tf.Tensor1D)), att.output) as tf.Tensor3D;
  }

  /** Channel mixing (the squared-ReLU MLP gated by σ(r)). @param c `ln₂(x)` `[batch, seq, d_model]` */
  private channelMix(blk: Block, c: tf.Tensor3D): tf.Tensor3D {
    const ffn = blk.ffn;
    const prev = tokenShift(c);
    const k = tf.square(tf.relu(linearT(lerp(c, prev, ffn.mixK), ffn.key)));
    const r = tf.sigmoid(linearT(lerp(c, prev, ffn.mixR), ffn.receptance));
    return tf.mul(r, linearT(k, ffn.value)) as tf.Tensor3D;
  }

  /** Hidden states after the last block (before `ln_out`). @param tokens `[batch, seq]` → `[batch, seq, d_model]` */
  protected hidden(tokens: tf.Tensor2D, states?: tf.Tensor3D[]): tf.Tensor3D {
    let x = layerNorm(embedding(this.emb as tf.Tensor2D, tokens), this.ln0[0], this.ln0[1], LN_EPS) as tf.Tensor3D;
    states?.push(x);
    for (const blk of this.blocks) {
      x = tf.add(x, this.timeMix(blk, layerNorm(x, blk.ln1[0], blk.ln1[1], LN_EPS) as tf.Tensor3D));
      x = tf.add(x, this.channelMix(blk, layerNorm(x, blk.ln2[0], blk.ln2[1], LN_EPS) as tf.Tensor3D));
      states?.push(x);
    }
    return x;
  }

  /** `ln_out(h) @ headᵀ`. @param h `[n, d_model]` → `[n, vocab]` */
  protected unembed(h: tf.Tensor2D): tf.Tensor2D {
    return linearT(layerNorm(h, this.lnOut[0], this.lnOut[1], LN_EPS), this.head) as tf.Tensor2D;
  }

  /**
   * As RWKV-v4neo's `configure_optimizers`: decay on the weight matrices and the embedding; none
   * on LayerNorms, `time_decay`, `time_first` and the `time_mix_*` vectors.
   */
  override decays(name: string): boolean {
    if (!this.params.has(name)) throw new Error(`no parameter ${name}`);
    return !this.noDecay.has(name);
  }
}

/** An RWKV-4 with seeded initial weights (see the module docstring for the scheme). */
export function createRwkv(config: RwkvConfig, rng: Rng): LanguageModel {
  return new Rwkv(config, rng);
}

/**
 * LLaMA (Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language Models", §2): a
 * decoder-only transformer like GPT-2 with three changes, and no biases anywhere:
 * - pre-normalisation with RMSNorm (Zhang & Sennrich 2019), eps 1e-6:
 *   `rms(x) = x / sqrt(mean(x²) + eps) · g`, `x, rms(x): [batch, seq, d_model]`, `g: [d_model]`;
 * - rotary position embeddings (RoPE, Su et al. 2021) on queries and keys instead of a learned
 *   position table: per head, channel pairs `(c, c + d_head/2)` rotate by the angle
 *   `t · θ^(-2c/d_head)` at position t (Hugging Face's `rotate_half` layout);
 * - a SwiGLU MLP (Shazeer 2020): `down(silu(gate(h)) ⊙ up(h))`, `gate, up: [d_mlp, d_model]`,
 *   `down: [d_model, d_mlp]`, `d_mlp ≈ 8/3 · d_model` (`llamaHidden`).
 *
 * One block, with `x: [batch, seq, d_model]`:
 *
 *     q, k, v = rms₁(x) Wqᵀ, rms₁(x) Wkᵀ, rms₁(x) Wvᵀ          [batch, seq, d_model], W: [d_model, d_model]
 *     q, k    = rope(q), rope(k)                                per head [batch, seq, n_heads, d_head]
 *     x       = x + softmax(q kᵀ / sqrt(d_head) + causal) v Woᵀ
 *     x       = x + down(silu(gate(rms₂(x))) ⊙ up(rms₂(x)))
 *
 * then a final RMSNorm and the unembedding `lm_head: [vocab, d_model]`, untied from the token
 * embedding by default (`tie_embeddings`). Parameter names and layouts are those of Hugging Face
 * `LlamaForCausalLM` (`model.layers.0.self_attn.q_proj.weight` as `[d_out, d_in]`, the
 * `nn.Linear` layout), so `weights.safetensors` loads into it. Initialisation as Hugging Face's:
 * every weight N(0, 0.02²), norm gains 1. No dropout.
 *
 * Written once for one model and for an ensemble (`members.ts`): activations are
 * `[members, batch, seq, d_model]`, folded to `[members · batch, ...]` for attention; a model's
 * parameters have their own shapes, an ensemble's are stacked `[members, ...]`.
 *
 * The network only: its config type, knobs, checks and size are declared in `llama.ts`, which the
 * registry lists; `factories.ts` builds this network for a config.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  causalMask,
  embedding,
  linearT,
  multiHeadAttention,
  ParamStore,
  positionMask,
  rmsNorm,
  selectPositions,
  swiglu,
} from '../layers.js';
import { foldMembers, MemberModel, unfoldMembers } from '../members.js';
import type { LlamaConfig } from './llama.js';
import type { Rng } from '../train-rng.js';

/** Initialiser std of every weight and embedding (`initializer_range`). */
export const INIT_STD = 0.02;
/** RMSNorm epsilon (LLaMA's `rms_norm_eps`). */
export const RMS_EPS = 1e-6;

/**
 * RoPE's cos and sin tables for positions `0 .. seqLen-1`, row-major `[seqLen, d_head]`: entry
 * `(t, c)` is `cos/sin(t · base^(-2 (c mod d_head/2) / d_head))` (each frequency twice, as
 * Hugging Face's `LlamaRotaryEmbedding`).
 */
export function ropeTables(seqLen: number, dHead: number, base: number): { cos: Float32Array; sin: Float32Array } {
  const half = dHead / 2;
  const cos = new Float32Array(seqLen * dHead);
  const sin = new Float32Array(seqLen * dHead);
  for (let t = 0; t < seqLen; t++) {
    for (let c = 0; c < dHead; c++) {
      const angle = t * Math.pow(base, (-2 * (c % half)) / dHead);
      cos[t * dHead + c] = Math.cos(angle);
      sin[t * dHead + c] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Rotary position embedding of queries or keys: `x ⊙ cos + rotate_half(x) ⊙ sin` per head, with
 * `rotate_half([x₁, x₂]) = [-x₂, x₁]` on the two halves of each head's channels.
 * @param x `[batch, n, d_model]`, heads `n_heads` consecutive slices of `d_head` channels.
 * @param cos, sin broadcastable to `[batch, n, 1, d_head]`: `[1, n, 1, d_head]` rows of
 *   `ropeTables` for positions `0 .. n-1`, or `[batch, 1, 1, d_head]` for one position per example.
 * @returns `[batch, n, d_model]`
 */
export function applyRope(x: tf.Tensor3D, cos: tf.Tensor, sin: tf.Tensor, nHeads: number): tf.Tensor3D {
  const [batch, n, d] = x.shape;
  const dHead = d / nHeads;
  const half = dHead / 2;
  const x4 = tf.reshape(x, [batch, n, nHeads, dHead]);
  const x1 = tf.slice(x4, [0, 0, 0, 0], [batch, n, nHeads, half]);
  const x2 = tf.slice(x4, [0, 0, 0, half], [batch, n, nHeads, half]);
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  return tf.reshape(tf.add(tf.mul(x4, cos), tf.mul(rotated, sin)), [batch, n, d]);
}

/** The parameters of one block (`nn.Linear` layout `[d_out, d_in]`). */
interface Block {
  inputNorm: tf.Variable;
  q: tf.Variable;
  k: tf.Variable;
  v: tf.Variable;
  o: tf.Variable;
  postNorm: tf.Variable;
  gate: tf.Variable;
  up: tf.Variable;
  down: tf.Variable;
}

/** cos/sin for the queries and for the keys of one attention call (see `applyRope`). */
interface Rotation {
  cosQ: tf.Tensor;
  sinQ: tf.Tensor;
  cosK: tf.Tensor;
  sinK: tf.Tensor;
}

class Llama extends MemberModel {
  readonly params: Map<string, tf.Variable>;
  private readonly embed: tf.Variable; // [vocab, d_model]
  private readonly blocks: Block[] = [];
  private readonly norm: tf.Variable; // [d_model]
  private readonly head: tf.Variable; // [vocab, d_model]; the embedding itself when tied
  private readonly cos: Float32Array; // [seq_len, d_head]
  private readonly sin: Float32Array;

  /** @param rng one generator (one model), or one per member (an ensemble, parameters stacked). */
  constructor(
    readonly config: LlamaConfig,
    rng: Rng | readonly Rng[],
  ) {
    super(Array.isArray(rng) ? rng.length : 1, Array.isArray(rng));
    const { n_layers: L, d_model: d, d_mlp: m, vocab_size: V, seq_len: S, n_heads: H } = config;
    const p = new ParamStore(rng);
    this.embed = p.normal('model.embed_tokens.weight', [V, d], INIT_STD);
    for (let i = 0; i < L; i++) {
      const n = `model.layers.${i}`;
      this.blocks.push({
        inputNorm: p.constant(`${n}.input_layernorm.weight`, [d], 1),
        q: p.normal(`${n}.self_attn.q_proj.weight`, [d, d], INIT_STD),
        k: p.normal(`${n}.self_attn.k_proj.weight`, [d, d], INIT_STD),
        v: p.normal(`${n}.self_attn.v_proj.weight`, [d, d], INIT_STD),
        o: p.normal(`${n}.self_attn.o_proj.weight`, [d, d], INIT_STD),
        postNorm: p.constant(`${n}.post_attention_layernorm.weight`, [d], 1),
        gate: p.normal(`${n}.mlp.gate_proj.weight`, [m, d], INIT_STD),
        up: p.normal(`${n}.mlp.up_proj.weight`, [m, d], INIT_STD),
        down: p.normal(`${n}.mlp.down_proj.weight`, [d, m], INIT_STD),
      });
    }
    this.norm = p.constant('model.norm.weight', [d], 1);
    this.head = config.tie_embeddings ? this.embed : p.normal('lm_head.weight', [V, d], INIT_STD);
    this.params = p.params;
    ({ cos: this.cos, sin: this.sin } = ropeTables(S, d / H, config.rope_base));
  }

  /** cos/sin `[1, seq, 1, d_head]` for positions `0 .. seq-1`. */
  private fullRotation(seq: number): Rotation {
    if (seq > this.config.seq_len) throw new Error(`sequence of ${seq} tokens exceeds seq_len ${this.config.seq_len}`);
    const dHead = this.config.d_model / this.config.n_heads;
    const cos = tf.tensor4d(this.cos.subarray(0, seq * dHead), [1, seq, 1, dHead]);
    const sin = tf.tensor4d(this.sin.subarray(0, seq * dHead), [1, seq, 1, dHead]);
    return { cosQ: cos, sinQ: sin, cosK: cos, sinK: sin };
  }

  /** RMSNorm of `x` (`[members, ..., d_model]`) with the gain `g`. */
  private rms(x: tf.Tensor, g: tf.Variable): tf.Tensor {
    return rmsNorm(x, this.vec(g, x.rank), RMS_EPS);
  }

  /**
   * One block for the queries `xq` `[members, batch, n_q, d_model]` attending over the keys/values
   * of `x` `[members, batch, seq, d_model]` under the additive `mask`, with `rot` rotating queries
   * and keys (both broadcast over the folded `[members · batch, ...]`).
   * @returns `[members, batch, n_q, d_model]`
   */
  private block(blk: Block, x: tf.Tensor4D, xq: tf.Tensor4D, mask: tf.Tensor, rot: Rotation): tf.Tensor4D {
    const H = this.config.n_heads;
    const h = this.rms(x, blk.inputNorm);
    const hq = xq === x ? h : this.rms(xq, blk.inputNorm);
    const project = (t: tf.Tensor, w: tf.Variable) => foldMembers<tf.Tensor3D>(linearT(t, w));
    const q = applyRope(project(hq, blk.q), rot.cosQ, rot.sinQ, H);
    const k = applyRope(project(h, blk.k), rot.cosK, rot.sinK, H);
    const a = multiHeadAttention(q, k, project(h, blk.v), H, mask);
    const x1 = tf.add(xq, linearT(unfoldMembers(a, this.members), blk.o));
    const h2 = this.rms(x1, blk.postNorm);
    const f = swiglu(linearT(h2, blk.gate), linearT(h2, blk.up));
    return tf.add(x1, linearT(f, blk.down)) as tf.Tensor4D;
  }

  /** Final RMSNorm and unembedding: `rms(h) @ lm_headᵀ`. @param h `[members, n, d_model]` → `[members, n, vocab]` */
  membersDecode(h: tf.Tensor3D): tf.Tensor3D {
    return linearT(this.rms(h, this.norm), this.head) as tf.Tensor3D;
  }

  membersLogits(tokens: tf.Tensor3D): tf.Tensor4D {
    const [members, batch, seq] = tokens.shape;
    const rot = this.fullRotation(seq);
    const mask = causalMask(seq);
    let x = embedding<tf.Rank.R4>(this.embed, tokens);
    for (const blk of this.blocks) x = this.block(blk, x, x, mask, rot);
    const h = tf.reshape(x, [members, batch * seq, this.config.d_model]) as tf.Tensor3D;
    return tf.reshape(this.membersDecode(h), [members, batch, seq, this.config.vocab_size]);
  }

  /**
   * Same values as `membersLogits` at `positions`, cheaper: the last block computes its query
   * (rotated by the angle of each example's answer position), output projection and MLP, and the
   * unembedding only at the answer position; keys and values still cover every position.
   */
  membersAnswerLogits(tokens: tf.Tensor3D, positions: tf.Tensor2D): tf.Tensor3D {
    const [members, batch, seq] = tokens.shape;
    const d = this.config.d_model;
    const dHead = d / this.config.n_heads;
    const pos = foldMembers<tf.Tensor1D>(positions);
    const rot = this.fullRotation(seq);
    const mask = causalMask(seq);
    let x = embedding<tf.Rank.R4>(this.embed, tokens);
    const last = this.blocks.length - 1;
    for (let i = 0; i < last; i++) x = this.block(this.blocks[i], x, x, mask, rot);
    const xq = tf.reshape(selectPositions(foldMembers(x), pos), [members, batch, 1, d]) as tf.Tensor4D;
    const at = (table: Float32Array) =>
      tf.reshape(tf.gather(tf.tensor2d(table.subarray(0, seq * dHead), [seq, dHead]), pos), [-1, 1, 1, dHead]);
    const answerRot: Rotation = { cosQ: at(this.cos), sinQ: at(this.sin), cosK: rot.cosK, sinK: rot.sinK };
    const out = this.block(this.blocks[last], x, xq, positionMask(pos, seq), answerRot);
    return this.membersDecode(tf.reshape(out, [members, batch, d]) as tf.Tensor3D);
  }

  membersResidualStream(tokens: tf.Tensor3D, positions: tf.Tensor2D): tf.Tensor3D[] {
    const pos = foldMembers<tf.Tensor1D>(positions);
    const rot = this.fullRotation(tokens.shape[2]);
    const mask = causalMask(tokens.shape[2]);
    const at = (x: tf.Tensor4D) => unfoldMembers<tf.Tensor3D>(selectPositions(foldMembers(x), pos), this.members);
    let x = embedding<tf.Rank.R4>(this.embed, tokens);
    const out = [at(x)];
    for (const blk of this.blocks) out.push(at((x = this.block(blk, x, x, mask, rot))));
    return out;
  }
}

/**
 * A LLaMA with seeded initial weights (see the module docstring for the scheme): one model for one
 * generator, an ensemble (parameters stacked `[members, ...]`) for one generator per member.
 */
export function createLlama(config: LlamaConfig, rng: Rng | readonly Rng[]): MemberModel {
  return new Llama(config, rng);
}

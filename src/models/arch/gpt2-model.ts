/**
 * GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", §2.3):
 * a decoder-only transformer with learned token and position embeddings, pre-LayerNorm residual
 * blocks of causal multi-head self-attention and a 4x GELU MLP (all with biases), a final
 * LayerNorm, and the unembedding tied to the token embedding. No dropout (docs/design.md §4).
 *
 * Parameter names and layouts are those of Hugging Face `GPT2LMHeadModel`'s state dict
 * (`transformer.h.0.attn.c_attn.weight` as `[d_in, d_out]`, the `Conv1D` layout; `lm_head` tied
 * to `transformer.wte`), so `weights.safetensors` maps one-to-one onto it.
 *
 * `answerLogits` runs the last block only at each example's answer position (keys and values
 * still cover the whole prefix): with 5-token inputs and 2 layers that is about a third fewer
 * FLOPs per training step, with the same values as `logits` at those positions.
 *
 * Written once for one model and for an ensemble (`members.ts`): activations are
 * `[members, batch, seq, d_model]`; a model's parameters have their own shapes, an ensemble's are
 * stacked `[members, ...]`.
 *
 * The network only: its config type, knobs, checks and size are declared in `gpt2.ts`, which the
 * registry lists; `factories.ts` builds this network for a config.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  causalMask,
  gelu,
  layerNorm,
  linear,
  linearT,
  multiHeadAttention,
  ParamStore,
  positionMask,
  residualLinear,
  selectPositions,
  tokenPositionEmbedding,
} from '../layers.js';
import { foldMembers, MemberModel, unfoldMembers } from '../members.js';
import { fusedAttentionApplies, packedAttention, packedKvAttention } from '../native-attention.js';
import type { Gpt2Config } from './gpt2.js';
import type { Rng } from '../train-rng.js';

/** GPT-2's initialiser std for weights and embeddings (`initializer_range`). */
export const INIT_STD = 0.02;
/** LayerNorm epsilon of GPT-2 (`layer_norm_epsilon`). */
export const LN_EPS = 1e-5;

/** The parameters of one block. */
interface Block {
  ln1: [tf.Variable, tf.Variable];
  attn: { w: tf.Variable; b: tf.Variable; projW: tf.Variable; projB: tf.Variable };
  ln2: [tf.Variable, tf.Variable];
  mlp: { w: tf.Variable; b: tf.Variable; projW: tf.Variable; projB: tf.Variable };
}

class Gpt2 extends MemberModel {
  readonly params: Map<string, tf.Variable>;
  private readonly wte: tf.Variable; // [vocab, d_model]
  private readonly wpe: tf.Variable; // [seq_len, d_model]
  private readonly blocks: Block[] = [];
  private readonly lnF: [tf.Variable, tf.Variable];

  /**
   * Initialisation as GPT-2/nanoGPT: weights and embeddings N(0, 0.02²); the two projections that
   * write into the residual stream (`attn.c_proj`, `mlp.c_proj`) N(0, (0.02/sqrt(2·n_layers))²)
   * (paper §2.3); biases 0; LayerNorm gains 1.
   * @param rng one generator (one model), or one per member (an ensemble, parameters stacked).
   */
  constructor(
    readonly config: Gpt2Config,
    rng: Rng | readonly Rng[],
  ) {
    super(Array.isArray(rng) ? rng.length : 1, Array.isArray(rng));
    const { n_layers: L, d_model: d, d_mlp: m, vocab_size: V, seq_len: S } = config;
    const p = new ParamStore(rng);
    const projStd = INIT_STD / Math.sqrt(2 * L);
    this.wte = p.normal('transformer.wte.weight', [V, d], INIT_STD);
    this.wpe = p.normal('transformer.wpe.weight', [S, d], INIT_STD);
    for (let i = 0; i < L; i++) {
      const n = `transformer.h.${i}`;
      this.blocks.push({
        ln1: [p.constant(`${n}.ln_1.weight`, [d], 1), p.constant(`${n}.ln_1.bias`, [d], 0)],
        attn: {
          w: p.normal(`${n}.attn.c_attn.weight`, [d, 3 * d], INIT_STD),
          b: p.constant(`${n}.attn.c_attn.bias`, [3 * d], 0),
          projW: p.normal(`${n}.attn.c_proj.weight`, [d, d], projStd),
          projB: p.constant(`${n}.attn.c_proj.bias`, [d], 0),
        },
        ln2: [p.constant(`${n}.ln_2.weight`, [d], 1), p.constant(`${n}.ln_2.bias`, [d], 0)],
        mlp: {
          w: p.normal(`${n}.mlp.c_fc.weight`, [d, m], INIT_STD),
          b: p.constant(`${n}.mlp.c_fc.bias`, [m], 0),
          projW: p.normal(`${n}.mlp.c_proj.weight`, [m, d], projStd),
          projB: p.constant(`${n}.mlp.c_proj.bias`, [d], 0),
        },
      });
    }
    this.lnF = [p.constant('transformer.ln_f.weight', [d], 1), p.constant('transformer.ln_f.bias', [d], 0)];
    this.params = p.params;
  }

  /** Token + position embeddings. @param tokens `[members, batch, seq]` → `[members, batch, seq, d_model]` */
  private embed(tokens: tf.Tensor3D): tf.Tensor4D {
    const seq = tokens.shape[2];
    if (seq > this.config.seq_len) throw new Error(`sequence of ${seq} tokens exceeds seq_len ${this.config.seq_len}`);
    return tokenPositionEmbedding(this.wte, this.wpe, tokens);
  }

  /** LayerNorm of `x` (`[members, ..., d_model]`) with one of the model's `[gain, shift]` pairs. */
  private ln(x: tf.Tensor, [gain, shift]: [tf.Variable, tf.Variable]): tf.Tensor {
    return layerNorm(x, this.vec(gain, x.rank), this.vec(shift, x.rank), LN_EPS);
  }

  /** q, k, v = `h @ c_attn + b` split in three (slicing the `[d, 3d]` weight, cheaper than the output). */
  private qkv(blk: Block, h: tf.Tensor4D, which: number): tf.Tensor4D {
    const d = this.config.d_model;
    const w = this.sliceLast(blk.attn.w, which * d, d);
    return linear(h, w, this.vec(this.sliceLast(blk.attn.b, which * d, d), 3)) as tf.Tensor4D;
  }

  /**
   * Multi-head attention of the queries of `hq` over the keys and values of `h` (both
   * `[members, batch, ·, d_model]`) → `[members · batch, n_q, d_model]`. Where the fused native
   * kernels serve it (`wasm-blas`, short sequences) q, k and v come out of one product, packed
   * side by side as `c_attn` lays them out (k and v only, when the queries are other rows), and
   * the kernel reads them in place; elsewhere three products and `multiHeadAttention`'s ops.
   */
  private attention(blk: Block, h: tf.Tensor4D, hq: tf.Tensor4D, mask: tf.Tensor): tf.Tensor3D {
    const [d, H] = [this.config.d_model, this.config.n_heads];
    const [members, batch, seq] = h.shape;
    if (!fusedAttentionApplies([members * batch, hq.shape[2], seq, d], H, mask))
      return multiHeadAttention(
        foldMembers(this.qkv(blk, hq, 0)),
        foldMembers(this.qkv(blk, h, 1)),
        foldMembers(this.qkv(blk, h, 2)),
        H,
        mask,
      );
    if (hq === h) return packedAttention(foldMembers(linear(h, blk.attn.w, this.vec(blk.attn.b, 3))), H, mask);
    const [w, b] = [this.sliceLast(blk.attn.w, d, 2 * d), this.sliceLast(blk.attn.b, d, 2 * d)];
    return packedKvAttention(foldMembers(this.qkv(blk, hq, 0)), foldMembers(linear(h, w, this.vec(b, 3))), H, mask);
  }

  /**
   * One pre-LN block: `x + attn(ln_1(x))`, then `+ mlp(ln_2(·))`, for the queries `xq`
   * `[members, batch, n_q, d_model]` attending over the keys/values of `x`
   * `[members, batch, seq, d_model]` under the additive `mask` (broadcast to
   * `[members · batch, n_heads, n_q, seq]`). With `xq = x` and the causal mask this is the usual block.
   * @returns `[members, batch, n_q, d_model]`
   */
  private block(blk: Block, x: tf.Tensor4D, xq: tf.Tensor4D, mask: tf.Tensor): tf.Tensor4D {
    const h = this.ln(x, blk.ln1) as tf.Tensor4D;
    const hq = xq === x ? h : (this.ln(xq, blk.ln1) as tf.Tensor4D);
    const a = this.attention(blk, h, hq, mask);
    const x1 = residualLinear(xq, unfoldMembers(a, this.members), blk.attn.projW, this.vec(blk.attn.projB, 3));
    const f = gelu(linear(this.ln(x1, blk.ln2), blk.mlp.w, this.vec(blk.mlp.b, 3)));
    return residualLinear(x1, f, blk.mlp.projW, this.vec(blk.mlp.projB, 3)) as tf.Tensor4D;
  }

  /** Tied unembedding: `ln_f(h) @ wteᵀ`. @param h `[members, n, d_model]` → `[members, n, vocab]` */
  membersDecode(h: tf.Tensor3D): tf.Tensor3D {
    return linearT(this.ln(h, this.lnF), this.wte) as tf.Tensor3D;
  }

  membersLogits(tokens: tf.Tensor3D): tf.Tensor4D {
    const [members, batch, seq] = tokens.shape;
    const mask = causalMask(seq);
    let x = this.embed(tokens);
    for (const blk of this.blocks) x = this.block(blk, x, x, mask);
    const h = tf.reshape(x, [members, batch * seq, this.config.d_model]) as tf.Tensor3D;
    return tf.reshape(this.membersDecode(h), [members, batch, seq, this.config.vocab_size]);
  }

  /**
   * Same values as `membersLogits` at `positions`, cheaper: the last block computes its query,
   * MLP, `ln_f` and unembedding only at the answer position (all of them act per position; the
   * keys and values still cover every position).
   */
  membersAnswerLogits(tokens: tf.Tensor3D, positions: tf.Tensor2D): tf.Tensor3D {
    const [members, batch, seq] = tokens.shape;
    const d = this.config.d_model;
    const pos = foldMembers<tf.Tensor1D>(positions);
    const mask = causalMask(seq);
    let x = this.embed(tokens);
    const last = this.blocks.length - 1;
    for (let i = 0; i < last; i++) x = this.block(this.blocks[i], x, x, mask);
    const xq = tf.reshape(selectPositions(foldMembers(x), pos), [members, batch, 1, d]) as tf.Tensor4D;
    const out = this.block(this.blocks[last], x, xq, positionMask(pos, seq));
    return this.membersDecode(tf.reshape(out, [members, batch, d]) as tf.Tensor3D);
  }

  membersResidualStream(tokens: tf.Tensor3D, positions: tf.Tensor2D): tf.Tensor3D[] {
    const pos = foldMembers<tf.Tensor1D>(positions);
    const mask = causalMask(tokens.shape[2]);
    const at = (x: tf.Tensor4D) => unfoldMembers<tf.Tensor3D>(selectPositions(foldMembers(x), pos), this.members);
    let x = this.embed(tokens);
    const out = [at(x)];
    for (const blk of this.blocks) out.push(at((x = this.block(blk, x, x, mask))));
    return out;
  }
}

/**
 * A GPT-2 with seeded initial weights (see the constructor for the scheme): one model for one
 * generator, an ensemble (parameters stacked `[members, ...]`) for one generator per member.
 */
export function createGpt2(config: Gpt2Config, rng: Rng | readonly Rng[]): MemberModel {
  return new Gpt2(config, rng);
}

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
 * The network only: its config type, knobs, checks and size are declared in `gpt2.ts`, which the
 * registry lists; `factories.ts` builds this network for a config.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamModel } from '../base.js';
import {
  causalMask,
  embedding,
  gelu,
  layerNorm,
  linear,
  matMul,
  multiHeadAttention,
  ParamStore,
  positionMask,
  selectPositions,
} from '../layers.js';
import type { LanguageModel } from '../model.js';
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

class Gpt2 extends ParamModel implements LanguageModel {
  readonly params: Map<string, tf.Variable>;
  private readonly wte: tf.Variable; // [vocab, d_model]
  private readonly wpe: tf.Variable; // [seq_len, d_model]
  private readonly blocks: Block[] = [];
  private readonly lnF: [tf.Variable, tf.Variable];

  /**
   * Initialisation as GPT-2/nanoGPT: weights and embeddings N(0, 0.02²); the two projections that
   * write into the residual stream (`attn.c_proj`, `mlp.c_proj`) N(0, (0.02/sqrt(2·n_layers))²)
   * (paper §2.3); biases 0; LayerNorm gains 1.
   */
  constructor(
    readonly config: Gpt2Config,
    rng: Rng,
  ) {
    super();
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

  /** Token + position embeddings. @param tokens `[batch, seq]` → `[batch, seq, d_model]` */
  private embed(tokens: tf.Tensor2D): tf.Tensor3D {
    const seq = tokens.shape[1];
    if (seq > this.config.seq_len) throw new Error(`sequence of ${seq} tokens exceeds seq_len ${this.config.seq_len}`);
    const pos = tf.slice(this.wpe, [0, 0], [seq, this.config.d_model]);
    return tf.add(embedding(this.wte as tf.Tensor2D, tokens), pos) as tf.Tensor3D;
  }

  /** q, k, v = `h @ c_attn + b` split in three (slicing the `[d, 3d]` weight, cheaper than the output). */
  private qkv(blk: Block, h: tf.Tensor3D, which: number): tf.Tensor3D {
    const d = this.config.d_model;
    return linear(
      h,
      tf.slice(blk.attn.w, [0, which * d], [d, d]),
      tf.slice(blk.attn.b, [which * d], [d]),
    ) as tf.Tensor3D;
  }

  /**
   * One pre-LN block: `x + attn(ln_1(x))`, then `+ mlp(ln_2(·))`, for the queries `xq`
   * `[batch, n_q, d_model]` attending over the keys/values of `x` `[batch, seq, d_model]` under the
   * additive `mask`. With `xq = x` and the causal mask this is the usual block.
   * @returns `[batch, n_q, d_model]`
   */
  private block(blk: Block, x: tf.Tensor3D, xq: tf.Tensor3D, mask: tf.Tensor): tf.Tensor3D {
    const h = layerNorm(x, blk.ln1[0], blk.ln1[1], LN_EPS) as tf.Tensor3D;
    const hq = xq === x ? h : (layerNorm(xq, blk.ln1[0], blk.ln1[1], LN_EPS) as tf.Tensor3D);
    const a = multiHeadAttention(
      this.qkv(blk, hq, 0),
      this.qkv(blk, h, 1),
      this.qkv(blk, h, 2),
      this.config.n_heads,
      mask,
    );
    const x1 = tf.add(xq, linear(a, blk.attn.projW, blk.attn.projB));
    const f = gelu(linear(layerNorm(x1, blk.ln2[0], blk.ln2[1], LN_EPS), blk.mlp.w, blk.mlp.b));
    return tf.add(x1, linear(f, blk.mlp.projW, blk.mlp.projB)) as tf.Tensor3D;
  }

  /** Tied unembedding: `ln_f(h) @ wteᵀ`. @param h `[n, d_model]` → `[n, vocab]` */
  private unembed(h: tf.Tensor2D): tf.Tensor2D {
    const normed = layerNorm(h, this.lnF[0], this.lnF[1], LN_EPS) as tf.Tensor2D;
    return matMul(normed, this.wte as tf.Tensor2D, true);
  }

  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    const [batch, seq] = tokens.shape;
    const mask = causalMask(seq);
    let x = this.embed(tokens);
    for (const blk of this.blocks) x = this.block(blk, x, x, mask);
    const h = tf.reshape(x, [batch * seq, this.config.d_model]) as tf.Tensor2D;
    return tf.reshape(this.unembed(h), [batch, seq, this.config.vocab_size]);
  }

  /**
   * Same values as `logits` at `positions`, cheaper: the last block computes its query, MLP, `ln_f`
   * and unembedding only at the answer position (all of them act per position; the keys and
   * values still cover every position).
   */
  answerLogits(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D {
    const [batch, seq] = tokens.shape;
    const d = this.config.d_model;
    const mask = causalMask(seq);
    let x = this.embed(tokens);
    const last = this.blocks.length - 1;
    for (let i = 0; i < last; i++) x = this.block(this.blocks[i], x, x, mask);
    const xq = tf.reshape(selectPositions(x, positions), [batch, 1, d]) as tf.Tensor3D;
    const out = this.block(this.blocks[last], x, xq, positionMask(positions, seq));
    return this.unembed(tf.reshape(out, [batch, d]) as tf.Tensor2D);
  }

  residualStream(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D[] {
    const mask = causalMask(tokens.shape[1]);
    let x = this.embed(tokens);
    const out = [selectPositions(x, positions)];
    for (const blk of this.blocks) out.push(selectPositions((x = this.block(blk, x, x, mask)), positions));
    return out;
  }

  decode(h: tf.Tensor2D): tf.Tensor2D {
    return this.unembed(h);
  }
}

/** A GPT-2 with seeded initial weights (see the constructor for the scheme). */
export function createGpt2(config: Gpt2Config, rng: Rng): LanguageModel {
  return new Gpt2(config, rng);
}

/**
 * What the architecture networks share (`arch/<arch>-model.ts`): parameters by checkpoint name,
 * the default weight-decay rule and disposal (`ParamModel`), and for the recurrent ones the head
 * applied to hidden states (`RecurrentModel`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { decaysByRank, selectPositions } from './layers.js';

/** A model made of named `tf.Variable`s; subclasses fill `params` in their constructor. */
export abstract class ParamModel {
  /** Parameters by checkpoint name, in creation order. */
  abstract readonly params: Map<string, tf.Variable>;

  /**
   * Whether AdamW decays `name`: by default every parameter of rank ≥ 2 (`decaysByRank`, the
   * nanoGPT rule); architectures whose reference differs override this.
   * @throws Error when `name` is not a parameter.
   */
  decays(name: string): boolean {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    return decaysByRank(p);
  }

  /** Frees every parameter. */
  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

/**
 * RWKV and Mamba: a recurrence (time-mixing, selective scan) computes every position's hidden
 * state, and the head (final norm and unembedding) runs only where logits are wanted.
 */
export abstract class RecurrentModel extends ParamModel {
  /**
   * Hidden states before the head. @param tokens int32 `[batch, seq]`. @returns `[batch, seq, d_model]`
   * @param states when given, receives the residual stream `[batch, seq, d_model]` after the
   *   embedding and after each block (`n_layers + 1` tensors; the last is the result).
   */
  protected abstract hidden(tokens: tf.Tensor2D, states?: tf.Tensor3D[]): tf.Tensor3D;

  /** Final norm and unembedding. @param h `[n, d_model]`. @returns `[n, vocab]` */
  protected abstract unembed(h: tf.Tensor2D): tf.Tensor2D;

  /** Next-token logits at every position. @param tokens int32 `[batch, seq]`. @returns `[batch, seq, vocab]` */
  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    const [batch, seq] = tokens.shape;
    const h = this.hidden(tokens);
    const flat = this.unembed(tf.reshape(h, [batch * seq, h.shape[2]]) as tf.Tensor2D);
    return tf.reshape(flat, [batch, seq, flat.shape[1]]);
  }

  /**
   * `logits` at `positions`; the head runs only there (the recurrence needs every position up to it).
   * @param positions int32 `[batch]`. @returns `[batch, vocab]`
   */
  answerLogits(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D {
    return this.unembed(selectPositions(this.hidden(tokens), positions));
  }

  /** The residual stream at `positions` after the embedding and each block: `n_layers + 1` × `[batch, d_model]`. */
  residualStream(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D[] {
    const states: tf.Tensor3D[] = [];
    this.hidden(tokens, states);
    return states.map((s) => selectPositions(s, positions));
  }

  /** The head: final norm and unembedding. @param h `[n, d_model]`. @returns `[n, vocab]` */
  decode(h: tf.Tensor2D): tf.Tensor2D {
    return this.unembed(h);
  }
}

/**
 * The architecture-neutral model interface (docs/design.md §5). Every architecture (`arch/`: a
 * declaration, its network and a line in the registry) maps token ids `[batch, seq]` to
 * next-token logits `[batch, seq, vocab]`; training and evaluation only need the logits at each
 * example's answer position, which `answerLogits` computes without projecting the other positions
 * onto the vocabulary.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './arch/registry.js';

/** A language model over token ids. Its methods are pure tensor code: call inside `tf.tidy`. */
export interface LanguageModel {
  /** The architecture config it was built from. */
  readonly config: ModelConfig;
  /**
   * Trainable parameters by checkpoint name, in a fixed order: Hugging Face names for GPT-2
   * (`transformer.h.0.attn.c_attn.weight`) and LLaMA (`model.layers.0.self_attn.q_proj.weight`),
   * the reference implementations' names for RWKV-4 (`blocks.0.att.time_decay`) and Mamba
   * (`backbone.layers.0.mixer.A_log`).
   */
  readonly params: Map<string, tf.Variable>;
  /** Next-token logits at every position. @param tokens int32 `[batch, seq]`. @returns `[batch, seq, vocab]` */
  logits(tokens: tf.Tensor2D): tf.Tensor3D;
  /**
   * Logits at one position per example (the answer position `length - 1`).
   * @param tokens int32 `[batch, seq]`; @param positions int32 `[batch]`. @returns `[batch, vocab]`
   */
  answerLogits(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D;
  /**
   * The residual stream at one position per example, for the logit lens (nostalgebraist 2020): after
   * the embedding (RWKV: after `ln0`) and after each block (RWKV, Mamba: the block outputs).
   * @param tokens int32 `[batch, seq]`; @param positions int32 `[batch]`.
   * @returns `n_layers + 1` tensors `[batch, d_model]`; `decode` of the last equals `answerLogits`.
   */
  residualStream(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D[];
  /** The final norm and the unembedding. @param h `[n, d_model]`. @returns logits `[n, vocab]` */
  decode(h: tf.Tensor2D): tf.Tensor2D;
  /** Whether AdamW applies weight decay to the parameter called `name`. */
  decays(name: string): boolean;
  /** Frees the parameters. */
  dispose(): void;
}

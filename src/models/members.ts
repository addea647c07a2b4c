/**
 * Networks with a member axis: one model, or an ensemble of M same-shape models trained as one
 * (docs/design.md §5 "Ensembles").
 *
 * An architecture's network is written once, for activations `[members, batch, seq, d_model]`.
 * Its parameters are either of their own shapes (one model: `members` is 1 and every layer sees
 * the plain tensors, so the kernels and values are those of a network without the member axis)
 * or stacked `[members, ...shape]` (an ensemble: member m's slice is its own model, matrices
 * multiply as batched products `[M, n, d_in] @ [M, d_in, d_out]`, norm gains broadcast as
 * `[M, 1, ..., d]`, attention folds the members into the batch). Per-kernel overhead, which
 * dominates small models' steps, is then paid once for all members.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './arch/registry.js';
import { ParamModel } from './base.js';
import type { LanguageModel } from './model.js';

/**
 * M same-shape models of one architecture as one network; every tensor has a leading member axis.
 * Its methods are pure tensor code: call inside `tf.tidy`.
 */
export interface EnsembleModel {
  /** The architecture config every member shares. */
  readonly config: ModelConfig;
  /** Number of members M. */
  readonly members: number;
  /** Parameters by checkpoint name, stacked `[members, ...shape]` (the shapes of `LanguageModel.params`). */
  readonly params: Map<string, tf.Variable>;
  /**
   * Each member's logits at one position per example.
   * @param tokens int32 `[members, batch, seq]`; @param positions int32 `[members, batch]`.
   * @returns `[members, batch, vocab]`
   */
  membersAnswerLogits(tokens: tf.Tensor3D, positions: tf.Tensor2D): tf.Tensor3D;
  /** Whether AdamW decays `name` (the rule of one member). */
  decays(name: string): boolean;
  /** Frees the parameters. */
  dispose(): void;
}

/**
 * A network written for a member axis (see the module header), serving both as a `LanguageModel`
 * (one model, `members` 1, parameters of their own shapes) and as an `EnsembleModel` (stacked).
 * Subclasses implement the `members*` methods on `[members, ...]` tensors.
 */
export abstract class MemberModel extends ParamModel implements LanguageModel, EnsembleModel {
  abstract readonly config: ModelConfig;

  /**
   * @param members M (1 for one model).
   * @param stacked whether parameters carry the member axis (an ensemble).
   */
  constructor(
    readonly members: number,
    readonly stacked: boolean,
  ) {
    super();
  }

  /** Logits at every position. @param tokens `[members, batch, seq]`. @returns `[members, batch, seq, vocab]` */
  abstract membersLogits(tokens: tf.Tensor3D): tf.Tensor4D;

  abstract membersAnswerLogits(tokens: tf.Tensor3D, positions: tf.Tensor2D): tf.Tensor3D;

  /**
   * The residual stream at `positions` after the embedding and after each block.
   * @returns `n_layers + 1` tensors `[members, batch, d_model]`
   */
  abstract membersResidualStream(tokens: tf.Tensor3D, positions: tf.Tensor2D): tf.Tensor3D[];

  /** Final norm and unembedding. @param h `[members, n, d_model]`. @returns `[members, n, vocab]` */
  abstract membersDecode(h: tf.Tensor3D): tf.Tensor3D;

  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    return tf.squeeze(this.membersLogits(this.one<tf.Tensor3D>(tokens)), [0]);
  }

  answerLogits(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D {
    return tf.squeeze(this.membersAnswerLogits(this.one<tf.Tensor3D>(tokens), this.one<tf.Tensor2D>(positions)), [0]);
  }

  /** `membersResidualStream` of one model: `n_layers + 1` tensors `[batch, d_model]`. */
  residualStream(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D[] {
    return this.membersResidualStream(this.one<tf.Tensor3D>(tokens), this.one<tf.Tensor2D>(positions)).map((h) =>
      tf.squeeze(h, [0]),
    );
  }

  /** `membersDecode` of one model. @param h `[n, d_model]`. @returns `[n, vocab]` */
  decode(h: tf.Tensor2D): tf.Tensor2D {
    return tf.squeeze(this.membersDecode(this.one<tf.Tensor3D>(h)), [0]);
  }

  /** The decay rule (`ParamModel.decays`) on a member's shape: the rank without the member axis. */
  override decays(name: string): boolean {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    return p.rank - (this.stacked ? 1 : 0) >= 2;
  }

  /**
   * A vector parameter (`[d]`, stacked `[members, d]`) shaped to broadcast against a tensor of
   * rank `rank` with the member axis first: itself for one model, `[members, 1, ..., 1, d]` stacked.
   */
  protected vec(v: tf.Tensor, rank: number): tf.Tensor {
    if (!this.stacked) return v;
    return tf.reshape(v, [this.members, ...new Array<number>(rank - 2).fill(1), v.shape[v.rank - 1]]);
  }

  /** Columns `[start, start + size)` of the last axis of a parameter, stacked or not. */
  protected sliceLast(v: tf.Tensor, start: number, size: number): tf.Tensor {
    const begin = v.shape.map((_, i) => (i === v.rank - 1 ? start : 0));
    return tf.slice(
      v,
      begin,
      v.shape.map((d, i) => (i === v.rank - 1 ? size : d)),
    );
  }

  /** A one-model tensor with a member axis of 1 (`[1, ...shape]`). @throws Error on an ensemble. */
  private one<T extends tf.Tensor>(x: tf.Tensor): T {
    if (this.members !== 1) throw new Error(`this network holds ${this.members} members, not one model`);
    return tf.expandDims(x, 0) as T;
  }
}

/** `[members, batch, ...]` → `[members · batch, ...]`: the members folded into the batch (attention). */
export function foldMembers<T extends tf.Tensor>(x: tf.Tensor): T {
  const [members, batch] = x.shape as [number, number];
  return tf.reshape(x, [members * batch, ...x.shape.slice(2)]) as T;
}

/** `[members · batch, ...]` → `[members, batch, ...]`, the inverse of `foldMembers`. */
export function unfoldMembers<T extends tf.Tensor>(x: tf.Tensor, members: number): T {
  return tf.reshape(x, [members, x.shape[0] / members, ...x.shape.slice(1)]) as T;
}

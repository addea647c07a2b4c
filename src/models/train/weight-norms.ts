/**
 * Weight norms, a progress measure of grokking: Liu et al. 2022 ("Omnigrok: Grokking Beyond
 * Algorithmic Data", arXiv 2210.01117) tie generalisation to the L2 norm of all the weights, which
 * weight decay pulls down after memorisation. Measured at every evaluation of the curve: the norm
 * of all parameters, of each block's, and of the parameters outside the blocks.
 *
 * A parameter belongs to block i when its name has a component `.<i>.` (every architecture's
 * reference names do: `transformer.h.<i>.` for GPT-2, `model.layers.<i>.` for LLaMA, `blocks.<i>.`
 * for RWKV, `backbone.layers.<i>.` for Mamba); the others (embeddings, final norm, an untied
 * unembedding) are `other`.
 */
import * as tf from '@tensorflow/tfjs-core';

/** L2 norms (`sqrt(Σ w²)` over the parameters named) of a model's weights at one step. */
export interface WeightNorms {
  /** All parameters. */
  total: number;
  /** Block i's parameters, for i = 0 .. n_layers − 1. */
  blocks: number[];
  /** The parameters of no block: embeddings, final norm, unembedding. */
  other: number;
}

/** The block a parameter belongs to (its first `.<i>.` name component), or undefined for none. */
export function blockOf(name: string): number | undefined {
  const m = /\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The weight norms of `params`: each parameter's sum of squares on the device (float32), then the
 * sums per part and their square roots on the host (float64), in the parameters' order.
 */
export async function weightNorms(params: ReadonlyMap<string, tf.Variable>): Promise<WeightNorms> {
  return (await membersWeightNorms(params, 0))[0];
}

/**
 * `weightNorms` of each member of an ensemble (`members` > 0: parameters stacked
 * `[members, ...]`, each member's sum of squares over its own slice), or of one model (`members` 0).
 */
export async function membersWeightNorms(
  params: ReadonlyMap<string, tf.Variable>,
  members: number,
): Promise<WeightNorms[]> {
  const names = [...params.keys()];
  const count = Math.max(1, members);
  if (names.length === 0) return new Array(count).fill(0).map(() => ({ total: 0, blocks: [], other: 0 }));
  const sums = tf.tidy(() =>
    tf.stack(
      [...params.values()].map((p) =>
        members > 0 ? tf.sum(tf.square(tf.reshape(p, [members, -1])), 1) : tf.sum(tf.square(p)),
      ),
    ),
  );
  const squares = (await sums.data()) as Float32Array; // [parameters, members] or [parameters]
  sums.dispose();
  return Array.from({ length: count }, (_, m) => {
    const blocks: number[] = [];
    let other = 0;
    let total = 0;
    names.forEach((name, i) => {
      const sq = squares[i * count + m];
      const b = blockOf(name);
      if (b === undefined) other += sq;
      else {
        while (blocks.length <= b) blocks.push(0);
        blocks[b] += sq;
      }
      total += sq;
    });
    return { total: Math.sqrt(total), blocks: blocks.map(Math.sqrt), other: Math.sqrt(other) };
  });
}

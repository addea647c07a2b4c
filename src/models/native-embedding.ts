/**
 * GPT-2's input embedding, token plus learned position, as one native kernel forward and one
 * backward (`native-kernels.ts`; native/src/kernels.cc `embed`), for `layers.ts`'
 * `tokenPositionEmbedding` on `wasm-blas`: the gather, the position slice and the broadcast add
 * forward, and the segment sum, the slice's padding and the position sum backward, in one pass
 * each.
 *
 * `y[m, b, j] = wte[m, tokens[m, b, j]] + wpe[m, j]`; backward `dwte[m, v] = Σ dy[m, b, j]` over
 * the `(b, j)` with `tokens[m, b, j] = v`, `dwpe[m, j] = Σ_b dy[m, b, j]` (0 for positions past the
 * sequence), summed in row order. Saves the ids.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { EmbedShape } from './native-kernels.js';
import { defineNativeKernel, runNative, sizeOf } from './native-kernels.js';

/**
 * `[groups, rows, seq, vocab, positions, d]` of an embedding (see kernels.cc `embed`) with tables
 * of shapes `wte`, `wpe` and ids `ids`: one group with unstacked tables (any ids shape), else one
 * a member (`ids` `[members, ...]`).
 */
function embedShape(wte: number[], wpe: number[], ids: number[]): EmbedShape {
  const [vocab, d] = wte.slice(-2);
  const groups = wte.length === 3 ? wte[0] : 1;
  if (wpe.length !== wte.length || wpe[wpe.length - 1] !== d || (wte.length === 3 && ids[0] !== groups))
    throw new Error(
      `embedding: wte ${JSON.stringify(wte)}, wpe ${JSON.stringify(wpe)} and tokens ${JSON.stringify(ids)} do not fit`,
    );
  return [groups, sizeOf(ids) / groups, ids[ids.length - 1], vocab, wpe[wpe.length - 2], d];
}

/** `GrokpipeEmbedding`: wte, wpe, ids → `[...ids, d]`. */
const EMBEDDING = defineNativeKernel('Embedding', ['embed'], ({ inputs, addon, out, view, ints }) => {
  const { wte, wpe, ids } = inputs as Record<string, TensorInfo>;
  const shape = embedShape(wte.shape, wpe.shape, ids.shape);
  const y = out([...ids.shape, shape[5]]);
  addon.embed(view(wte), view(wpe), ints(ids), view(y), ...shape);
  return y;
});

/** `GrokpipeEmbeddingGrad`: dy, ids (attrs: the tables' shapes `wteShape`, `wpeShape`) → dwte, dwpe. */
const EMBEDDING_GRAD = defineNativeKernel(
  'EmbeddingGrad',
  ['embedGrad'],
  ({ inputs, attrs, addon, out, view, ints }) => {
    const { dy, ids } = inputs as Record<string, TensorInfo>;
    const { wteShape, wpeShape } = attrs as { wteShape: number[]; wpeShape: number[] };
    const shape = embedShape(wteShape, wpeShape, ids.shape);
    const [dwte, dwpe] = [out(wteShape), out(wpeShape)];
    addon.embedGrad(view(dy), ints(ids), view(dwte), view(dwpe), ...shape);
    return [dwte, dwpe];
  },
);

/**
 * Token plus position embedding, natively, as one tape node; saves the tokens.
 * @param wte `[vocab, d]`, or `[members, vocab, d]` stacked; @param wpe `[seq_len, d]` (`[members, seq_len, d]`)
 * @param tokens int32 `[members, batch, seq]` (any leading shape with unstacked tables), `seq ≤ seq_len`
 * @returns `[...tokens.shape, d]`
 * @throws Error (at run time) on a token outside `[0, vocab)`.
 */
export function nativeTokenPositionEmbedding(wte: tf.Tensor, wpe: tf.Tensor, tokens: tf.Tensor): tf.Tensor {
  const attrs = { wteShape: wte.shape, wpeShape: wpe.shape };
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [te, pe, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([tokens]);
    return {
      value: runNative<tf.Tensor>(EMBEDDING, { wte: te, wpe: pe, ids: tokens }),
      gradFunc: (dy: tf.Tensor, [ids]: tf.Tensor[]) => runNative<tf.Tensor[]>(EMBEDDING_GRAD, { dy, ids }, attrs),
    };
  })(wte, wpe);
}

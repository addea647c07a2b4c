/**
 * GPT-2's input embedding, token plus learned position, as one native kernel forward and one
 * backward (`native-kernels.ts`; native/src/kernels.cc `embed`), for `layers.ts`'
 * `tokenPositionEmbedding` on `wasm-blas`: the gather, the position slice and the broadcast add
 * forward, and the segment sum, the slice's padding and the position sum backward, in one pass
 * each.
 *
 * `y[m, b, j] = wte[m, tokens[m, b, j]] + wpe[m, j]`; backward `dwte[m, v] = Σ dy[m, b, j]` over
 * the `(b, j)` with `tokens[m, b, j] = v`, `dwpe[m, j] = Σ_b dy[m, b, j]` (0 for positions past the
 * sequence), summed in row order. Saves nothing (the ids are closed over).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { EmbedShape } from './native-kernels.js';
import { defineNativeKernel, runNative, sizeOf } from './native-kernels.js';

/** `[groups, rows, seq, vocab, positions, d]` of an embedding (see kernels.cc `embed`). */
function embedShape(wte: TensorInfo, wpe: TensorInfo, ids: TensorInfo): EmbedShape {
  const [vocab, d] = wte.shape.slice(-2);
  const groups = wte.shape.length === 3 ? wte.shape[0] : 1;
  if (wpe.shape.length !== wte.shape.length || wpe.shape[wpe.shape.length - 1] !== d || ids.shape[0] !== groups)
    throw new Error(
      `embedding: wte ${JSON.stringify(wte.shape)}, wpe ${JSON.stringify(wpe.shape)} and tokens ${JSON.stringify(ids.shape)} do not fit`,
    );
  return [
    groups,
    sizeOf(ids.shape) / groups,
    ids.shape[ids.shape.length - 1],
    vocab,
    wpe.shape[wpe.shape.length - 2],
    d,
  ];
}

/** `GrokpipeEmbedding`: wte, wpe, ids → `[...ids, d]`. */
const EMBEDDING = defineNativeKernel('Embedding', ({ inputs, addon, out, view, ints }) => {
  const { wte, wpe, ids } = inputs as Record<string, TensorInfo>;
  const shape = embedShape(wte, wpe, ids);
  const y = out([...ids.shape, shape[5]]);
  addon.embed(view(wte), view(wpe), ints(ids), view(y), ...shape);
  return y;
});

/** `GrokpipeEmbeddingGrad`: dy, ids, wte, wpe (for their shapes) → dwte, dwpe. */
const EMBEDDING_GRAD = defineNativeKernel('EmbeddingGrad', ({ inputs, addon, out, view, ints }) => {
  const { dy, ids, wte, wpe } = inputs as Record<string, TensorInfo>;
  const shape = embedShape(wte, wpe, ids);
  const [dwte, dwpe] = [out(wte.shape), out(wpe.shape)];
  addon.embedGrad(view(dy), ints(ids), view(dwte), view(dwpe), ...shape);
  return [dwte, dwpe];
});

/**
 * Token plus position embedding, natively, as one tape node.
 * @param wte `[vocab, d]`, or `[members, vocab, d]` stacked; @param wpe `[seq_len, d]` (`[members, seq_len, d]`)
 * @param tokens int32 `[members, batch, seq]` (members 1 with unstacked tables), `seq ≤ seq_len`
 * @returns `[members, batch, seq, d]`
 * @throws Error (at run time) on a token outside `[0, vocab)`.
 */
export function nativeTokenPositionEmbedding(wte: tf.Tensor, wpe: tf.Tensor, tokens: tf.Tensor): tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [te, pe] = args as [tf.Tensor, tf.Tensor];
    return {
      value: runNative<tf.Tensor>(EMBEDDING, { wte: te, wpe: pe, ids: tokens }),
      gradFunc: (dy: tf.Tensor) => runNative<tf.Tensor[]>(EMBEDDING_GRAD, { dy, ids: tokens, wte: te, wpe: pe }),
    };
  })(wte, wpe);
}

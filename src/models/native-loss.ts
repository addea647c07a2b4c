/**
 * Softmax cross-entropy over the vocabulary as one native kernel forward and one backward
 * (`native-kernels.ts`; native/src/kernels.cc `crossEntropy`), for `train/loss.ts`'s
 * `crossEntropy` on `wasm-blas`.
 *
 * Forward, per row of logits `x` (the last axis) and target `t`:
 * `loss = log Σⱼ exp(xⱼ − max x) + max x − x_t` (the log-sum-exp form of `−log softmax(x)_t`),
 * with the softmax's gradient `softmax(x) − onehot(t)` computed in the same pass and saved for the
 * backward, which is `dlogits = dy · (softmax − onehot)` row by row (e.g. Goodfellow et al. 2016,
 * §6.2.2.3). The same pass tells whether the first argmax is the target (`correct`), the training
 * accuracy. A target outside `[0, vocab)` gives loss 0 and gradient 0, as the TF.js form's
 * all-zero one-hot row does.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { defineNativeKernel, runNative, sizeOf } from './native-kernels.js';

/** `GrokpipeCrossEntropy`: logits `[..., vocab]`, targets int32 `[...]` → loss `[...]`, grad `[..., vocab]`, correct `[...]`. */
const CROSS_ENTROPY = defineNativeKernel('CrossEntropy', ['crossEntropy'], ({ inputs, addon, out, view, ints }) => {
  const logits = inputs.logits as TensorInfo;
  const targets = inputs.targets as TensorInfo;
  const lead = logits.shape.slice(0, -1);
  const vocab = logits.shape[logits.shape.length - 1];
  const [loss, grad, correct] = [out(lead), out(logits.shape), out(lead)];
  addon.crossEntropy(view(logits), ints(targets), view(loss), view(grad), view(correct), sizeOf(lead), vocab);
  return [loss, grad, correct];
});

/** `GrokpipeCrossEntropyGrad`: dy `[...]`, grad `[..., vocab]` → `dy · grad` `[..., vocab]`. */
const CROSS_ENTROPY_GRAD = defineNativeKernel(
  'CrossEntropyGrad',
  ['crossEntropyGrad'],
  ({ inputs, addon, out, view }) => {
    const dy = inputs.dy as TensorInfo;
    const grad = inputs.grad as TensorInfo;
    const dlogits = out(grad.shape);
    addon.crossEntropyGrad(view(dy), view(grad), view(dlogits), sizeOf(dy.shape), grad.shape[grad.shape.length - 1]);
    return dlogits;
  },
);

/** Per-row loss and whether each row's first argmax is its target. */
export interface CrossEntropyRows {
  /** `−log softmax(logits)[target]`, `[...]`; differentiable with respect to the logits. */
  loss: tf.Tensor;
  /** 1 where the first argmax of the row is the target, else 0 (float32 `[...]`); not differentiable. */
  correct: tf.Tensor;
}

/**
 * Softmax cross-entropy and argmax hits of each row, one native pass; a single tape node whose
 * backward is one native kernel. Saves `softmax − onehot` (`[..., vocab]`).
 * @param logits float32 `[..., vocab]` (`[b, vocab]`, or `[members, b, vocab]`).
 * @param targets int32 `[...]`, the logits' leading shape.
 * @throws Error when the shapes or dtypes do not fit.
 */
export function nativeCrossEntropyRows(logits: tf.Tensor, targets: tf.Tensor): CrossEntropyRows {
  const lead = logits.shape.slice(0, -1);
  if (targets.dtype !== 'int32' || !tf.util.arraysEqual(targets.shape, lead))
    throw new Error(
      `crossEntropy: targets must be int32 of shape ${JSON.stringify(lead)}, got ${targets.dtype} ${JSON.stringify(targets.shape)}`,
    );
  let correct: tf.Tensor | undefined;
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [rowLoss, grad, hits] = runNative<tf.Tensor[]>(CROSS_ENTROPY, { logits: x, targets });
    correct = tf.keep(hits);
    save([grad]);
    return {
      value: rowLoss,
      gradFunc: (dy: tf.Tensor, [g]: tf.Tensor[]) => runNative<tf.Tensor>(CROSS_ENTROPY_GRAD, { dy, grad: g }),
    };
  })(logits);
  // `correct` was kept to outlive the custom gradient's scope; a clone (sharing its buffer) lives
  // in the caller's scope instead, so that tidy frees it as usual.
  const hits = tf.clone(correct as tf.Tensor);
  (correct as tf.Tensor).dispose();
  return { loss, correct: hits };
}

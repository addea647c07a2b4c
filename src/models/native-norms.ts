/**
 * LayerNorm and RMSNorm as one native kernel forward and one backward (`native-kernels.ts`;
 * native/src/kernels.cc `layerNorm`, `rmsNorm`), for `fused.ts` on `wasm-blas`. Formulas and
 * saved tensors are those of `fused.ts`' TF.js forms:
 *
 * - LayerNorm (Ba et al. 2016): `y = x̂ γ + β`, `x̂ = (x − μ) r`, `r = 1/sqrt(var + eps)` (biased
 *   variance); backward `dx = r (g − mean(g) − x̂ mean(g x̂))` with `g = dy γ`, `dγ = Σ dy x̂`,
 *   `dβ = Σ dy` over rows.
 * - RMSNorm (Zhang & Sennrich 2019): `y = x̂ γ`, `x̂ = x r`, `r = 1/sqrt(mean(x²) + eps)`;
 *   backward `dx = r (g − x̂ mean(g x̂))`, `dγ = Σ dy x̂`.
 *
 * Both save `x̂` `[..., d]`, `r` `[..., 1]` and `γ`. Row statistics and the parameter gradients'
 * sums are accumulated in double, the latter over each member's rows in row order.
 *
 * Shapes: `x` `[..., d]` with `γ`, `β` `[d]` (one model), or `x` `[members, ..., d]` with `γ`, `β`
 * `[members, 1, ..., 1, d]` (an ensemble: member m's rows use its parameters); reductions over the
 * last axis only.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { defineNativeKernel, runNative, sizeOf } from './native-kernels.js';

/** `[groups, rows, d]` of a norm: the parameters' rows (1, or the ensemble's members) and `x`'s rows. */
function normShape(x: TensorInfo, gamma: TensorInfo): [number, number, number] {
  const d = x.shape[x.shape.length - 1];
  const groups = sizeOf(gamma.shape) / d;
  if (gamma.shape[gamma.shape.length - 1] !== d || (groups > 1 && x.shape[0] !== groups))
    throw new Error(`norm: parameters ${JSON.stringify(gamma.shape)} do not fit x ${JSON.stringify(x.shape)}`);
  return [groups, sizeOf(x.shape) / d, d];
}

/** `GrokpipeLayerNorm`: x, gamma, beta (attr eps) → y, x̂ `[..., d]`, r `[..., 1]`. */
const LAYER_NORM = defineNativeKernel('LayerNorm', ({ inputs, attrs, addon, out, view }) => {
  const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
  const [groups, rows, d] = normShape(x, gamma);
  const [y, xhat, rstd] = [out(x.shape), out(x.shape), out([...x.shape.slice(0, -1), 1])];
  addon.layerNorm(
    view(x),
    view(gamma),
    view(beta),
    view(y),
    view(xhat),
    view(rstd),
    groups,
    rows,
    d,
    attrs.eps as number,
  );
  return [y, xhat, rstd];
});

/** `GrokpipeLayerNormGrad`: dy, x̂, r, gamma → dx, dgamma, dbeta. */
const LAYER_NORM_GRAD = defineNativeKernel('LayerNormGrad', ({ inputs, addon, out, view }) => {
  const { dy, xhat, rstd, gamma } = inputs as Record<string, TensorInfo>;
  const [groups, rows, d] = normShape(dy, gamma);
  const [dx, dgamma, dbeta] = [out(dy.shape), out(gamma.shape), out(gamma.shape)];
  addon.layerNormGrad(
    view(dy),
    view(xhat),
    view(rstd),
    view(gamma),
    view(dx),
    view(dgamma),
    view(dbeta),
    groups,
    rows,
    d,
  );
  return [dx, dgamma, dbeta];
});

/** `GrokpipeRmsNorm`: x, gamma (attr eps) → y, x̂ `[..., d]`, r `[..., 1]`. */
const RMS_NORM = defineNativeKernel('RmsNorm', ({ inputs, attrs, addon, out, view }) => {
  const { x, gamma } = inputs as Record<string, TensorInfo>;
  const [groups, rows, d] = normShape(x, gamma);
  const [y, xhat, r] = [out(x.shape), out(x.shape), out([...x.shape.slice(0, -1), 1])];
  addon.rmsNorm(view(x), view(gamma), view(y), view(xhat), view(r), groups, rows, d, attrs.eps as number);
  return [y, xhat, r];
});

/** `GrokpipeRmsNormGrad`: dy, x̂, r, gamma → dx, dgamma. */
const RMS_NORM_GRAD = defineNativeKernel('RmsNormGrad', ({ inputs, addon, out, view }) => {
  const { dy, xhat, r, gamma } = inputs as Record<string, TensorInfo>;
  const [groups, rows, d] = normShape(dy, gamma);
  const [dx, dgamma] = [out(dy.shape), out(gamma.shape)];
  addon.rmsNormGrad(view(dy), view(xhat), view(r), view(gamma), view(dx), view(dgamma), groups, rows, d);
  return [dx, dgamma];
});

/**
 * LayerNorm over the last axis, natively (see the file's docstring for shapes and formulas).
 * @returns `[..., d]`, one tape node.
 */
export function nativeLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [y, xhat, rstd] = runNative<tf.Tensor[]>(LAYER_NORM, { x: xi, gamma: g, beta: b }, { eps });
    save([xhat, rstd, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [xh, r, gs]: tf.Tensor[]) =>
        runNative<tf.Tensor[]>(LAYER_NORM_GRAD, { dy, xhat: xh, rstd: r, gamma: gs }),
    };
  })(x, gamma, beta);
}

/**
 * RMSNorm over the last axis, natively (see the file's docstring for shapes and formulas).
 * @returns `[..., d]`, one tape node.
 */
export function nativeRmsNorm(x: tf.Tensor, gamma: tf.Tensor, eps: number): tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [y, xhat, r] = runNative<tf.Tensor[]>(RMS_NORM, { x: xi, gamma: g }, { eps });
    save([xhat, r, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [xh, rs, gs]: tf.Tensor[]) =>
        runNative<tf.Tensor[]>(RMS_NORM_GRAD, { dy, xhat: xh, r: rs, gamma: gs }),
    };
  })(x, gamma);
}

/**
 * LayerNorm and RMSNorm as one native kernel forward and one backward (`native-kernels.ts`;
 * native/src/kernels.cc `norm`, `normGrad`), for `fused.ts` on `wasm-blas`. Formulas and
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

/**
 * The kernels `Grokpipe<name>` (x, gamma[, beta], attr eps → y, x̂ `[..., d]`, r `[..., 1]`) and
 * `Grokpipe<name>Grad` (dy, x̂, r, gamma → dx, dgamma[, dbeta]) of LayerNorm (`centred`, with a
 * shift β) or RMSNorm.
 */
function defineNorm(name: string, centred: boolean): [string, string] {
  const fwd = defineNativeKernel(name, ['norm'], ({ inputs, attrs, addon, out, view }) => {
    const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
    const [groups, rows, d] = normShape(x, gamma);
    const [y, xhat, r] = [out(x.shape), out(x.shape), out([...x.shape.slice(0, -1), 1])];
    const b = centred ? view(beta) : null;
    addon.norm(view(x), view(gamma), b, view(y), view(xhat), view(r), groups, rows, d, attrs.eps as number);
    return [y, xhat, r];
  });
  const bwd = defineNativeKernel(`${name}Grad`, ['normGrad'], ({ inputs, addon, out, view }) => {
    const { dy, xhat, r, gamma } = inputs as Record<string, TensorInfo>;
    const [groups, rows, d] = normShape(dy, gamma);
    const grads = [out(dy.shape), out(gamma.shape), ...(centred ? [out(gamma.shape)] : [])];
    const [dx, dgamma, dbeta] = grads.map(view);
    addon.normGrad(view(dy), view(xhat), view(r), view(gamma), dx, dgamma, dbeta ?? null, groups, rows, d);
    return grads;
  });
  return [fwd, bwd];
}

const LAYER_NORM = defineNorm('LayerNorm', true);
const RMS_NORM = defineNorm('RmsNorm', false);

/** A norm as one tape node: `inputs` are `[x, gamma, beta]` (LayerNorm) or `[x, gamma]` (RMSNorm). */
function normNode([fwd, bwd]: [string, string], inputs: tf.Tensor[], eps: number): tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [x, gamma, beta] = args as tf.Tensor[];
    const named: Record<string, tf.Tensor> = beta ? { x, gamma, beta } : { x, gamma };
    const [y, xhat, r] = runNative<tf.Tensor[]>(fwd, named, { eps });
    save([xhat, r, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [xh, rs, g]: tf.Tensor[]) =>
        runNative<tf.Tensor[]>(bwd, { dy, xhat: xh, r: rs, gamma: g }),
    };
  })(...inputs);
}

/**
 * LayerNorm over the last axis, natively (see the file's docstring for shapes and formulas).
 * @returns `[..., d]`, one tape node.
 */
export function nativeLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  return normNode(LAYER_NORM, [x, gamma, beta], eps);
}

/**
 * RMSNorm over the last axis, natively (see the file's docstring for shapes and formulas).
 * @returns `[..., d]`, one tape node.
 */
export function nativeRmsNorm(x: tf.Tensor, gamma: tf.Tensor, eps: number): tf.Tensor {
  return normNode(RMS_NORM, [x, gamma], eps);
}

/**
 * GELU, LayerNorm, RMSNorm and the affine map as single tape nodes with hand-written gradients
 * (`tf.customGrad`).
 *
 * Written as chains of TF.js ops (layers.ts' reference forms), each of these leaves 6–10
 * activation-sized tensors on the tape, and TF.js keeps every tensor of the forward pass and the
 * gradient of every one of them until the whole backward pass ends. Fused, each keeps one or two
 * (`x`, or `x̂` and `1/σ`), the forward temporaries are freed at once, and the backward recomputes
 * what it needs inside a `tf.tidy`. The values are those of the reference forms up to float32
 * rounding (checked in test/model-optimised.test.ts). Memory of the 8-layer d_model 768 GPT-2 step
 * and the kernel count of every step drop accordingly (`npm run bench -- train`).
 *
 * Shapes: `x` `[..., d]`, parameters `[d]`; reductions are over the last axis only.
 *
 * The affine map (`fusedLinear`) is the other way round: the same kernels as layers.ts' op chain
 * (reshape, product, bias, reshape) on the same operands, so the same values bit for bit, but as
 * one tape node it saves two tensors instead of six and its backward runs about half the kernels
 * (the op chain's gradient reshapes at each of its four nodes).
 */
import * as tf from '@tensorflow/tfjs-core';
import { unbroadcast } from './gradients.js';
import { nativeGelu } from './native-activations.js';
import { nativeKernelsOn } from './native-kernels.js';
import { nativeLinear } from './native-linear.js';
import { nativeLayerNorm, nativeRmsNorm } from './native-norms.js';

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** `u = 2 sqrt(2/π) (x + a x³)`, so that GELU(x) = x σ(u) (layers.ts `gelu`). */
const geluArg = (x: tf.Tensor) => tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), GELU_A)), 2 * GELU_C);

/**
 * GELU, tanh approximation (Hendrycks & Gimpel 2016, §2), as `x σ(u)`; its derivative is
 * `σ(u) + x σ(u)(1 − σ(u)) · 2 sqrt(2/π)(1 + 3a x²)`. Saves `x` only. Elementwise. On `wasm-blas`
 * one native kernel each way (`native-activations.ts`).
 */
export function fusedGelu(x: tf.Tensor): tf.Tensor {
  return nativeKernelsOn() ? nativeGelu(x) : tfjsGelu(x);
}

const tfjsGelu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.tidy(() => tf.mul(x, tf.sigmoid(geluArg(x)))),
    gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) =>
      tf.tidy(() => {
        const s = tf.sigmoid(geluArg(xs));
        const du = tf.mul(tf.add(tf.mul(tf.mul(xs, xs), 3 * GELU_A), 1), 2 * GELU_C);
        return tf.mul(dy, tf.add(s, tf.mul(tf.mul(xs, tf.mul(s, tf.sub(1, s))), du)));
      }),
  };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * LayerNorm (Ba et al. 2016) over the last axis, `y = x̂ γ + β` with `x̂ = (x − μ)/σ`,
 * `σ = sqrt(var + eps)` (biased variance). Backward (the standard derivation, e.g. Ba et al. §3):
 * `dx = (1/σ)(g − mean(g) − x̂ mean(g x̂))` with `g = dy γ`; `dγ = Σ dy x̂`, `dβ = Σ dy` over rows.
 * Saves `x̂` and `1/σ`. On `wasm-blas` one native kernel each way (`native-norms.ts`).
 */
export function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  if (nativeKernelsOn()) return nativeLayerNorm(x, gamma, beta, eps);
  return cached(layerNorms, eps, makeLayerNorm)(x, gamma, beta);
}

function makeLayerNorm(eps: number) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [xhat, rstd] = tf.tidy(() => {
      const centered = tf.sub(xi, tf.mean(xi, -1, true));
      const r = tf.rsqrt(tf.add(tf.mean(tf.square(centered), -1, true), eps));
      return [tf.mul(centered, r), r];
    });
    save([xhat, rstd, g]);
    return {
      value: tf.tidy(() => tf.add(tf.mul(xhat, g), b)),
      gradFunc: (dy: tf.Tensor, [xh, r, gs]: tf.Tensor[]) =>
        tf.tidy(() => {
          const gx = tf.mul(dy, gs);
          const inner = tf.sub(tf.sub(gx, tf.mean(gx, -1, true)), tf.mul(xh, tf.mean(tf.mul(gx, xh), -1, true)));
          return [tf.mul(inner, r), unbroadcast(tf.mul(dy, xh), gs.shape, true), unbroadcast(dy, gs.shape, true)];
        }),
    };
  }) as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
}

/**
 * RMSNorm (Zhang & Sennrich 2019) over the last axis, `y = x r γ` with `r = 1/sqrt(mean(x²) + eps)`.
 * Backward: `dx = r (g − x̂ mean(g x̂))` with `g = dy γ`, `x̂ = x r`; `dγ = Σ dy x̂` over rows.
 * Saves `x̂` and `r`. On `wasm-blas` one native kernel each way (`native-norms.ts`).
 */
export function fusedRmsNorm(x: tf.Tensor, gamma: tf.Tensor, eps: number): tf.Tensor {
  if (nativeKernelsOn()) return nativeRmsNorm(x, gamma, eps);
  return cached(rmsNorms, eps, makeRmsNorm)(x, gamma);
}

function makeRmsNorm(eps: number) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [xhat, r] = tf.tidy(() => {
      const rr = tf.rsqrt(tf.add(tf.mean(tf.square(xi), -1, true), eps));
      return [tf.mul(xi, rr), rr];
    });
    save([xhat, r, g]);
    return {
      value: tf.tidy(() => tf.mul(xhat, g)),
      gradFunc: (dy: tf.Tensor, [xh, rs, gs]: tf.Tensor[]) =>
        tf.tidy(() => {
          const gx = tf.mul(dy, gs);
          const dx = tf.mul(tf.sub(gx, tf.mul(xh, tf.mean(tf.mul(gx, xh), -1, true))), rs);
          return [dx, unbroadcast(tf.mul(dy, xh), gs.shape, true)];
        }),
    };
  }) as (x: tf.Tensor, gamma: tf.Tensor) => tf.Tensor;
}

/**
 * `x @ w + b` on the last axis as one tape node: `x` `[..., d_in]`, `w` `[d_in, d_out]`, `b`
 * `[d_out]` → `[..., d_out]`; or, for the members of an ensemble, `x` `[members, ..., d_in]`,
 * `w` `[members, d_in, d_out]`, `b` `[members, 1, d_out]` (batched products, one matrix a member).
 * The forward runs on rows `[n, d_in]` (`[members, n, d_in]`); the backward is
 * `dx = dy @ wᵀ`, `dw = xᵀ @ dy` (with materialised transposes when `explicitTranspose`, else with
 * transpose flags: layers.ts `matMul`) and `db = Σ dy` over rows (`unbroadcast`), the kernels and
 * operands of the op chain's gradient, so its values bit for bit. Saves `x` and `w`. On
 * `wasm-blas` (transpose flags) one native kernel each way with the same products and the same
 * bits (`native-linear.ts`).
 */
export function fusedLinear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, explicitTranspose: boolean): tf.Tensor {
  if (!explicitTranspose && nativeKernelsOn() && [x, w, b].every((t) => t.dtype === 'float32'))
    return nativeLinear(x, w, b);
  return (explicitTranspose ? explicitLinear : flaggedLinear)(x, w, b);
}

function makeLinear(explicitTranspose: boolean) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, b, save] = args as [tf.Tensor, tf.Tensor2D | tf.Tensor3D, tf.Tensor, tf.GradSaveFunc];
    const [dIn, dOut] = w.shape.slice(-2) as [number, number];
    // Rows of one model, or of each member: `[n, d]` or `[members, n, d]`.
    const rows = (d: number): [number, number] => (w.rank === 3 ? [w.shape[0], -1, d] : [-1, d]) as [number, number];
    const swap = w.rank === 3 ? [0, 2, 1] : [1, 0];
    save([x, w]);
    return {
      value: tf.tidy(() =>
        tf.reshape(tf.add(tf.matMul(tf.reshape(x, rows(dIn)) as tf.Tensor2D, w as tf.Tensor2D), b), [
          ...x.shape.slice(0, -1),
          dOut,
        ]),
      ),
      gradFunc: (dy: tf.Tensor, [xs, ws]: tf.Tensor[]) =>
        tf.tidy(() => {
          const g = tf.reshape(dy, rows(dOut)) as tf.Tensor2D;
          const xf = tf.reshape(xs, rows(dIn)) as tf.Tensor2D;
          const w2 = ws as tf.Tensor2D;
          const [dx, dw] = explicitTranspose
            ? [tf.matMul(g, tf.transpose(w2, swap)), tf.matMul(tf.transpose(xf, swap), g)]
            : [tf.matMul(g, w2, false, true), tf.matMul(xf, g, true, false)];
          return [tf.reshape(dx, xs.shape), dw, unbroadcast(g, b.shape, true)];
        }),
    };
  }) as (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor;
}

/**
 * `x + p` for a parameter `p` broadcast over `x` (GPT-2's position embedding): `p` `[..., d]`
 * against `x` `[..., d]`, or per member, `p` `[members, 1, ..., d]` against `x` `[members, ...]`.
 * Its gradient for `p` sums `dy` per member as one batched product (`unbroadcast` with
 * `perMember`), as the plain `Add`'s does for one model.
 */
export const addBroadcast = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, p] = args as [tf.Tensor, tf.Tensor];
  return {
    value: tf.add(x, p),
    gradFunc: (dy: tf.Tensor) => [dy, unbroadcast(dy, p.shape, true)],
  };
}) as (x: tf.Tensor, p: tf.Tensor) => tf.Tensor;

const explicitLinear = makeLinear(true);
const flaggedLinear = makeLinear(false);

// One custom-gradient function per epsilon (a constant of each architecture), made once.
const layerNorms = new Map<number, ReturnType<typeof makeLayerNorm>>();
const rmsNorms = new Map<number, ReturnType<typeof makeRmsNorm>>();

function cached<F>(cache: Map<number, F>, eps: number, make: (eps: number) => F): F {
  let f = cache.get(eps);
  if (!f) cache.set(eps, (f = make(eps)));
  return f;
}

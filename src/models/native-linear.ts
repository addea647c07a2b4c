/**
 * The affine map `x @ w + b` as one native kernel forward and one backward on `wasm-blas`
 * (`native-kernels.ts`), for `fused.ts`' `fusedLinear` when products take transpose flags.
 *
 * The op chain it replaces (`fusedLinear`'s TF.js form: reshape to rows, `BatchMatMul`, broadcast
 * `Add`, reshape back; backward three reshapes, two products and the bias's product with a row of
 * ones, `unbroadcast`) runs six kernels forward and about eight backward, each dispatched from
 * JavaScript with its tape bookkeeping. Here the same BLAS calls run on the same operands from
 * inside one kernel each way, and the bias is added by native/src/linear.cc `biasAdd`, the same
 * `fl(acc + b)` per element as wasm's `Add`: the values are the op chain's bit for bit
 * (test/model-native-linear.test.ts).
 *
 * - forward: `y = x @ w + b`, or `y = r + (x @ w + b)` with a residual `r` (`residualLinear` of
 *   layers.ts: the residual connection's `Add` folded in, the same `fl(fl(acc + b) + r)`);
 * - backward: `dx = dy @ wᵀ`, `dw = xᵀ @ dy` (transpose flags), `db = 1ᵀ dy` (a product with a
 *   row of ones, as `unbroadcast` computes it, one per member), `dr = dy`.
 *
 * Shapes: `x` `[..., d_in]`, `w` `[d_in, d_out]`, `b` `[d_out]` (one model), or `x`
 * `[members, ..., d_in]`, `w` `[members, d_in, d_out]`, `b` `[members, 1, d_out]` (an ensemble:
 * member m's rows use its matrix and bias) → `y` `[..., d_out]`. Saves `x` and `w` (a tape node
 * of the kernel's registered gradient, no `customGrad` wrapper).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BlasAddon } from './native-blas.js';
import { defineNativeKernel, runNative, sizeOf } from './native-kernels.js';

/** The addon functions the affine map uses: native-blas.ts' `matMul` and linear.cc's helpers. */
type LinearAddon = Pick<BlasAddon, 'matMul'> & {
  biasAdd(y: Float32Array, bias: Float32Array, groups: number, rows: number, d: number): void;
  addTo(y: Float32Array, r: Float32Array, n: number): void;
};

/**
 * `[members, rows, d_in, d_out]` of an affine map: `members` 1 for an unstacked `w`, else its
 * leading axis; `rows` of `x` per member. `w` is `[.., d_in, d_out]`, or `[.., d_out, d_in]`
 * when `transposed`; `b` is null without a bias.
 * @throws Error when `x`, `w` and `b` do not fit.
 */
function linearShape(x: number[], w: number[], b: number[] | null, transposed: boolean) {
  const [dIn, dOut] = transposed ? w.slice(-2).reverse() : w.slice(-2);
  const members = w.length === 3 ? w[0] : 1;
  const fits =
    (w.length === 2 || (w.length === 3 && x[0] === members)) &&
    x[x.length - 1] === dIn &&
    (b === null || (b[b.length - 1] === dOut && sizeOf(b) === members * dOut));
  if (!fits)
    throw new Error(`linear: x ${JSON.stringify(x)}, w ${JSON.stringify(w)} and b ${JSON.stringify(b)} do not fit`);
  return [members, sizeOf(x) / (members * dIn), dIn, dOut] as const;
}

/** The kernels' attributes: the bias's shape (null without one) and whether `w` is `[d_out, d_in]`. */
interface LinearAttrs {
  biasShape: number[] | null;
  transposed: boolean;
}

/** `GrokpipeLinear`: x, w[, b][, residual of the output's shape] → `[..., d_out]`. */
const LINEAR = defineNativeKernel<LinearAddon>(
  'Linear',
  ['matMul', 'biasAdd', 'addTo'],
  ({ inputs, attrs, addon, out, view }) => {
    const { x, w, b, residual } = inputs as Record<string, TensorInfo | undefined> as Record<string, TensorInfo>;
    const { transposed } = attrs as unknown as LinearAttrs;
    const [members, rows, dIn, dOut] = linearShape(x.shape, w.shape, b ? b.shape : null, transposed);
    const shape = [...x.shape.slice(0, -1), dOut];
    if (residual && JSON.stringify(residual.shape) !== JSON.stringify(shape))
      throw new Error(
        `linear: residual ${JSON.stringify(residual.shape)} is not of the output's shape ${JSON.stringify(shape)}`,
      );
    const y = out(shape);
    if (members * rows * dOut === 0) return y;
    const yv = view(y);
    addon.matMul(view(x), view(w), yv, members, members, members, rows, dOut, dIn, false, transposed);
    if (b) addon.biasAdd(yv, view(b), members, rows, dOut);
    if (residual) addon.addTo(yv, view(residual), yv.length);
    return y;
  },
);

/** Rows of ones `[n]` for the bias gradient's product, one per length, reused. */
const onesRows = new Map<number, Float32Array>();
function ones(n: number): Float32Array {
  let row = onesRows.get(n);
  if (!row) onesRows.set(n, (row = new Float32Array(n).fill(1)));
  return row;
}

/** `GrokpipeLinearGrad`: dy, x, w (attrs `LinearAttrs`) → dx, dw[, db]. */
const LINEAR_GRAD = defineNativeKernel<LinearAddon>('LinearGrad', ['matMul'], ({ inputs, attrs, addon, out, view }) => {
  const { dy, x, w } = inputs as Record<string, TensorInfo>;
  const { biasShape, transposed } = attrs as unknown as LinearAttrs;
  const [members, rows, dIn, dOut] = linearShape(x.shape, w.shape, biasShape, transposed);
  const grads = [out(x.shape), out(w.shape), ...(biasShape ? [out(biasShape)] : [])];
  const [dx, dw, db] = grads.map(view);
  if (members * rows === 0) {
    dw.fill(0);
    db?.fill(0);
    return grads;
  }
  const [g, xv, wv] = [view(dy), view(x), view(w)];
  const M = members;
  addon.matMul(g, wv, dx, M, M, M, rows, dIn, dOut, false, !transposed);
  if (transposed) addon.matMul(g, xv, dw, M, M, M, dOut, dIn, rows, true, false);
  else addon.matMul(xv, g, dw, M, M, M, dIn, dOut, rows, true, false);
  if (db) addon.matMul(ones(rows), g, db, M, 1, M, 1, dOut, rows, false, false);
  return grads;
});

tf.registerGradient({
  kernelName: LINEAR,
  inputsToSave: ['x', 'w'],
  gradFunc: (dy, [x, w], attrs) => {
    const [dx, dw, db] = runNative<tf.Tensor[]>(LINEAR_GRAD, { dy: dy as tf.Tensor, x, w }, attrs);
    // The residual's gradient is `dy` itself (as the `Add` it replaces passes it on).
    return { x: () => dx, w: () => dw, b: () => db, residual: () => tf.clone(dy as tf.Tensor) };
  },
});

/**
 * `x @ w + b` on the last axis, natively, as one tape node (see the file's docstring for shapes);
 * with a `residual`, `residual + (x @ w + b)` (a residual connection: the same bits as the `Add`
 * after the affine map).
 * @param b the bias; optional. @param residual `[..., d_out]`, the output's shape; optional
 * @param transposed `w` is `[d_out, d_in]` (`[members, d_out, d_in]`), PyTorch's `nn.Linear` layout
 *   (layers.ts `linearT`): `x @ wᵀ`, with `dw = dyᵀ @ x`
 * @returns `[..., d_out]`
 * @throws Error when the shapes do not fit.
 */
export function nativeLinear(
  x: tf.Tensor,
  w: tf.Tensor,
  b?: tf.Tensor,
  residual?: tf.Tensor,
  transposed = false,
): tf.Tensor {
  const inputs: Record<string, tf.Tensor> = { x, w };
  if (b) inputs.b = b;
  if (residual) inputs.residual = residual;
  const attrs: LinearAttrs = { biasShape: b ? b.shape : null, transposed };
  return runNative<tf.Tensor>(LINEAR, inputs, attrs as unknown as tf.NamedAttrMap);
}

/**
 * GELU, SiLU and SwiGLU's gate as one native kernel forward and one backward each
 * (`native-kernels.ts`; native/src/kernels.cc `gelu`, `silu`, `swiglu`), for `fused.ts` and
 * `layers.ts` on `wasm-blas`. Elementwise on any shape; each saves its inputs only and recomputes
 * σ in the backward.
 *
 * - GELU, tanh approximation (Hendrycks & Gimpel 2016, §2), as `x σ(u)` with
 *   `u = 2 sqrt(2/π)(x + 0.044715 x³)`; derivative `σ(u) + x σ(u)(1 − σ(u)) · 2 sqrt(2/π)(1 + 3 · 0.044715 x²)`.
 * - SiLU (Elfwing et al. 2018): `x σ(x)`; derivative `σ(x)(1 + x(1 − σ(x)))`.
 * - SwiGLU's gate (Shazeer 2020), LLaMA's MLP: `silu(g) u`; `du = dy silu(g)`,
 *   `dg = dy u σ(g)(1 + g(1 − σ(g)))`.
 *
 * σ uses the addon's float32 exp (fmath.h, Cephes' polynomial, relative error ≤ 2.5e-7).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelsAddon } from './native-kernels.js';
import { defineNativeKernel, runNative, sizeOf } from './native-kernels.js';

type Forward = 'gelu' | 'silu';

/** The forward kernel `Grokpipe<Name>` (x → y) and its gradient `Grokpipe<Name>Grad` (x, dy → dx). */
function defineActivation(name: string, forward: Forward, backward: `${Forward}Grad`): [string, string] {
  const fwd = defineNativeKernel(name, [forward], ({ inputs, addon, out, view }) => {
    const x = inputs.x as TensorInfo;
    const y = out(x.shape);
    addon[forward](view(x), view(y), sizeOf(x.shape));
    return y;
  });
  const bwd = defineNativeKernel(`${name}Grad`, [backward], ({ inputs, addon, out, view }) => {
    const { x, dy } = inputs as Record<string, TensorInfo>;
    const dx = out(x.shape);
    (addon[backward] as KernelsAddon['geluGrad'])(view(x), view(dy), view(dx), sizeOf(x.shape));
    return dx;
  });
  return [fwd, bwd];
}

/** An activation as one tape node: forward kernel, save `x`, backward kernel. */
function activation([fwd, bwd]: [string, string]): (x: tf.Tensor) => tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([x]);
    return {
      value: runNative<tf.Tensor>(fwd, { x }),
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => runNative<tf.Tensor>(bwd, { x: xs, dy }),
    };
  }) as (x: tf.Tensor) => tf.Tensor;
}

/** GELU (tanh approximation), natively; elementwise, float32 `[...]` → `[...]`. */
export const nativeGelu = activation(defineActivation('Gelu', 'gelu', 'geluGrad'));

/** SiLU, natively; elementwise, float32 `[...]` → `[...]`. */
export const nativeSilu = activation(defineActivation('Silu', 'silu', 'siluGrad'));

/** `GrokpipeSwiglu`: gate, up → `silu(gate) · up`. */
const SWIGLU = defineNativeKernel('Swiglu', ['swiglu'], ({ inputs, addon, out, view }) => {
  const { gate, up } = inputs as Record<string, TensorInfo>;
  const y = out(gate.shape);
  addon.swiglu(view(gate), view(up), view(y), sizeOf(gate.shape));
  return y;
});

/** `GrokpipeSwigluGrad`: gate, up, dy → dgate, dup. */
const SWIGLU_GRAD = defineNativeKernel('SwigluGrad', ['swigluGrad'], ({ inputs, addon, out, view }) => {
  const { gate, up, dy } = inputs as Record<string, TensorInfo>;
  const [dg, du] = [out(gate.shape), out(gate.shape)];
  addon.swigluGrad(view(gate), view(up), view(dy), view(dg), view(du), sizeOf(gate.shape));
  return [dg, du];
});

/**
 * SwiGLU's gate `silu(gate) ⊙ up`, natively, as one tape node; saves `gate` and `up`.
 * @param gate float32 `[...]`; @param up the same shape. @returns `[...]`
 */
export const nativeSwiglu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [gate, up, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  if (!tf.util.arraysEqual(gate.shape, up.shape))
    throw new Error(`swiglu: gate ${JSON.stringify(gate.shape)} and up ${JSON.stringify(up.shape)} differ`);
  save([gate, up]);
  return {
    value: runNative<tf.Tensor>(SWIGLU, { gate, up }),
    gradFunc: (dy: tf.Tensor, [g, u]: tf.Tensor[]) => runNative<tf.Tensor[]>(SWIGLU_GRAD, { gate: g, up: u, dy }),
  };
}) as (gate: tf.Tensor, up: tf.Tensor) => tf.Tensor;

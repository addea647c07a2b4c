/**
 * Grokfast (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow Gradients",
 * arXiv 2405.20233, Algorithm 2, `gradfilter_ema` of the authors' reference implementation): an
 * exponential moving average of the gradients, the slow component, added back to each gradient
 * with gain λ. For update t = 1, 2, ... and each parameter's gradient g:
 *
 *     ema = g                          (t = 1: the average starts at the first gradient)
 *     ema = α · ema + (1 − α) · g
 *     g   = g + λ · ema
 *
 * applied after the backward pass and before clipping and the optimizer step (as the reference
 * does, between `loss.backward()` and `optimizer.step()`). Defaults α 0.98, λ 2.0 (the paper's).
 *
 * On `wasm-blas`, with α and λ numbers, the step is one native kernel (`native-grad-filter.ts`),
 * the same float32 operations in the same order.
 *
 * `emaFilter` is the step as tensors in, tensors out, so that a batched ensemble can use it with
 * per-member α and λ (tensors broadcast against its gradients); `EmaGradFilter` holds the averages
 * of one model's parameters as variables, for the trainer and its checkpoints.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeEmaFilter, nativeGradFilterApplies } from './native-grad-filter.js';

/** The train stage's `optimizer.grad_filter` (schemas/stages/train.schema.json). */
export interface GradFilterConfig {
  /** `ema`: Grokfast-EMA, the only kind. */
  kind: 'ema';
  /** Momentum α of the moving average, in [0, 1). */
  alpha: number;
  /** Gain λ ≥ 0 of the slow component; 0 leaves the gradient as it is. */
  lambda: number;
}

/** A scalar hyperparameter, or a tensor that broadcasts against every gradient (an ensemble's `[members, 1, ...]`). */
export type FilterScalar = number | tf.Tensor;

/** What one filter step returns; the caller owns (and disposes) every tensor. */
export interface EmaFiltered {
  /** The filtered gradients `g + λ · ema`, in the order and shapes of the input. */
  grads: tf.Tensor[];
  /** The updated averages `α · ema + (1 − α) · g`, likewise. */
  ema: tf.Tensor[];
}

/**
 * One Grokfast-EMA step over a list of gradients.
 * @param grads the step's gradients, any shapes.
 * @param ema the averages after the previous step, shaped as `grads`; null at the first step
 *   (the average then starts at the gradient itself, as the reference implementation's).
 * @param alpha momentum α; @param lambda gain λ (numbers, or tensors broadcastable to each gradient).
 * @throws Error when `ema` and `grads` differ in length or shape.
 */
export function emaFilter(
  grads: readonly tf.Tensor[],
  ema: readonly tf.Tensor[] | null,
  alpha: FilterScalar,
  lambda: FilterScalar,
): EmaFiltered {
  if (ema && ema.length !== grads.length)
    throw new Error(`emaFilter: ${ema.length} averages for ${grads.length} gradients`);
  grads.forEach((g, i) => {
    const prev = ema ? ema[i] : g;
    if (prev.shape.join() !== g.shape.join())
      throw new Error(
        `emaFilter: average ${i} is ${JSON.stringify(prev.shape)}, its gradient ${JSON.stringify(g.shape)}`,
      );
  });
  if (typeof alpha === 'number' && typeof lambda === 'number' && nativeGradFilterApplies([...grads, ...(ema ?? [])]))
    return nativeEmaFilter(grads, ema, alpha, lambda);
  const [filtered, averages] = tf.tidy(() => {
    const a = typeof alpha === 'number' ? tf.scalar(alpha) : alpha;
    const l = typeof lambda === 'number' ? tf.scalar(lambda) : lambda;
    // 1 − α of a number in float64, then rounded once, as the reference's Python float `1 - alpha`.
    const oneMinusA = typeof alpha === 'number' ? tf.scalar(1 - alpha) : tf.sub(tf.scalar(1), alpha);
    const gs: tf.Tensor[] = [];
    const es: tf.Tensor[] = [];
    grads.forEach((g, i) => {
      const prev = ema ? ema[i] : g;
      const next = tf.add(tf.mul(prev, a), tf.mul(g, oneMinusA));
      es.push(next);
      gs.push(tf.add(g, tf.mul(next, l)));
    });
    return [gs, es];
  });
  return { grads: filtered, ema: averages };
}

/**
 * The Grokfast-EMA filter of one model: the average of each parameter's gradient as a variable
 * (`ema`, zeros until the first step), so that a checkpoint can save and restore it.
 */
export class EmaGradFilter {
  /** Each parameter's gradient average, by parameter name, shaped like the parameter. */
  readonly ema: ReadonlyMap<string, tf.Variable>;
  /** Steps filtered so far; the first step starts the averages at the gradients. Set it on resume. */
  steps = 0;

  /** @param params the parameters by name (only their names and shapes are used). */
  constructor(
    params: ReadonlyMap<string, tf.Variable>,
    readonly config: GradFilterConfig,
  ) {
    // Inside tidy: a variable keeps its initial value's buffer; the tidy frees the value tensor.
    this.ema = new Map([...params].map(([name, p]) => [name, tf.tidy(() => tf.variable(tf.zerosLike(p), false))]));
  }

  /**
   * Filters one step's gradients and updates the averages. Call inside `tf.tidy`: the returned
   * gradients are the tidy's.
   * @param grads gradients by parameter name. @returns the filtered gradients, same keys.
   * @throws Error when a parameter has no gradient.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>): Map<string, tf.Tensor> {
    const names = [...this.ema.keys()];
    const gs = names.map((n) => {
      const g = grads.get(n);
      if (!g) throw new Error(`grad filter: no gradient for ${n}`);
      return g;
    });
    const prev = this.steps === 0 ? null : names.map((n) => this.ema.get(n) as tf.Variable);
    const out = emaFilter(gs, prev, this.config.alpha, this.config.lambda);
    names.forEach((n, i) => (this.ema.get(n) as tf.Variable).assign(out.ema[i]));
    tf.dispose(out.ema); // assign() keeps the buffer; the tensor objects are ours to free
    this.steps++;
    return new Map(names.map((n, i) => [n, out.grads[i]]));
  }

  /** Frees the averages. */
  dispose(): void {
    tf.dispose([...this.ema.values()]);
  }
}

/**
 * The filter a config asks for, or undefined for none. λ = 0 needs none: `g + 0 · ema` is `g`,
 * so the filter is skipped (the same weights as without it, bit for bit, and no extra work).
 */
export function createGradFilter(
  params: ReadonlyMap<string, tf.Variable>,
  config: GradFilterConfig | undefined,
): EmaGradFilter | undefined {
  if (!config || config.lambda === 0) return undefined;
  return new EmaGradFilter(params, config);
}

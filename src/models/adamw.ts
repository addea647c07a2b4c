/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2) with a
 * linear-warmup-then-constant learning rate and global-norm gradient clipping, in TF.js ops.
 *
 * The update is PyTorch's `torch.optim.AdamW` (the reference implementation's optimizer), for
 * update number t = 1, 2, ...:
 *
 *     lr_t = lr · min(1, t / warmup_steps)                       (warmup; constant afterwards)
 *     g    = g · min(1, grad_clip / (‖g‖₂ + 1e-6))               (global norm over all params)
 *     θ    = θ · (1 − lr_t · λ)                                  (decoupled decay, decayed params only)
 *     m    = β₁ m + (1 − β₁) g,   v = β₂ v + (1 − β₂) g²
 *     θ    = θ − (lr_t / (1 − β₁ᵗ)) · m / (sqrt(v) / sqrt(1 − β₂ᵗ) + ε)
 *
 * Which parameters decay is the model's choice (`LanguageModel.decays`): for GPT-2, as nanoGPT,
 * every weight matrix and embedding, no bias or LayerNorm parameter.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Optimizer hyperparameters (the `optimizer` params of the train stage, minus `batch_size` and `micro_batch_size`). */
export interface AdamWConfig {
  /** Peak learning rate, reached after warmup. */
  lr: number;
  /** Decoupled weight decay λ (per unit of learning rate, as PyTorch). */
  weight_decay: number;
  /** First-moment decay β₁. */
  beta1: number;
  /** Second-moment decay β₂. */
  beta2: number;
  /** Denominator ε. */
  eps: number;
  /** Updates over which lr rises linearly from lr/warmup_steps to lr; 0 for none. */
  warmup_steps: number;
  /** Maximum global L2 norm of the gradient; 0 disables clipping. */
  grad_clip: number;
}

/** Learning rate of update number `t` (1-based): `lr · min(1, t / warmup_steps)`. */
export function learningRate(config: AdamWConfig, t: number): number {
  return config.warmup_steps > 0 ? config.lr * Math.min(1, t / config.warmup_steps) : config.lr;
}

/**
 * Global L2 norm of a set of tensors, `sqrt(Σ_p Σ_i p_i²)`, as a scalar tensor.
 */
export function globalNorm(tensors: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(tensors.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

/** AdamW over a fixed set of named parameters. Holds its moment estimates as variables. */
export class AdamW {
  /** Updates applied so far (t of the last update; 0 before the first). */
  step = 0;
  /** First moments by parameter name, shaped like the parameters. */
  readonly m = new Map<string, tf.Variable>();
  /** Second moments by parameter name. */
  readonly v = new Map<string, tf.Variable>();

  /**
   * @param params parameters by name (updated in place by `apply`).
   * @param decays whether a parameter gets weight decay.
   */
  constructor(
    readonly params: ReadonlyMap<string, tf.Variable>,
    readonly config: AdamWConfig,
    readonly decays: (name: string) => boolean,
  ) {
    // Inside tidy: a variable keeps its initial value's buffer; the tidy frees the value tensor.
    tf.tidy(() => {
      for (const [name, p] of params) {
        this.m.set(name, tf.variable(tf.zerosLike(p), false));
        this.v.set(name, tf.variable(tf.zerosLike(p), false));
      }
    });
  }

  /**
   * Applies one update (t = step + 1) from gradients keyed by parameter name.
   * @returns the global gradient norm before clipping, a scalar the caller disposes.
   * @throws Error when a parameter has no gradient.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>): tf.Scalar {
    const t = this.step + 1;
    const { beta1, beta2, eps, weight_decay: wd, grad_clip: clip } = this.config;
    const lr = learningRate(this.config, t);
    const norm = tf.tidy(() => {
      const names = [...this.params.keys()];
      const gs = names.map((n) => {
        const g = grads.get(n);
        if (!g) throw new Error(`AdamW: no gradient for ${n}`);
        return g;
      });
      const total = globalNorm(gs);
      // Scalars made once per step: a JS number operand would upload a new scalar per op.
      const c = (x: number) => tf.scalar(x);
      const coef = clip > 0 ? tf.minimum(tf.div(c(clip), tf.add(total, c(1e-6))), c(1)) : null;
      const [b1, b1c, b2, b2c, eps_] = [beta1, 1 - beta1, beta2, 1 - beta2, eps].map(c);
      const decay = c(1 - lr * wd);
      const invBc2Sqrt = c(1 / Math.sqrt(1 - beta2 ** t));
      const stepSize = c(lr / (1 - beta1 ** t));
      // One tidy a parameter: its temporaries are freed before the next one's are made, so the
      // update needs a few parameter-sized buffers at a time, not ten copies of the whole model.
      names.forEach((n, i) =>
        tf.tidy(() => {
          const p = this.params.get(n) as tf.Variable;
          const m = this.m.get(n) as tf.Variable;
          const v = this.v.get(n) as tf.Variable;
          const g = coef ? tf.mul(gs[i], coef) : gs[i];
          const mNew = tf.add(tf.mul(m, b1), tf.mul(g, b1c));
          const vNew = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), b2c));
          const decayed = wd > 0 && this.decays(n) ? tf.mul(p, decay) : p;
          const denom = tf.add(tf.mul(tf.sqrt(vNew), invBc2Sqrt), eps_);
          p.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), stepSize)));
          m.assign(mNew);
          v.assign(vNew);
        }),
      );
      return total;
    });
    this.step = t;
    return norm;
  }

  /** Frees the moment variables (not the parameters). */
  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

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
 *
 * The update is elementwise, so it runs on flat chunks: consecutive parameters are packed into one
 * flat tensor of up to `chunkElements` values (one concatenation), updated by one op chain, and
 * split back, and their moments are stored flat. A small model is then one chunk, some 150
 * kernels an update instead of some 460 (one chain per parameter); a parameter larger than a chunk
 * is updated alone, so the update's temporaries stay a few chunk-sized buffers however large the
 * model. Each element goes through the same float32 operations in the same order as in a
 * per-parameter update, so the values are the same bit for bit (test/model-optimised.test.ts).
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

/** A run of consecutive parameters updated as one flat tensor, with its moments stored flat. */
interface Chunk {
  /** Parameter names, in the parameters' order. */
  names: string[];
  /** Offset and length of each parameter in the flat chunk, in elements. */
  offsets: number[];
  sizes: number[];
  /** Which parameters decay: all, none, or a bool mask `[size]`. */
  decay: 'all' | 'none' | tf.Tensor1D;
  /** First and second moments: `[size]` flat, or the parameter's shape when it is alone. */
  m: tf.Variable;
  v: tf.Variable;
}

/** The per-update scalars, made once an update (a JS number operand would upload a scalar per op). */
interface UpdateScalars {
  coef: tf.Scalar | null;
  b1: tf.Scalar;
  b1c: tf.Scalar;
  b2: tf.Scalar;
  b2c: tf.Scalar;
  eps: tf.Scalar;
  decay: tf.Scalar | null;
  invBc2Sqrt: tf.Scalar;
  stepSize: tf.Scalar;
}

/** Elements of a chunk by default: 4 MB of float32, so a 2 × 128 GPT-2 is one chunk. */
export const CHUNK_ELEMENTS = 1 << 20;

/**
 * Packs parameter sizes greedily, in order, into runs of at most `limit` elements; a parameter
 * larger than `limit` is a run of its own. @returns the index ranges `[start, end)`.
 */
export function packChunks(sizes: readonly number[], limit: number): [number, number][] {
  const runs: [number, number][] = [];
  let start = 0;
  let total = 0;
  sizes.forEach((size, i) => {
    if (i > start && total + size > limit) {
      runs.push([start, i]);
      [start, total] = [i, 0];
    }
    total += size;
  });
  if (sizes.length > start) runs.push([start, sizes.length]);
  return runs;
}

/** AdamW over a fixed set of named parameters. Holds its moment estimates as variables. */
export class AdamW {
  /** Updates applied so far (t of the last update; 0 before the first). */
  step = 0;
  private readonly chunks: Chunk[] = [];
  /** Each parameter's chunk and index in it. */
  private readonly where = new Map<string, [Chunk, number]>();

  /**
   * @param params parameters by name (updated in place by `apply`).
   * @param decays whether a parameter gets weight decay.
   * @param chunkElements elements of a flat chunk (`CHUNK_ELEMENTS`; any size gives the same values).
   */
  constructor(
    readonly params: ReadonlyMap<string, tf.Variable>,
    readonly config: AdamWConfig,
    readonly decays: (name: string) => boolean,
    chunkElements = CHUNK_ELEMENTS,
  ) {
    const entries = [...params];
    // Inside tidy: a variable keeps its initial value's buffer; the tidy frees the value tensor.
    tf.tidy(() => {
      for (const [start, end] of packChunks(
        entries.map(([, p]) => p.size),
        chunkElements,
      )) {
        const run = entries.slice(start, end);
        const sizes = run.map(([, p]) => p.size);
        const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
        const total = offsets[offsets.length - 1] + sizes[sizes.length - 1];
        const zeros = () => tf.variable(run.length === 1 ? tf.zerosLike(run[0][1]) : tf.zeros([total]), false);
        const chunk: Chunk = {
          names: run.map(([n]) => n),
          offsets,
          sizes,
          decay: decayMask(run, sizes, decays),
          m: zeros(),
          v: zeros(),
        };
        if (chunk.decay instanceof tf.Tensor) tf.keep(chunk.decay);
        this.chunks.push(chunk);
        chunk.names.forEach((n, i) => this.where.set(n, [chunk, i]));
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
      const gs = [...this.params.keys()].map((n) => {
        const g = grads.get(n);
        if (!g) throw new Error(`AdamW: no gradient for ${n}`);
        return g;
      });
      const total = globalNorm(gs);
      const c = (x: number) => tf.scalar(x);
      const [b1, b1c, b2, b2c, eps_] = [beta1, 1 - beta1, beta2, 1 - beta2, eps].map(c);
      const s: UpdateScalars = {
        coef: clip > 0 ? (tf.minimum(tf.div(c(clip), tf.add(total, c(1e-6))), c(1)) as tf.Scalar) : null,
        ...{ b1, b1c, b2, b2c, eps: eps_ },
        decay: wd > 0 ? c(1 - lr * wd) : null,
        invBc2Sqrt: c(1 / Math.sqrt(1 - beta2 ** t)),
        stepSize: c(lr / (1 - beta1 ** t)),
      };
      // One tidy a chunk: its temporaries are freed before the next one's are made, so the update
      // needs a few chunk-sized buffers at a time, not ten copies of the whole model.
      for (const chunk of this.chunks)
        tf.tidy(() =>
          this.update(
            chunk,
            chunk.names.map((n) => grads.get(n) as tf.Tensor),
            s,
          ),
        );
      return total;
    });
    this.step = t;
    return norm;
  }

  /** The update of one chunk: `g` are its parameters' gradients, in its order. */
  private update(chunk: Chunk, g: tf.Tensor[], s: UpdateScalars): void {
    const params = chunk.names.map((n) => this.params.get(n) as tf.Variable);
    const flat = (xs: tf.Tensor[]) => (xs.length === 1 ? xs[0] : tf.concat(xs.map((x) => tf.reshape(x, [-1]))));
    const p = flat(params);
    const gc = s.coef ? tf.mul(flat(g), s.coef) : flat(g);
    const mNew = tf.add(tf.mul(chunk.m, s.b1), tf.mul(gc, s.b1c));
    const vNew = tf.add(tf.mul(chunk.v, s.b2), tf.mul(tf.square(gc), s.b2c));
    let decayed = p;
    if (s.decay && chunk.decay === 'all') decayed = tf.mul(p, s.decay);
    else if (s.decay && chunk.decay instanceof tf.Tensor) decayed = tf.where(chunk.decay, tf.mul(p, s.decay), p);
    const denom = tf.add(tf.mul(tf.sqrt(vNew), s.invBc2Sqrt), s.eps);
    const pNew = tf.sub(decayed, tf.mul(tf.div(mNew, denom), s.stepSize));
    if (params.length === 1) params[0].assign(pNew);
    else {
      // Split on the host: wasm's Slice (and SplitV, made of it) copies its whole input each time.
      const values = pNew.dataSync() as Float32Array;
      params.forEach((q, i) => {
        const at = chunk.offsets[i];
        q.assign(tf.tensor(values.slice(at, at + chunk.sizes[i]), q.shape, 'float32'));
      });
    }
    chunk.m.assign(mNew);
    chunk.v.assign(vNew);
  }

  /**
   * Parameter `name`'s first (`m`) or second (`v`) moment, a copy shaped like the parameter
   * (row-major), for checkpoints.
   * @throws Error for an unknown parameter.
   */
  async readMoment(which: 'm' | 'v', name: string): Promise<Float32Array> {
    const [chunk, i] = this.locate(name);
    const all = (await chunk[which].data()) as Float32Array;
    return all.slice(chunk.offsets[i], chunk.offsets[i] + chunk.sizes[i]);
  }

  /**
   * Sets parameter `name`'s moment `which` to `values` (row-major, the parameter's size).
   * @throws Error for an unknown parameter or a wrong size.
   */
  writeMoment(which: 'm' | 'v', name: string, values: Float32Array): void {
    const [chunk, i] = this.locate(name);
    if (values.length !== chunk.sizes[i]) throw new Error(`AdamW: ${values.length} values for ${name}'s ${which}`);
    const variable = chunk[which];
    const all = (variable.dataSync() as Float32Array).slice();
    all.set(values, chunk.offsets[i]);
    tf.tidy(() => variable.assign(tf.tensor(all, variable.shape, 'float32')));
  }

  private locate(name: string): [Chunk, number] {
    const at = this.where.get(name);
    if (!at) throw new Error(`AdamW: no parameter ${name}`);
    return at;
  }

  /** Frees the moment variables and masks (not the parameters). */
  dispose(): void {
    for (const c of this.chunks) tf.dispose([c.m, c.v, ...(c.decay instanceof tf.Tensor ? [c.decay] : [])]);
  }
}

/** A chunk's decay rule: 'all', 'none', or a bool mask `[Σ sizes]` when its parameters differ. */
function decayMask(run: [string, tf.Variable][], sizes: number[], decays: (name: string) => boolean): Chunk['decay'] {
  const flags = run.map(([n]) => decays(n));
  if (flags.every((f) => f)) return 'all';
  if (!flags.some((f) => f)) return 'none';
  const mask = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  let at = 0;
  flags.forEach((f, i) => {
    if (f) mask.fill(1, at, at + sizes[i]);
    at += sizes[i];
  });
  return tf.tensor1d(mask, 'bool');
}

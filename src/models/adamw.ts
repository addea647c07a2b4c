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
 *
 * An ensemble (`members.ts`: parameters stacked `[members, ...]`) is updated by one AdamW with a
 * learning rate and weight decay per member (`[members, 1]` scalars against chunks
 * `[members, size]`), and the global norm and clipping per member: each member's update is the one
 * it would get alone, element by element.
 *
 * On `wasm-blas` the update runs on two native kernels instead (`native-adamw.ts`: the norms in one
 * call, each chunk in one), with the same float32 operations in the same order: the same values
 * bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeAdamWApplies, nativeAdamWUpdate, nativeGradNorm } from './native-adamw.js';
import type { NativeAdamWScalars } from './native-adamw.js';

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
  /** Which parameters decay: all, none, or a bool mask `[size]` (`[members, size]` for an ensemble). */
  decay: 'all' | 'none' | tf.Tensor;
  /** First and second moments: `[size]` flat (`[members, size]`), or the parameter's shape when it is alone. */
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * The per-update scalars, made once an update (a JS number operand would upload a scalar per op);
 * for an ensemble `coef`, `decay` and `stepSize` are `[members, 1]`, one per member.
 */
interface UpdateScalars {
  coef: tf.Tensor | null;
  b1: tf.Scalar;
  b1c: tf.Scalar;
  b2: tf.Scalar;
  b2c: tf.Scalar;
  eps: tf.Scalar;
  decay: tf.Tensor | null;
  invBc2Sqrt: tf.Scalar;
  stepSize: tf.Tensor;
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
  /** Members of an ensemble (parameters stacked `[members, ...]`); 1 for one model. */
  readonly members: number;
  private readonly configs: readonly AdamWConfig[];
  private readonly stacked: boolean;
  private readonly chunks: Chunk[] = [];
  /** Each parameter's chunk and index in it. */
  private readonly where = new Map<string, [Chunk, number]>();

  /**
   * @param params parameters by name (updated in place by `apply`).
   * @param config the hyperparameters; for an ensemble one per member (parameters stacked
   *   `[members, ...]`), equal but for `lr` and `weight_decay`.
   * @param decays whether a parameter gets weight decay.
   * @param chunkElements elements of a flat chunk (`CHUNK_ELEMENTS`; any size gives the same values).
   * @throws Error when an ensemble's configs differ in more than lr and weight decay.
   */
  constructor(
    readonly params: ReadonlyMap<string, tf.Variable>,
    config: AdamWConfig | readonly AdamWConfig[],
    readonly decays: (name: string) => boolean,
    chunkElements = CHUNK_ELEMENTS,
  ) {
    this.stacked = Array.isArray(config);
    this.configs = Array.isArray(config) ? config : [config as AdamWConfig];
    this.members = this.configs.length;
    const shared = (c: AdamWConfig) => [c.beta1, c.beta2, c.eps, c.warmup_steps, c.grad_clip].join();
    if (this.configs.some((c) => shared(c) !== shared(this.configs[0])))
      throw new Error('AdamW: ensemble members may differ in lr and weight_decay only');
    const entries = [...params];
    const per = (p: tf.Variable) => p.size / this.members;
    // Inside tidy: a variable keeps its initial value's buffer; the tidy frees the value tensor.
    tf.tidy(() => {
      for (const [start, end] of packChunks(
        entries.map(([, p]) => per(p)),
        chunkElements,
      )) {
        const run = entries.slice(start, end);
        const sizes = run.map(([, p]) => per(p));
        const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
        const total = offsets[offsets.length - 1] + sizes[sizes.length - 1];
        const flatShape = this.stacked ? [this.members, total] : [total];
        const zeros = () => tf.variable(run.length === 1 ? tf.zerosLike(run[0][1]) : tf.zeros(flatShape), false);
        const chunk: Chunk = {
          names: run.map(([n]) => n),
          offsets,
          sizes,
          decay: decayMask(run, sizes, decays, this.stacked ? this.members : 0),
          m: zeros(),
          v: zeros(),
        };
        if (chunk.decay instanceof tf.Tensor) tf.keep(chunk.decay);
        this.chunks.push(chunk);
        chunk.names.forEach((n, i) => this.where.set(n, [chunk, i]));
      }
    });
  }

  /** The hyperparameters (of member 0 for an ensemble). */
  get config(): AdamWConfig {
    return this.configs[0];
  }

  /**
   * Applies one update (t = step + 1) from gradients keyed by parameter name.
   * @returns the global gradient norm before clipping, a scalar (`[members]` for an ensemble) the caller disposes.
   * @throws Error when a parameter has no gradient.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>): tf.Tensor {
    const t = this.step + 1;
    const gs = [...this.params.keys()].map((n) => {
      const g = grads.get(n);
      if (!g) throw new Error(`AdamW: no gradient for ${n}`);
      return g;
    });
    const norm = nativeAdamWApplies([...gs, ...this.params.values()])
      ? this.applyNative(grads, gs, t)
      : this.applyOps(grads, gs, t);
    this.step = t;
    return norm;
  }

  /** The update as TF.js ops (every backend but `wasm-blas`). @returns the norm, as `apply`. */
  private applyOps(grads: ReadonlyMap<string, tf.Tensor>, gs: tf.Tensor[], t: number): tf.Tensor {
    const { beta1, beta2, eps, grad_clip: clip } = this.configs[0];
    return tf.tidy(() => {
      const total = this.stacked ? membersNorm(gs, this.members) : globalNorm(gs);
      const c = (x: number) => tf.scalar(x);
      // One value per member: a scalar for one model, `[members, 1]` for an ensemble.
      const each = (f: (config: AdamWConfig) => number) =>
        this.stacked ? tf.tensor2d(this.configs.map(f), [this.members, 1]) : c(f(this.configs[0]));
      const [b1, b1c, b2, b2c, eps_] = [beta1, 1 - beta1, beta2, 1 - beta2, eps].map(c);
      const clipOf = this.stacked ? tf.reshape(total, [this.members, 1]) : total;
      const s: UpdateScalars = {
        coef: clip > 0 ? tf.minimum(tf.div(c(clip), tf.add(clipOf, c(1e-6))), c(1)) : null,
        ...{ b1, b1c, b2, b2c, eps: eps_ },
        decay: this.configs.some((k) => k.weight_decay > 0)
          ? each((k) => 1 - learningRate(k, t) * k.weight_decay)
          : null,
        invBc2Sqrt: c(1 / Math.sqrt(1 - beta2 ** t)),
        stepSize: each((k) => learningRate(k, t) / (1 - beta1 ** t)),
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
  }

  /**
   * The update on the native kernels of `wasm-blas` (`native-adamw.ts`): the same formula and
   * float32 operations, one call for the norms and one a chunk. @returns the norm, as `apply`.
   */
  private applyNative(grads: ReadonlyMap<string, tf.Tensor>, gs: tf.Tensor[], t: number): tf.Tensor {
    const { beta1, beta2, eps, grad_clip: clip } = this.configs[0];
    const norm = nativeGradNorm(gs, this.members, this.stacked);
    const scalars: NativeAdamWScalars = {
      ...{ clip, b1: beta1, b1c: 1 - beta1, b2: beta2, b2c: 1 - beta2, eps },
      invBc2Sqrt: 1 / Math.sqrt(1 - beta2 ** t),
      decay: this.configs.map((k) => 1 - learningRate(k, t) * k.weight_decay),
      step: this.configs.map((k) => learningRate(k, t) / (1 - beta1 ** t)),
    };
    for (const chunk of this.chunks) {
      const params = chunk.names.map((n) => this.params.get(n) as tf.Variable);
      const g = chunk.names.map((n) => grads.get(n) as tf.Tensor);
      const decays = chunk.names.map((n) => this.decays(n));
      const out = nativeAdamWUpdate(params, g, { m: chunk.m, v: chunk.v, norm }, decays, this.members, scalars);
      params.forEach((p, i) => p.assign(out.params[i]));
      chunk.m.assign(out.m);
      chunk.v.assign(out.v);
      tf.dispose([...out.params, out.m, out.v]);
    }
    return norm;
  }

  /** The update of one chunk: `g` are its parameters' gradients, in its order. */
  private update(chunk: Chunk, g: tf.Tensor[], s: UpdateScalars): void {
    const params = chunk.names.map((n) => this.params.get(n) as tf.Variable);
    const M = this.members;
    const flat = (xs: tf.Tensor[]) =>
      xs.length === 1
        ? xs[0]
        : tf.concat(
            xs.map((x) => tf.reshape(x, this.stacked ? [M, -1] : [-1])),
            -1,
          );
    const p = flat(params);
    const gc = s.coef ? tf.mul(flat(g), this.perMember(s.coef, p.rank)) : flat(g);
    const mNew = tf.add(tf.mul(chunk.m, s.b1), tf.mul(gc, s.b1c));
    const vNew = tf.add(tf.mul(chunk.v, s.b2), tf.mul(tf.square(gc), s.b2c));
    let decayed = p;
    const decay = s.decay && this.perMember(s.decay, p.rank);
    if (decay && chunk.decay === 'all') decayed = tf.mul(p, decay);
    else if (decay && chunk.decay instanceof tf.Tensor) decayed = tf.where(chunk.decay, tf.mul(p, decay), p);
    const denom = tf.add(tf.mul(tf.sqrt(vNew), s.invBc2Sqrt), s.eps);
    const pNew = tf.sub(decayed, tf.mul(tf.div(mNew, denom), this.perMember(s.stepSize, p.rank)));
    if (params.length === 1) params[0].assign(pNew);
    else {
      // Split on the host: wasm's Slice (and SplitV, made of it) copies its whole input each time.
      const values = pNew.dataSync() as Float32Array;
      const total = values.length / M;
      params.forEach((q, i) => {
        const [at, size] = [chunk.offsets[i], chunk.sizes[i]];
        const out = new Float32Array(size * M);
        for (let m = 0; m < M; m++) out.set(values.subarray(m * total + at, m * total + at + size), m * size);
        q.assign(tf.tensor(out, q.shape, 'float32'));
      });
    }
    chunk.m.assign(mNew);
    chunk.v.assign(vNew);
  }

  /** A per-member `[members, 1]` scalar shaped to broadcast against a tensor of `rank` (a lone stacked parameter). */
  private perMember(x: tf.Tensor, rank: number): tf.Tensor {
    return this.stacked && rank !== 2 ? tf.reshape(x, [this.members, ...new Array<number>(rank - 1).fill(1)]) : x;
  }

  /**
   * Parameter `name`'s first (`m`) or second (`v`) moment, a copy shaped like the parameter
   * (row-major; of one member, `member`, for an ensemble), for checkpoints.
   * @throws Error for an unknown parameter.
   */
  async readMoment(which: 'm' | 'v', name: string, member = 0): Promise<Float32Array> {
    const [chunk, i] = this.locate(name);
    const all = (await chunk[which].data()) as Float32Array;
    const at = member * (all.length / this.members) + chunk.offsets[i];
    return all.slice(at, at + chunk.sizes[i]);
  }

  /**
   * Sets parameter `name`'s moment `which` (of member `member` for an ensemble) to `values`
   * (row-major, the parameter's size).
   * @throws Error for an unknown parameter or a wrong size.
   */
  writeMoment(which: 'm' | 'v', name: string, values: Float32Array, member = 0): void {
    const [chunk, i] = this.locate(name);
    if (values.length !== chunk.sizes[i]) throw new Error(`AdamW: ${values.length} values for ${name}'s ${which}`);
    const variable = chunk[which];
    const all = (variable.dataSync() as Float32Array).slice();
    all.set(values, member * (all.length / this.members) + chunk.offsets[i]);
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

/**
 * A chunk's decay rule: 'all', 'none', or a bool mask `[Σ sizes]` when its parameters differ
 * (`[members, Σ sizes]` for an ensemble of `members` > 0).
 */
function decayMask(
  run: [string, tf.Variable][],
  sizes: number[],
  decays: (name: string) => boolean,
  members: number,
): Chunk['decay'] {
  const flags = run.map(([n]) => decays(n));
  if (flags.every((f) => f)) return 'all';
  if (!flags.some((f) => f)) return 'none';
  const total = sizes.reduce((a, b) => a + b, 0);
  const mask = new Uint8Array(total);
  let at = 0;
  flags.forEach((f, i) => {
    if (f) mask.fill(1, at, at + sizes[i]);
    at += sizes[i];
  });
  if (members === 0) return tf.tensor1d(mask, 'bool');
  const all = new Uint8Array(total * members);
  for (let m = 0; m < members; m++) all.set(mask, m * total);
  return tf.tensor2d(all, [members, total], 'bool');
}

/** Each member's global L2 norm of stacked gradients `[members, ...]`: `[members]`. */
function membersNorm(tensors: readonly tf.Tensor[], members: number): tf.Tensor1D {
  return tf.tidy(
    () => tf.sqrt(tf.addN(tensors.map((g) => tf.sum(tf.square(tf.reshape(g, [members, -1])), 1)))) as tf.Tensor1D,
  );
}

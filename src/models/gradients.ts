/**
 * Gradient definitions for the TF.js kernels our models differentiate through.
 *
 * `@tensorflow/tfjs-core`'s Node bundle registers no gradients (the `@tensorflow/tfjs` union
 * package does, from ESM files Node cannot load on their own), so with only tfjs-core and the
 * wasm/cpu backends `tf.variableGrads` fails with "gradient function not found". This module
 * registers the standard vector–Jacobian products for the kernels the layer kit uses, each only
 * when no gradient is registered yet (so the union package's own definitions win when
 * `@tensorflow/tfjs-node` brought them in). Call `registerGradients()` before recording a tape;
 * `initBackend` does.
 *
 * Notation: `dy` is the gradient of the loss w.r.t. the kernel's output; each entry returns the
 * gradient w.r.t. one input, of that input's shape.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

/**
 * Sums `g` over the axes along which an input of `shape` was broadcast to `g.shape` (the gradient
 * of a broadcast). A sum over leading axes (a bias gradient, `[n, d] → [d]`; leading axes of size
 * 1 do not count) is computed as the product `ones[1, n] @ g[n, d]`: the wasm backend reduces a
 * non-innermost axis by transposing first, ~100x slower than the product. So a model with a
 * member axis of 1 (`[1, n, d] → [d]`) gets the kernels, and the values bit for bit, of the same
 * model without it.
 * @param perMember the first axis is an ensemble's member axis, kept (`[members, n, d] →
 *   [members, 1, d]`): the sum is then one batched product, `ones[members, 1, n] @ g`, so that
 *   each member's sum is the product it would get alone. Off by default: other broadcasts
 *   that keep a leading axis (the batch) keep the plain sum they always had.
 */
export function unbroadcast(g: Tensor, shape: number[], perMember = false): Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, g.shape);
  if (axes.length === 0) return tf.reshape(g, shape);
  const first = axes[0];
  const consecutive = axes.every((a, i) => a === first + i);
  if (consecutive && first + axes.length < g.rank && (perMember || g.shape.slice(0, first).every((d) => d === 1))) {
    const size = (dims: number[]) => dims.reduce((p, d) => p * d, 1);
    const outer = size(g.shape.slice(0, first));
    const n = size(g.shape.slice(first, first + axes.length));
    const rest = g.size / (outer * n);
    const sum =
      outer === 1
        ? tf.matMul(tf.ones([1, n]), tf.reshape(g, [n, rest]))
        : tf.matMul(tf.ones([outer, 1, n]), tf.reshape(g, [outer, n, rest]));
    return tf.reshape(sum, shape);
  }
  return tf.reshape(tf.sum(g, axes), shape);
}

/** `dy` of a reduction over `axis` of an input of `shape`, broadcast back to `shape`. */
function unreduce(dy: Tensor, shape: number[], axis: unknown): Tensor {
  const axes = tf.util.parseAxisParam(axis as number | number[], shape);
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.ones(shape));
}

/** `x` as float32: a `Cast` only when needed (the wasm `Cast` copies even float32 → float32). */
const asFloat = (x: Tensor): Tensor => (x.dtype === 'float32' ? x : tf.cast(x, 'float32'));

type Grad = (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => Record<string, () => Tensor>;

const single =
  (f: (dy: Tensor, saved: Tensor[], attrs: NamedAttrMap) => Record<string, () => Tensor>): Grad =>
  (dy, saved, attrs) =>
    f(dy as Tensor, saved, attrs);

/** The gradient configs this module provides, by kernel name. */
export const GRADIENTS: readonly GradConfig[] = [
  {
    kernelName: tf.Add,
    inputsToSave: ['a', 'b'],
    gradFunc: single((dy, [a, b]) => ({ a: () => unbroadcast(dy, a.shape), b: () => unbroadcast(dy, b.shape) })),
  },
  {
    kernelName: tf.Sub,
    inputsToSave: ['a', 'b'],
    gradFunc: single((dy, [a, b]) => ({
      a: () => unbroadcast(dy, a.shape),
      b: () => unbroadcast(tf.neg(dy), b.shape),
    })),
  },
  {
    kernelName: tf.Multiply,
    inputsToSave: ['a', 'b'],
    gradFunc: single((dy, [a, b]) => ({
      a: () => unbroadcast(tf.mul(dy, asFloat(b)), a.shape),
      b: () => unbroadcast(tf.mul(dy, asFloat(a)), b.shape),
    })),
  },
  {
    kernelName: tf.RealDiv,
    inputsToSave: ['a', 'b'],
    gradFunc: single((dy, [a, b]) => ({
      a: () => unbroadcast(tf.div(dy, b), a.shape),
      b: () => unbroadcast(tf.neg(tf.div(tf.mul(dy, a), tf.square(b))), b.shape),
    })),
  },
  { kernelName: tf.Neg, gradFunc: single((dy) => ({ x: () => tf.neg(dy) })) },
  { kernelName: tf.Identity, gradFunc: single((dy) => ({ x: () => dy })) },
  { kernelName: tf.Cast, gradFunc: single((dy) => ({ x: () => tf.clone(dy) })) },
  {
    kernelName: tf.Square,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x]) => ({ x: () => tf.mul(dy, tf.mul(x, 2)) })),
  },
  {
    kernelName: tf.Sqrt,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x]) => ({ x: () => tf.div(dy, tf.mul(tf.sqrt(x), 2)) })),
  },
  {
    // d/dx x^(-1/2) = -1/2 x^(-3/2)
    kernelName: tf.Rsqrt,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x]) => ({
      x: () => {
        const r = tf.rsqrt(x);
        return tf.mul(dy, tf.mul(tf.mul(tf.mul(r, r), r), -0.5));
      },
    })),
  },
  {
    kernelName: tf.Tanh,
    outputsToSave: [true],
    gradFunc: single((dy, [y]) => ({ x: () => tf.mul(dy, tf.sub(1, tf.square(y))) })),
  },
  {
    kernelName: tf.Sigmoid,
    outputsToSave: [true],
    gradFunc: single((dy, [y]) => ({ x: () => tf.mul(dy, tf.mul(y, tf.sub(1, y))) })),
  },
  {
    kernelName: tf.Exp,
    outputsToSave: [true],
    gradFunc: single((dy, [y]) => ({ x: () => tf.mul(dy, y) })),
  },
  {
    kernelName: tf.Log,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x]) => ({ x: () => tf.div(dy, x) })),
  },
  {
    // relu'(x) = 1 for x > 0, else 0 (`step`, 0 at 0 as TF).
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x]) => ({ x: () => tf.mul(dy, tf.step(tf.cast(x, 'float32'))) })),
  },
  {
    // softplus(x) = log(1 + eˣ): its derivative is σ(x).
    kernelName: tf.Softplus,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x]) => ({ x: () => tf.mul(dy, tf.sigmoid(x)) })),
  },
  {
    // Padding is undone by slicing the gradient back to the input's window.
    kernelName: tf.PadV2,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x], attrs) => {
      const paddings = attrs.paddings as [number, number][];
      return {
        x: () =>
          tf.slice(
            dy,
            paddings.map((p) => p[0]),
            x.shape,
          ),
      };
    }),
  },
  {
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x], attrs) => ({ x: () => unreduce(dy, x.shape, attrs.axis) })),
  },
  {
    kernelName: tf.Mean,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x], attrs) => ({
      x: () => {
        const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
        const count = axes.reduce((n, a) => n * x.shape[a], 1);
        return tf.div(unreduce(dy, x.shape, axes), count);
      },
    })),
  },
  {
    kernelName: tf.Reshape,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x]) => ({ x: () => tf.reshape(dy, x.shape) })),
  },
  {
    kernelName: tf.Transpose,
    gradFunc: single((dy, _saved, attrs) => {
      const perm = attrs.perm as number[];
      const inverse = new Array<number>(perm.length);
      perm.forEach((p, i) => (inverse[p] = i));
      return { x: () => tf.transpose(dy, inverse) };
    }),
  },
  {
    kernelName: tf.Slice,
    inputsToSave: ['x'],
    gradFunc: single((dy, [x], attrs) => {
      const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
      const paddings = x.shape.map((d, i) => [begin[i], d - begin[i] - size[i]] as [number, number]);
      return { x: () => tf.pad(dy, paddings) };
    }),
  },
  {
    kernelName: tf.SplitV,
    gradFunc: (dys, _saved, attrs) => ({ x: () => tf.concat(dys as Tensor[], attrs.axis as number) }),
  },
  {
    kernelName: tf.Concat,
    saveAllInputs: true,
    gradFunc: single((dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0].shape)[0];
      const parts = tf.split(
        dy,
        saved.map((t) => t.shape[axis]),
        axis,
      );
      return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
    }),
  },
  {
    // y = softmax(x): dx = y ⊙ (dy − Σ(dy ⊙ y))
    kernelName: tf.Softmax,
    outputsToSave: [true],
    gradFunc: single((dy, [y], attrs) => ({
      logits: () => tf.mul(y, tf.sub(dy, tf.sum(tf.mul(dy, y), attrs.dim as number, true))),
    })),
  },
  {
    // Rows gathered along `axis` scatter-add back: an UnsortedSegmentSum over the indices.
    kernelName: tf.GatherV2,
    inputsToSave: ['x', 'indices'],
    gradFunc: single((dy, [x, indices], attrs) => {
      if (((attrs.batchDims as number) ?? 0) !== 0)
        throw new Error('GatherV2 gradient: batchDims > 0 is not supported');
      const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
      return {
        x: () => {
          const outer = x.shape.slice(0, axis);
          const inner = x.shape.slice(axis + 1);
          const n = indices.size;
          // dy: [...outer, ...indices.shape, ...inner] -> [n, ...outer, ...inner]
          const values = tf.reshape(dy, [...outer, n, ...inner]);
          const toFront = [outer.length, ...outer.map((_, i) => i), ...inner.map((_, i) => outer.length + 1 + i)];
          const summed = tf.unsortedSegmentSum(tf.transpose(values, toFront), tf.reshape(indices, [n]), x.shape[axis]);
          const back = new Array<number>(toFront.length);
          toFront.forEach((p, i) => (back[p] = i));
          return tf.transpose(summed, back);
        },
        indices: () => tf.zeros(indices.shape),
      };
    }),
  },
  {
    // The product with optional transposes, as TF defines it; a batch dimension that was
    // broadcast (one matrix against a batch) is summed back to the input's shape.
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: single((dy, [a, b], attrs) => {
      const tA = attrs.transposeA as boolean;
      const tB = attrs.transposeB as boolean;
      const fit = (ga: () => tf.Tensor, gb: () => tf.Tensor) => ({
        a: () => unbroadcast(ga(), a.shape),
        b: () => unbroadcast(gb(), b.shape),
      });
      if (!tA && !tB)
        return fit(
          () => tf.matMul(dy, b, false, true),
          () => tf.matMul(a, dy, true, false),
        );
      if (!tA && tB)
        return fit(
          () => tf.matMul(dy, b, false, false),
          () => tf.matMul(dy, a, true, false),
        );
      if (tA && !tB)
        return fit(
          () => tf.matMul(b, dy, false, true),
          () => tf.matMul(a, dy, false, false),
        );
      return fit(
        () => tf.matMul(b, dy, true, true),
        () => tf.matMul(dy, a, true, true),
      );
    }),
  },
];

/**
 * Registers every gradient of `GRADIENTS` whose kernel has none yet. Idempotent.
 * @returns the kernel names registered by this call.
 */
export function registerGradients(): string[] {
  const added: string[] = [];
  for (const g of GRADIENTS) {
    if (tf.getGradient(g.kernelName) == null) {
      tf.registerGradient(g);
      added.push(g.kernelName);
    }
  }
  return added;
}

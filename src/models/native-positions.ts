/**
 * The answer position of each example, natively on `wasm-blas` (`native-kernels.ts`;
 * native/src/positions.cc), for `layers.ts`' `selectPositions` and `positionMask`:
 *
 * - `GrokpipeSelectRows`: `y[b] = x[b, positions[b]]`, one kernel where TF.js runs a range, a
 *   cast, an add, a reshape and a gather; its gradient `GrokpipeSelectRowsGrad` writes `dy[b]`
 *   into row `positions[b]` of zeros, where TF.js runs two transposes, a segment sum and four
 *   reshapes. Saves the positions.
 * - `GrokpipePositionMask`: `mask[b, 0, 0, j] = (j > positions[b]) · −1e9`, one kernel for seven.
 *
 * The values are those of the TF.js ops bit for bit (test/model-native-positions.test.ts).
 * Shapes: `x` `[batch, seq, d]`, `positions` int32 `[batch]`, each in `[0, seq)`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { defineNativeKernel, runNative } from './native-kernels.js';

/** positions.cc's functions. */
interface PositionsAddon {
  selectRows(x: Float32Array, positions: Int32Array, out: Float32Array, batch: number, seq: number, d: number): void;
  selectRowsGrad(
    dy: Float32Array,
    positions: Int32Array,
    dx: Float32Array,
    batch: number,
    seq: number,
    d: number,
  ): void;
  positionMask(positions: Int32Array, mask: Float32Array, batch: number, seq: number): void;
}

/** `[batch, seq, d]` of `x` against `positions` `[batch]`. @throws Error when they do not fit. */
function rowsShape(x: number[], positions: number[]): [number, number, number] {
  if (x.length !== 3 || positions.length !== 1 || positions[0] !== x[0])
    throw new Error(`selectPositions: x ${JSON.stringify(x)} and positions ${JSON.stringify(positions)} do not fit`);
  return x as [number, number, number];
}

/** `GrokpipeSelectRows`: x, positions → `[batch, d]`. */
const SELECT_ROWS = defineNativeKernel<PositionsAddon>(
  'SelectRows',
  ['selectRows'],
  ({ inputs, addon, out, view, ints }) => {
    const { x, positions } = inputs as Record<string, TensorInfo>;
    const [batch, seq, d] = rowsShape(x.shape, positions.shape);
    const y = out([batch, d]);
    addon.selectRows(view(x), ints(positions), view(y), batch, seq, d);
    return y;
  },
);

/** `GrokpipeSelectRowsGrad`: dy, positions (attr `seq`) → dx `[batch, seq, d]`. */
const SELECT_ROWS_GRAD = defineNativeKernel<PositionsAddon>(
  'SelectRowsGrad',
  ['selectRowsGrad'],
  ({ inputs, attrs, addon, out, view, ints }) => {
    const { dy, positions } = inputs as Record<string, TensorInfo>;
    const [batch, d] = dy.shape;
    const seq = attrs.seq as number;
    const dx = out([batch, seq, d]);
    addon.selectRowsGrad(view(dy), ints(positions), view(dx), batch, seq, d);
    return dx;
  },
);

/** `GrokpipePositionMask`: positions (attr `seq`) → `[batch, 1, 1, seq]`. */
const POSITION_MASK = defineNativeKernel<PositionsAddon>(
  'PositionMask',
  ['positionMask'],
  ({ inputs, attrs, addon, out, view, ints }) => {
    const { positions } = inputs as Record<string, TensorInfo>;
    const seq = attrs.seq as number;
    const batch = positions.shape[0];
    const mask = out([batch, 1, 1, seq]);
    addon.positionMask(ints(positions), view(mask), batch, seq);
    return mask;
  },
);

tf.registerGradient({
  kernelName: SELECT_ROWS,
  inputsToSave: ['positions'],
  gradFunc: (dy, [positions], attrs) => ({
    x: () => runNative<tf.Tensor>(SELECT_ROWS_GRAD, { dy: dy as tf.Tensor, positions }, attrs),
    positions: () => tf.zeros(positions.shape),
  }),
});

/**
 * Row `positions[b]` of example `b`, natively, as one tape node.
 * @param x `[batch, seq, d]`; @param positions int32 `[batch]`, each in `[0, seq)`. @returns `[batch, d]`
 * @throws Error when the shapes do not fit, or (at run time) on a position outside `[0, seq)`.
 */
export function nativeSelectPositions(x: tf.Tensor3D, positions: tf.Tensor1D): tf.Tensor2D {
  return runNative<tf.Tensor2D>(SELECT_ROWS, { x, positions: asInt(positions) }, { seq: x.shape[1] });
}

/**
 * The additive mask `[batch, 1, 1, seq]` of one query per example at `positions[b]`: −0 for keys
 * at or before it, −1e9 after, natively. @param positions int32 `[batch]`
 */
export function nativePositionMask(positions: tf.Tensor1D, seq: number): tf.Tensor4D {
  return runNative<tf.Tensor4D>(POSITION_MASK, { positions: asInt(positions) }, { seq });
}

const asInt = (t: tf.Tensor1D): tf.Tensor1D => (t.dtype === 'int32' ? t : tf.cast(t, 'int32'));

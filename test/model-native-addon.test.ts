/**
 * The native addon's plumbing, below the kernels' numerics (those are model-native-kernels and
 * model-native-attention): every function reads its arguments with native/src/args.h's `Args`,
 * so bad arguments become a TypeError or RangeError naming the function, the argument and what
 * was expected (never a crash of the process), and `useNativeKernels(true)` refuses an addon
 * built before a function that a defined kernel calls, naming it and `npm run build:native`.
 *
 * Skipped with the reason where the addon is not built or no BLAS library loads, unless
 * `GROKPIPE_REQUIRE_NATIVE` is set (as in CI): then they fail.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { nativeAddon } from '../src/models/native-blas.js';
import { nativeKernelsOn, useNativeKernels } from '../src/models/native-kernels.js';
import { needNative, nativeUnavailable } from './native-helpers.js';

type Fn = (...args: unknown[]) => unknown;
const addon = () => nativeAddon() as Record<string, Fn>;
const f32 = (n: number) => new Float32Array(n);

beforeAll(async () => {
  if (!nativeUnavailable) await initBackend('wasm-blas', { threads: 1 });
});

describe("the addon's argument checks (args.h)", () => {
  beforeEach(needNative);

  it('too few arguments: "<fn> expects <n> arguments", for every function', () => {
    const arity: Record<string, number> = {
      matMul: 11,
      setThreads: 1,
      crossEntropy: 7,
      crossEntropyGrad: 5,
      norm: 10,
      normGrad: 10,
      gelu: 3,
      geluGrad: 4,
      silu: 3,
      siluGrad: 4,
      swiglu: 4,
      swigluGrad: 6,
      exp: 3,
      embed: 10,
      embedGrad: 10,
      attentionForward: 21,
      attentionBackward: 20,
      gradNorm: 3,
      adamwUpdate: 19,
      emaFilter: 7,
      biasAdd: 5,
      addTo: 3,
      selectRows: 6,
      selectRowsGrad: 6,
      positionMask: 4,
    };
    for (const [fn, n] of Object.entries(arity)) {
      const message = `${fn} expects ${n} argument${n === 1 ? '' : 's'}`;
      expect(() => addon()[fn](), fn).toThrow(new TypeError(message));
      expect(() => addon()[fn](...new Array<undefined>(n - 1)), fn).toThrow(new TypeError(message));
    }
  });

  it('attention: names the argument, the expected kind and the lengths', () => {
    // One example, 2 queries and keys, d_model 4 in 2 heads; separate q, k, v (strides 4, offsets 0).
    const sizes = [1, 2, 2, 4, 2, 4, 0, 4, 0, 4, 0];
    const forward =
      (q: unknown, mask: unknown, ...rest: unknown[]) =>
      () =>
        addon().attentionForward(q, f32(8), f32(8), mask, f32(8), f32(8), ...rest);
    const good = [...sizes, 0, 0, 2, 0.5];
    expect(forward(f32(8), f32(4), ...good)).not.toThrow();
    expect(forward(f32(7), f32(4), ...good)).toThrow(
      new RangeError('attentionForward: q has 7 elements, the shapes need 8'),
    );
    expect(forward(f32(8), f32(3), ...good)).toThrow(
      new RangeError('attentionForward: mask has 3 elements, the shapes need 4'),
    );
    expect(forward(new Int32Array(8), f32(4), ...good)).toThrow(
      new TypeError('attentionForward: q must be a Float32Array'),
    );
    expect(forward(f32(8), f32(4), ...sizes, 0, 0, 2, 'half')).toThrow(
      new TypeError('attentionForward: scale must be a number'),
    );
    const bad = [...sizes];
    bad[4] = 3; // n_heads 3 does not divide d_model 4
    expect(forward(f32(8), f32(4), ...bad, 0, 0, 2, 0.5)).toThrow(/d_model must be a multiple of n_heads/);
    bad[4] = 2;
    bad[6] = 1; // q's columns 1..4 overrun its rows of 4
    expect(forward(f32(8), f32(4), ...bad, 0, 0, 2, 0.5)).toThrow(
      /q's d_model columns from offset 1 overrun its rows of 4/,
    );
    bad[6] = 0;
    [bad[0], bad[1]] = [2 ** 45, 2 ** 20]; // B · n_q · qStride = 2^67 wraps around int64
    expect(forward(f32(8), f32(4), ...bad, 0, 0, 2, 0.5)).toThrow(
      new RangeError("attentionForward: the shapes' sizes overflow"),
    );
  });

  it('lists of Float32Arrays (AdamW, Grokfast): the element at fault and mismatched sizes', () => {
    expect(() => addon().gradNorm([f32(4), new Float64Array(4)], 1, f32(1))).toThrow(
      new TypeError('gradNorm: grads[1] must be a Float32Array'),
    );
    expect(() => addon().gradNorm(f32(4), 1, f32(1))).toThrow(
      new TypeError('gradNorm: grads must be an array of Float32Arrays'),
    );
    expect(() => addon().gradNorm([f32(4), f32(3)], 2, f32(2))).toThrow(
      new RangeError('gradNorm: grads[1] has 3 elements, not a multiple of members 2'),
    );
    expect(() => addon().gradNorm([f32(4)], 0, f32(1))).toThrow(new RangeError('gradNorm: members must be at least 1'));
    const out = f32(2);
    addon().gradNorm([Float32Array.from([3, 4, 0, 0]), Float32Array.from([0, 0, 0, 2])], 2, out);
    expect(Array.from(out)).toEqual([5, 2]);
    const lists = [[f32(3)], [f32(3)], [f32(3)], [f32(2)]];
    expect(() => addon().emaFilter(...lists, 0.9, 0.1, 2)).toThrow(
      new RangeError(
        'emaFilter: gradient 0: grads, emas, newGrads and newEmas have 3, 3, 3, 2 elements; they must be equal',
      ),
    );
    const scalars = [1, 0.9, 0.1, 0.98, 0.02, 1e-8, 1]; // clip, β₁, 1 − β₁, β₂, 1 − β₂, ε, 1/sqrt(1 − β₂ᵗ)
    const update = (decays: unknown, params: unknown[]) => () =>
      addon().adamwUpdate(
        params,
        [f32(3)],
        [f32(3)],
        decays,
        f32(3),
        f32(3),
        f32(3),
        f32(3),
        f32(1),
        f32(1),
        f32(1),
        1,
        ...scalars,
      );
    expect(update(Uint8Array.from([1]), [f32(3)])).not.toThrow();
    expect(update([1], [f32(3)])).toThrow(new TypeError('adamwUpdate: decays must be a Uint8Array'));
    expect(update(Uint8Array.from([1]), [f32(3), f32(3)])).toThrow(
      new RangeError('adamwUpdate: decays has 1 elements, the shapes need 2'),
    );
  });
});

describe('turning the fused kernels on', () => {
  beforeEach(needNative);

  it('refuses an addon that predates a function a kernel calls, naming it and the rebuild', () => {
    const a = nativeAddon() as Record<string, unknown>;
    const emaFilter = a.emaFilter;
    useNativeKernels(false);
    delete a.emaFilter;
    try {
      expect(() => useNativeKernels(true)).toThrow(
        'GrokpipeEmaFilter: the native addon predates emaFilter() (rebuild it: npm run build:native)',
      );
      expect(nativeKernelsOn()).toBe(false);
    } finally {
      a.emaFilter = emaFilter;
    }
    useNativeKernels(true);
    expect(nativeKernelsOn()).toBe(true);
  });
});

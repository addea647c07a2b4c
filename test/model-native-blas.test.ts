/**
 * The `wasm-blas` backend (src/models/native-blas.ts, native/src/blas.cc): wasm's `BatchMatMul`
 * on a native CBLAS library, against TF.js' stock cpu backend (this file never calls
 * initBackend('cpu'), so the cpu kernels are TF.js' own); switching the kernel on and off; the
 * addon's own argument checks; and the fallback when no BLAS library loads (in a child process,
 * test/fixtures/native-blas-fallback.ts, as the library is looked up once per process).
 *
 * Where the addon is not built or no BLAS library loads, the tests that need it are skipped with
 * the reason `loadNativeBlas()` gives, unless `GROKPIPE_REQUIRE_NATIVE` is set (as in CI): then
 * they fail.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { execa } from 'execa';
import { beforeEach, describe, expect, it } from 'vitest';
import { backendDescription, initBackend } from '../src/models/backend.js';
import { loadNativeBlas } from '../src/models/native-blas.js';
import { fillNormal, makeRng } from '../src/models/train-rng.js';
import { maxRelDiff } from './model-arch-helpers.js';

const REQUIRE_NATIVE = Boolean(process.env.GROKPIPE_REQUIRE_NATIVE);
const native = loadNativeBlas();
const unavailable = 'error' in native ? `native BLAS unavailable: ${native.error}` : undefined;
if (unavailable && !REQUIRE_NATIVE)
  console.warn(`wasm-blas tests skipped (set GROKPIPE_REQUIRE_NATIVE to fail instead): ${unavailable}`);
const require = createRequire(import.meta.url);

/** The addon as `native-blas.ts` loads it (node-gyp-build on `native/`); throws where it is not built. */
function rawAddon(): { matMul: (...args: unknown[]) => void } {
  const build = require('node-gyp-build') as (dir: string) => { matMul: (...args: unknown[]) => void };
  return build(fileURLToPath(new URL('../native', import.meta.url)));
}
let addonBuilt = true;
try {
  rawAddon();
} catch {
  addonBuilt = false;
}

/** Skips (with the reason) or, under `GROKPIPE_REQUIRE_NATIVE`, fails a test that needs the native library. */
function needNative(ctx: { skip: (note?: string) => never }): void {
  if (!unavailable) return;
  if (REQUIRE_NATIVE) throw new Error(`GROKPIPE_REQUIRE_NATIVE is set but ${unavailable}`);
  ctx.skip(unavailable);
}

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

interface Case {
  name: string;
  a: number[];
  b: number[];
  tA: boolean;
  tB: boolean;
  dtypeB?: 'int32';
}

/** `op(a) [...batchA, m, k] @ op(b) [...batchB, k, n]`, each stored transposed when its flag is set. */
function mm(batchA: number[], batchB: number[], m: number, k: number, n: number, tA = false, tB = false): Case {
  return {
    name: `[${batchA}|${m}x${k}${tA ? 'ᵀ' : ''}] @ [${batchB}|${k}x${n}${tB ? 'ᵀ' : ''}]`,
    a: [...batchA, ...(tA ? [k, m] : [m, k])],
    b: [...batchB, ...(tB ? [n, k] : [k, n])],
    tA,
    tB,
  };
}

const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

/** Non-empty products with k ≥ 1, every one of which the native kernel computes. */
const PRODUCTS: Case[] = [
  ...TRANSPOSES.flatMap(([tA, tB]) => [
    mm([], [], 37, 53, 19, tA, tB), // odd, non-square
    mm([4], [4], 37, 53, 19, tA, tB), // batched
    mm([1], [5], 7, 9, 11, tA, tB), // one matrix against a batch, either side
    mm([5], [1], 7, 9, 11, tA, tB),
    mm([5], [], 7, 9, 11, tA, tB), // rank mix
    mm([], [5], 7, 9, 11, tA, tB),
    mm([2, 3], [2, 3], 6, 5, 4, tA, tB), // rank 4
    mm([2, 3], [], 6, 5, 4, tA, tB),
    mm([1, 1], [2, 3], 6, 5, 4, tA, tB),
  ]),
  mm([], [], 1, 1, 1),
  mm([], [], 1, 64, 1), // a dot product
  mm([], [], 16, 1, 12), // an outer product
  mm([], [], 64, 64, 64),
  mm([], [], 128, 257, 96, false, true), // large enough for OpenBLAS' blocked, threaded path
  { ...mm([3], [3], 5, 7, 6), name: 'float32 @ int32 (cast to float32)', dtypeB: 'int32' },
];

/**
 * k = 0 (a zero output: stock wasm leaves it uninitialised) and empty outputs. The last, a batch of
 * none against a single matrix, traps in stock wasm ("remainder by zero") and has a 15-element
 * buffer on stock cpu: only the native kernel gets it right.
 */
const EDGES: Case[] = [
  mm([], [], 3, 0, 4),
  mm([2], [2], 3, 0, 4, true, true),
  mm([], [], 0, 3, 4),
  mm([], [], 3, 4, 0, false, true),
  mm([2], [2], 0, 5, 4),
  mm([0], [0], 3, 4, 5),
  mm([0], [], 3, 4, 5, true, false),
];

const inputs = new Map<Case, [Float32Array, Float32Array]>();
[...PRODUCTS, ...EDGES].forEach((c, i) => {
  const b = fillNormal(makeRng(1000 + i), new Float32Array(size(c.b)));
  inputs.set(c, [fillNormal(makeRng(i), new Float32Array(size(c.a))), c.dtypeB ? b.map((x) => Math.round(4 * x)) : b]);
});

interface Result {
  shape: number[];
  values: Float32Array;
}

/** Every case's product on the active backend. */
function products(cases: Case[]): Result[] {
  return cases.map((c) => {
    const [a, b] = inputs.get(c)!;
    const out = tf.tidy(() => tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b, c.dtypeB ?? 'float32'), c.tA, c.tB));
    const result = { shape: out.shape, values: out.dataSync() as Float32Array };
    out.dispose();
    return result;
  });
}

function expectClose(got: Result[], want: Result[], cases: Case[]): void {
  cases.forEach((c, i) => {
    expect(got[i].shape, c.name).toEqual(want[i].shape);
    expect(got[i].values.length, c.name).toBe(size(want[i].shape));
    expect(maxRelDiff(got[i].values, want[i].values), c.name).toBeLessThan(1e-5);
  });
}

/** `d/da, d/db` of `Σ w ⊙ matMul(a, b, tA, tB)` on the active backend. */
function gradients(cases: Case[]): Float32Array[][] {
  return cases.map((c, i) => {
    const [a, b] = inputs.get(c)!;
    const grads = tf.tidy(() => {
      const outShape = tf.matMul(tf.zeros(c.a), tf.zeros(c.b), c.tA, c.tB).shape;
      const w = tf.tensor(fillNormal(makeRng(500 + i), new Float32Array(size(outShape))), outShape);
      return tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, c.tA, c.tB), w)))([
        tf.tensor(a, c.a),
        tf.tensor(b, c.b),
      ]);
    });
    const values = grads.map((g) => g.dataSync() as Float32Array);
    tf.dispose(grads);
    return values;
  });
}

describe('wasm-blas BatchMatMul', () => {
  beforeEach(needNative);

  it('equals the stock cpu backend: 2-D, all transposes, batches, broadcasts, rank 4', async () => {
    await tf.setBackend('cpu');
    expect(tf.getKernel(tf.BatchMatMul, 'cpu')).not.toHaveProperty('grokpipe');
    const cpu = products(PRODUCTS);
    expect(await initBackend('wasm-blas')).toBe('wasm-blas');
    expect(tf.getBackend()).toBe('wasm');
    expectClose(products(PRODUCTS), cpu, PRODUCTS);
  });

  it('gives zeros for k = 0 and the stock shapes for empty outputs', async () => {
    await tf.setBackend('cpu');
    const cpu = products(EDGES);
    await initBackend('wasm-blas');
    const blas = products(EDGES);
    expectClose(blas, cpu, EDGES);
    expect(cpu[0]).toEqual({ shape: [3, 4], values: new Float32Array(12) });
    expect(blas[0]).toEqual({ shape: [3, 4], values: new Float32Array(12) });
    expect(blas[1]).toEqual({ shape: [2, 3, 4], values: new Float32Array(24) });
    expect(blas.slice(2).map((r) => r.shape)).toEqual([
      [0, 4],
      [3, 0],
      [2, 0, 4],
      [0, 3, 5],
      [0, 3, 5],
    ]);
    expect(blas.slice(2).map((r) => r.values.length)).toEqual([0, 0, 0, 0, 0]);
  });

  it('leaves int32 products to the stock wasm kernel, which has none (the same error as plain wasm)', async () => {
    const int32Product = () =>
      tf.tidy(() =>
        tf
          .matMul(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2], 'int32'))
          .dataSync(),
      );
    await tf.setBackend('cpu');
    expect(Array.from(int32Product())).toEqual([4, 5, 10, 11]);
    await initBackend('wasm');
    let stockError = '';
    try {
      int32Product();
    } catch (err) {
      stockError = (err as Error).message;
    }
    expect(stockError).toMatch(/non-float32/);
    await initBackend('wasm-blas');
    expect(int32Product).toThrow(stockError);
  });

  it('writes the output after the wasm heap grows for it', async () => {
    await initBackend('wasm-blas');
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
    const before = heap();
    // An output larger than the whole heap: allocating it must grow (and detach) the heap.
    const [m, k] = [64, 3];
    const n = Math.ceil(before / 4 / m) + 256;
    const a = fillNormal(makeRng(1), new Float32Array(m * k));
    const b = fillNormal(makeRng(2), new Float32Array(k * n));
    // (Not `tidy(() => ….dataSync())`: tidy walks every key of a returned typed array, for seconds.)
    const out = tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])));
    expect(heap()).toBeGreaterThan(before);
    const got = out.dataSync();
    out.dispose();
    const want = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) want[i * n + j] += a[i * k + p] * b[p * n + j];
    }
    expect(maxRelDiff(got, want)).toBeLessThan(1e-5);
  });

  it('differentiates like cpu, with every transpose', async () => {
    const cases = TRANSPOSES.flatMap(([tA, tB]) => [mm([], [], 37, 53, 19, tA, tB), mm([3], [3], 6, 5, 4, tA, tB)]);
    cases.forEach((c, i) =>
      inputs.set(c, [
        fillNormal(makeRng(2000 + i), new Float32Array(size(c.a))),
        fillNormal(makeRng(3000 + i), new Float32Array(size(c.b))),
      ]),
    );
    // initBackend registers the gradients (tfjs-core's Node bundle has none); they serve cpu too.
    await initBackend('wasm-blas');
    const blas = gradients(cases);
    await tf.setBackend('cpu');
    const cpu = gradients(cases);
    cases.forEach((c, i) => {
      expect(blas[i][0].length, c.name).toBe(size(c.a));
      expect(blas[i][1].length, c.name).toBe(size(c.b));
      expect(maxRelDiff(blas[i][0], cpu[i][0]), `d/da ${c.name}`).toBeLessThan(1e-5);
      expect(maxRelDiff(blas[i][1], cpu[i][1]), `d/db ${c.name}`).toBeLessThan(1e-5);
    });
  });

  it('is registered by initBackend("wasm-blas") and replaced by the stock kernel on initBackend("wasm")', async () => {
    type Marked = tf.KernelConfig & { grokpipe?: string; stock?: tf.KernelConfig };
    await tf.setBackend('cpu');
    const cpu = products(PRODUCTS);

    await initBackend('wasm-blas');
    const nativeKernel = tf.getKernel(tf.BatchMatMul, 'wasm') as Marked;
    expect(nativeKernel.grokpipe).toBe('native-blas');
    const stock = nativeKernel.stock!;
    expect(stock).toBeDefined();
    expect(stock).not.toHaveProperty('grokpipe');
    const lib = loadNativeBlas();
    if ('error' in lib) throw new Error(lib.error);
    expect(backendDescription()).toMatch(/^wasm-blas \(/);
    expect(backendDescription()).toContain(lib.config ?? lib.path);
    if (/openblas/i.test(lib.path)) expect(backendDescription()).toMatch(/OpenBLAS/);

    await initBackend('wasm');
    expect(tf.getKernel(tf.BatchMatMul, 'wasm')).toBe(stock);
    expect(tf.getKernel(tf.BatchMatMul, 'wasm')).not.toHaveProperty('grokpipe');
    expect(backendDescription()).toBe('wasm');
    expectClose(products(PRODUCTS), cpu, PRODUCTS);

    // Back on, twice (idempotent): the native kernel wraps the stock one, never itself.
    await initBackend('wasm-blas');
    await initBackend('wasm-blas');
    const again = tf.getKernel(tf.BatchMatMul, 'wasm') as Marked;
    expect(again.grokpipe).toBe('native-blas');
    expect(again.stock).toBe(stock);
    expectClose(products(PRODUCTS), cpu, PRODUCTS);
  });

  it('runs on the threads asked for', async () => {
    await tf.setBackend('cpu');
    const cpu = products(PRODUCTS);
    await initBackend('wasm-blas', { threads: 1 });
    const lib = loadNativeBlas();
    if ('error' in lib) throw new Error(lib.error);
    if (lib.threads !== null) {
      expect(lib.threads).toBe(1);
      expect(backendDescription()).toMatch(/, 1 thread\)$/);
    }
    expectClose(products(PRODUCTS), cpu, PRODUCTS);
    await initBackend('wasm-blas'); // back to every core
  });
});

describe('the addon (node-gyp-build on native/)', () => {
  beforeEach(needNative);
  const f32 = (n: number) => new Float32Array(n);

  it('computes batched products with a broadcast operand and transposes', () => {
    const addon = rawAddon();
    // op(a[i]) = a[i]ᵀ, a stored [2, k=3, m=2]; b a single [k=3, n=4] matrix for both.
    const [batch, m, n, k] = [2, 2, 4, 3];
    const a = Float32Array.from({ length: batch * k * m }, (_, i) => i - 5);
    const b = Float32Array.from({ length: k * n }, (_, i) => (i % 5) - 2);
    const c = f32(batch * m * n).fill(Number.NaN); // beta = 0: whatever was there is overwritten
    addon.matMul(a, b, c, batch, batch, 1, m, n, k, true, false);
    const want = f32(batch * m * n);
    for (let s = 0; s < batch; s++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          for (let p = 0; p < k; p++) want[(s * m + i) * n + j] += a[(s * k + p) * m + i] * b[p * n + j];
        }
      }
    }
    expect(Array.from(c)).toEqual(Array.from(want));
  });

  it('rejects arrays shorter than the shapes need, and non-Float32Arrays', () => {
    const addon = rawAddon();
    // [2, 3] @ [3, 4] -> [2, 4]: a needs 6, b 12, c 8.
    const call =
      (a: unknown, b: unknown, c: unknown, ...rest: unknown[]) =>
      () =>
        addon.matMul(a, b, c, ...(rest.length ? rest : [1, 1, 1, 2, 4, 3, false, false]));
    expect(call(f32(6), f32(12), f32(8))).not.toThrow();
    expect(call(f32(6), f32(12), f32(7))).toThrow(RangeError);
    expect(call(f32(6), f32(12), f32(7))).toThrow('matMul: c has 7 elements, the shapes need 8');
    expect(call(f32(5), f32(12), f32(8))).toThrow('matMul: a has 5 elements, the shapes need 6');
    expect(call(f32(6), f32(11), f32(8))).toThrow('matMul: b has 11 elements, the shapes need 12');
    // A batch of 3 over a single b: c needs 24.
    expect(call(f32(18), f32(12), f32(16), 3, 3, 1, 2, 4, 3, false, false)).toThrow(
      'c has 16 elements, the shapes need 24',
    );
    expect(call(new Float64Array(6), f32(12), f32(8))).toThrow(TypeError);
    expect(call(new Float64Array(6), f32(12), f32(8))).toThrow('matMul: a must be a Float32Array');
    expect(call(f32(6), new Int32Array(12), f32(8))).toThrow('matMul: b must be a Float32Array');
    expect(call(f32(6), f32(12), Array.from(f32(8)))).toThrow('matMul: c must be a Float32Array');
    expect(call(f32(6), f32(12), f32(8).buffer)).toThrow(TypeError);
  });

  it('rejects bad shape arguments without crashing the process', () => {
    const addon = rawAddon();
    const call =
      (...rest: unknown[]) =>
      () =>
        addon.matMul(f32(64), f32(64), f32(64), ...rest);
    expect(call(1, 1, 1, 2, 4)).toThrow(new TypeError('matMul expects 11 arguments'));
    expect(call('1', 1, 1, 2, 4, 3, false, false)).toThrow(new TypeError('matMul: batch must be a number'));
    expect(call(1, 1, 1, 2, undefined, 3, false, false)).toThrow(new TypeError('matMul: n must be a number'));
    expect(call(1, 1, 1, 2.5, 4, 3, false, false)).toThrow(new RangeError('matMul: m must be an integer'));
    expect(call(1, 1, 1, 2, 4, Number.NaN, false, false)).toThrow(new RangeError('matMul: k must be an integer'));
    expect(call(1, 1, 1, -2, 4, 3, false, false)).toThrow(new RangeError('matMul: bad shape arguments'));
    expect(call(3, 2, 1, 2, 4, 3, false, false)).toThrow(new RangeError('matMul: bad shape arguments'));
    expect(call(1, 1, 1, 2 ** 31, 1, 1, false, false)).toThrow(/exceeds the 32-bit BLAS interface/);
    // Sizes whose products wrap around int64 (2^88 ≡ 0) must not pass the length checks.
    expect(call(2 ** 40, 2 ** 40, 2 ** 40, 2 ** 24, 2 ** 24, 2 ** 24, false, false)).toThrow(
      new RangeError("matMul: the shapes' sizes overflow"),
    );
  });
});

describe('without a BLAS library (GROKPIPE_BLAS=/nonexistent/libnothing.so)', () => {
  it('loadNativeBlas names the library, wasm-blas fails with the install hint, auto falls back to wasm', async () => {
    const tsx = pathToFileURL(require.resolve('tsx')).href;
    const fixture = fileURLToPath(new URL('./fixtures/native-blas-fallback.ts', import.meta.url));
    const child = await execa(process.execPath, ['--import', tsx, fixture], {
      env: { GROKPIPE_BLAS: '/nonexistent/libnothing.so' },
      reject: false,
      timeout: 60_000,
    });
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, `child exited ${child.exitCode}: ${child.stderr}`).toBeDefined();
    const r = JSON.parse(line!.slice('RESULT '.length)) as {
      load: { error?: string };
      blasRequest: { name: string; message: string; unavailable: boolean } | string;
      auto: string;
      description: string;
      backend: string;
      kernelMarker: string | null;
      product: number[];
    };
    expect(r.load.error).toBeDefined();
    if (addonBuilt) {
      expect(r.load.error).toContain('no CBLAS library could be opened');
      expect(r.load.error).toContain('/nonexistent/libnothing.so');
    } else {
      expect(r.load.error).toContain('the native addon is not built');
    }
    expect(typeof r.blasRequest).toBe('object');
    const failure = r.blasRequest as { name: string; message: string; unavailable: boolean };
    expect(failure.name).toBe('BackendUnavailableError');
    expect(failure.unavailable).toBe(true);
    expect(failure.message).toContain('TF.js backend "wasm-blas" is not available');
    expect(failure.message).toContain(r.load.error!);
    expect(failure.message).toContain('npm run build:native');
    expect(failure.message).toContain('libopenblas0-pthread');
    // auto skips the libtensorflow backends where they are not installed, and wasm-blas here.
    const libtensorflow = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'].some((p) => {
      try {
        require.resolve(p);
        return true;
      } catch {
        return false;
      }
    });
    if (libtensorflow) expect(r.auto).not.toBe('wasm-blas');
    else {
      expect(r.auto).toBe('wasm');
      expect(r.description).toBe('wasm');
      expect(r.backend).toBe('wasm');
      expect(r.kernelMarker).toBeNull(); // the stock wasm BatchMatMul
    }
    expect(r.product).toEqual([4, 5, 10, 11]);
  });
});

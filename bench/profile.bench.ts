/**
 * Where a training step's time goes: the trainer's own step (`batchGradients` then `AdamW.apply`,
 * as `optimizerStep` in src/models/train/trainer.ts) of a GPT-2, timed, then profiled kernel by
 * kernel with `tf.profile`.
 *
 *     npm run bench -- profile [--backend wasm-blas] [--model 2x64x4] [--batch 128] [--micro-batch N]
 *                              [--members M] [--unfused] [--top 15] [--steps 20] [--threads N]
 *
 * `--threads N`: the BLAS library's threads on `wasm-blas` (`initBackend`'s `threads`; default every
 * core), as the train bench's `--threads`.
 *
 * `--members M` (M > 1) profiles the step of an ensemble of M such models (`trainEnsemble`'s:
 * `membersBatchGradients`, then AdamW over the stacked parameters), each member on its own batch.
 *
 * The step is the train bench's (bench/train.bench.ts): 6 tokens, vocabulary 1,200, answer at the
 * last position, cross-entropy, AdamW with clipping. It runs 3 warm-up steps, times `--steps`
 * (median, min, max printed), then profiles one more, and prints:
 * - kernels per step, for the whole step and for each phase: the forward and backward pass
 *   (`batchGradients`) and the optimizer (`AdamW.apply`);
 * - kernel time per class (matrix products, elementwise, reductions, softmax, data movement:
 *   transposes, slices, gathers, concatenations, casts, fills; other), with calls;
 * - time outside kernels: the median step time less the profiled kernel time, which is what
 *   JavaScript costs around the kernels (TF.js's op dispatch and tape, gradient functions,
 *   tensor bookkeeping and disposal, our own code); on wasm every kernel runs synchronously, so
 *   `kernelTimeMs` is its wall time;
 * - the top kernels by time, and the wasm heap's high-water mark.
 * Kernel times under `tf.profile` carry its own overhead, so the sum of a profiled step's kernel
 * times is an upper bound and "outside kernels" a lower one.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/models/backend.js';
import type { BackendName } from '../src/models/backend.js';
import { AdamW } from '../src/models/adamw.js';
import { useFusedLayers } from '../src/models/layers.js';
import { createEnsemble, createModel } from '../src/models/arch/factories.js';
import type { LanguageModel } from '../src/models/model.js';
import type { ModelConfig } from '../src/models/arch/registry.js';
import { makeRng } from '../src/models/train-rng.js';
import { batchGradients, membersBatchGradients } from '../src/models/train/loss.js';
import type { Examples } from '../src/models/train/examples.js';

const SEQ = 6;
const VOCAB = 1200;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** Kernel classes by TF.js kernel name; anything unlisted is `other`. */
const CLASSES: Record<string, string[]> = {
  'matrix products': ['BatchMatMul', '_FusedMatMul'],
  elementwise: [
    ...[
      'Add',
      'AddN',
      'Sub',
      'Mul',
      'Multiply',
      'Div',
      'RealDiv',
      'Neg',
      'Square',
      'SquaredDifference',
      'Sqrt',
      'Rsqrt',
    ],
    ...['Sigmoid', 'Tanh', 'Exp', 'Log', 'Maximum', 'Minimum', 'Greater', 'GreaterEqual', 'Less', 'Equal'],
    ...['Select', 'Step', 'Relu', 'Abs', 'Pow', 'FloorDiv', 'ClipByValue', 'AdamWUpdate'],
  ],
  reductions: ['Sum', 'Mean', 'Max', 'Min', 'ArgMax', 'Prod'],
  softmax: ['Softmax', 'LogSoftmax'],
  'data movement': [
    ...['Transpose', 'Slice', 'StridedSlice', 'Concat', 'Gather', 'GatherV2', 'GatherNd', 'Reshape', 'Tile'],
    ...['Pack', 'Unpack', 'SplitV', 'Fill', 'OneHot', 'ZerosLike', 'OnesLike', 'Identity', 'Cast', 'Range'],
    ...['UnsortedSegmentSum', 'ScatterNd', 'PadV2', 'Pad'],
  ],
};
const classOf = new Map(Object.entries(CLASSES).flatMap(([cls, names]) => names.map((n) => [n, cls] as const)));

const threads = process.argv.includes('--threads') ? Number(arg('threads', '1')) : undefined;
const backend = await initBackend(arg('backend', 'wasm-blas') as BackendName, { threads });
const [nLayers, dModel, nHeads] = arg('model', '2x64x4').split('x').map(Number);
const batch = Number(arg('batch', '128'));
const micro = Math.min(batch, Number(arg('micro-batch', String(batch))));
const top = Number(arg('top', '15'));
const nTimed = Number(arg('steps', '20'));
useFusedLayers(!process.argv.includes('--unfused'));

const config: ModelConfig = {
  arch: 'gpt2',
  n_layers: nLayers,
  d_model: dModel,
  n_heads: nHeads,
  d_mlp: 4 * dModel,
  vocab_size: VOCAB,
  seq_len: SEQ,
};
const members = Number(arg('members', '1'));
const ensemble =
  members > 1
    ? createEnsemble(
        config,
        Array.from({ length: members }, (_, m) => makeRng(1 + m)),
      )
    : null;
const model = ensemble ?? createModel(config, makeRng(1));
const adamw = { lr: 1e-3, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 100, grad_clip: 1 };
const opt = new AdamW(model.params, ensemble ? new Array(members).fill(adamw) : adamw, (name) => model.decays(name));
const rng = makeRng(2);
const batchData = (): Examples => ({
  tokens: Int32Array.from({ length: batch * SEQ }, () => (rng.next() >>> 0) % VOCAB),
  positions: new Int32Array(batch).fill(SEQ - 1),
  targets: Int32Array.from({ length: batch }, () => (rng.next() >>> 0) % VOCAB),
  n: batch,
  seqLen: SEQ,
});
const data = Array.from({ length: members }, batchData);
const indices = Int32Array.from({ length: batch }, (_, i) => i);

/** The two phases of the trainer's step; `step` runs both as `optimizerStep` does. */
const gradients = () =>
  ensemble
    ? membersBatchGradients(ensemble, data, new Array(members).fill(indices), micro)
    : batchGradients(model as LanguageModel, data[0], indices, micro);
function step(): void {
  tf.tidy(() => {
    const { grads, loss, accuracy } = gradients();
    opt.apply(grads).dispose();
    tf.dispose([loss, accuracy]);
  });
}

for (let i = 0; i < 3; i++) step();
const times: number[] = [];
for (let i = 0; i < nTimed; i++) {
  const t0 = performance.now();
  step();
  (model.params.values().next().value as tf.Variable).dataSync(); // wait for the update
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const median = times[times.length >> 1];

// tf.profile returns the same record object each time: copy what each call found before the next.
const kernels = [...(await tf.profile(() => step())).kernels];
// The phases profiled apart, for their kernel counts.
let held: ReturnType<typeof gradients> | undefined;
const backward = (
  await tf.profile(() => {
    held = gradients();
  })
).kernels.length;
const optimizer = (await tf.profile(() => opt.apply((held as ReturnType<typeof gradients>).grads).dispose())).kernels
  .length;
if (held) tf.dispose([...held.grads.values(), held.loss, held.accuracy]);

const byKernel = new Map<string, { ms: number; calls: number }>();
const byClass = new Map<string, { ms: number; calls: number }>();
let total = 0;
for (const k of kernels) {
  const ms = k.kernelTimeMs as number;
  total += ms;
  for (const [map, key] of [
    [byKernel, k.name],
    [byClass, classOf.get(k.name) ?? 'other'],
  ] as const) {
    const entry = map.get(key) ?? { ms: 0, calls: 0 };
    entry.ms += ms;
    entry.calls++;
    map.set(key, entry);
  }
}
const heap = (tf.backend() as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
const pct = (x: number, of: number) => `${((100 * x) / of).toFixed(1)} %`;
const table = (rows: [string, { ms: number; calls: number }][]) => {
  for (const [name, { ms, calls }] of rows)
    console.log(
      `  ${name.padEnd(22)} ${ms.toFixed(2).padStart(8)} ${pct(ms, median).padStart(8)} ${String(calls).padStart(6)}`,
    );
};
console.log(
  `GPT-2 ${nLayers}x${dModel}, ${nHeads} heads, batch ${batch}${micro < batch ? ` in passes of ${micro}` : ''}` +
    `${ensemble ? `, an ensemble of ${members}` : ''}, ` +
    `${process.argv.includes('--unfused') ? 'unfused' : 'fused'} layers, on ${backend}` +
    `${threads ? ` (${threads} BLAS thread${threads === 1 ? '' : 's'})` : ''}; ${new Date().toISOString()}`,
);
console.log(
  `step: median ${median.toFixed(2)} ms of ${nTimed} (min ${times[0].toFixed(2)}, max ${times[times.length - 1].toFixed(2)})`,
);
console.log(`kernels per step: ${kernels.length} (forward + backward ${backward}, optimizer ${optimizer})`);
console.log(
  `kernel time: ${total.toFixed(2)} ms (${pct(total, median)} of the median step); outside kernels: ` +
    `${Math.max(0, median - total).toFixed(2)} ms (${pct(Math.max(0, median - total), median)}): JavaScript, tape, disposal`,
);
if (heap) console.log(`wasm heap: ${(heap / 1e9).toFixed(2)} GB (high-water mark)`);
console.log(`by class (ms, share of the median step, calls):`);
table([...byClass].sort((a, b) => b[1].ms - a[1].ms));
console.log(`top ${top} kernels:`);
table([...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, top));
opt.dispose();
model.dispose();

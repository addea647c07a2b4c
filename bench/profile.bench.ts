/**
 * Where a training step's time goes: one step of GPT-2 under `tf.profile`, kernel time summed by
 * kernel name, the share of the matrix products and of attention, and the wasm heap.
 *
 *     npm run bench -- profile [--backend wasm-blas] [--model 2x128x4] [--batch 512] [--micro-batch N]
 *                              [--unfused] [--top 15]
 *
 * The step is the train bench's (bench/train.bench.ts): 6 tokens, vocabulary 1,200, answer at the
 * last position, cross-entropy, AdamW with clipping; micro-batches accumulate gradients as the
 * trainer does. It runs 2 warm-up steps, times 5 (median printed), then profiles one more.
 * Kernel times are wall-clock per kernel as TF.js measures them (`kernelTimeMs`); their sum is a
 * little above the step time because profiling adds overhead. "Attention" counts the batched
 * products of `[batch · n_heads, …]` operands, `Softmax` and every `Transpose`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/models/backend.js';
import type { BackendName } from '../src/models/backend.js';
import { AdamW } from '../src/models/adamw.js';
import { useFusedLayers } from '../src/models/layers.js';
import { createModel } from '../src/models/arch/factories.js';
import type { ModelConfig } from '../src/models/arch/registry.js';
import { makeRng } from '../src/models/train-rng.js';
import { crossEntropy } from '../src/models/train/loss.js';

const SEQ = 6;
const VOCAB = 1200;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const backend = await initBackend(arg('backend', 'wasm-blas') as BackendName);
const [nLayers, dModel, nHeads] = arg('model', '2x128x4').split('x').map(Number);
const batch = Number(arg('batch', '512'));
const micro = Math.min(batch, Number(arg('micro-batch', String(batch))));
const top = Number(arg('top', '15'));
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
const model = createModel(config, makeRng(1));
const opt = new AdamW(
  model.params,
  { lr: 1e-3, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 100, grad_clip: 1 },
  (name) => model.decays(name),
);
const rng = makeRng(2);
const tokens = tf.tensor2d(
  Int32Array.from({ length: batch * SEQ }, () => (rng.next() >>> 0) % VOCAB),
  [batch, SEQ],
  'int32',
);
const targets = tf.tensor1d(
  Int32Array.from({ length: batch }, () => (rng.next() >>> 0) % VOCAB),
  'int32',
);
const positions = tf.fill([micro], SEQ - 1, 'int32') as tf.Tensor1D;
const vars = [...model.params.values()];

/** One optimizer step over the batch, in passes of `micro` examples whose gradients are summed. */
function step(): void {
  tf.tidy(() => {
    let sum: tf.NamedTensorMap | undefined;
    for (let start = 0; start < batch; start += micro) {
      const { grads } = tf.variableGrads(() => {
        const toks = tf.slice(tokens, [start, 0], [micro, SEQ]) as tf.Tensor2D;
        const loss = tf.mean(
          crossEntropy(model.answerLogits(toks, positions), tf.slice(targets, [start], [micro]) as tf.Tensor1D),
        );
        return tf.mul(loss, micro / batch) as tf.Scalar;
      }, vars);
      if (sum) {
        const prev: tf.NamedTensorMap = sum;
        sum = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.add(prev[k], g)]));
        tf.dispose([...Object.values(prev), ...Object.values(grads)]);
      } else sum = grads;
    }
    const byName = new Map([...model.params].map(([name, v]) => [name, (sum as tf.NamedTensorMap)[v.name]]));
    opt.apply(byName).dispose();
  });
}

for (let i = 0; i < 2; i++) step();
const times: number[] = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  step();
  (model.params.values().next().value as tf.Variable).dataSync(); // wait for the update
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);

const profile = await tf.profile(() => step());
const byKernel = new Map<string, { ms: number; calls: number }>();
let total = 0;
let products = 0;
let attention = 0;
const attentionBatch = `[${batch * nHeads},`;
for (const k of profile.kernels) {
  const ms = k.kernelTimeMs as number;
  total += ms;
  const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  entry.ms += ms;
  entry.calls++;
  byKernel.set(k.name, entry);
  if (k.name === 'BatchMatMul') products += ms;
  const shapes = JSON.stringify(k.inputShapes);
  const microAttention = `[${micro * nHeads},`;
  if (
    (k.name === 'BatchMatMul' && (shapes.includes(attentionBatch) || shapes.includes(microAttention))) ||
    k.name === 'Softmax' ||
    k.name === 'Transpose'
  ) {
    attention += ms;
  }
}
const heap = (tf.backend() as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
const pct = (x: number) => `${((100 * x) / total).toFixed(1)} %`;
console.log(
  `GPT-2 ${nLayers}x${dModel}, ${nHeads} heads, batch ${batch}${micro < batch ? ` in passes of ${micro}` : ''}, ` +
    `${process.argv.includes('--unfused') ? 'unfused' : 'fused'} layers, on ${backend}`,
);
console.log(`step: median ${times[2].toFixed(1)} ms of 5 (min ${times[0].toFixed(1)}, max ${times[4].toFixed(1)})`);
console.log(
  `profiled step: ${total.toFixed(1)} ms of kernel time; matrix products ${pct(products)}; attention (its products, softmax, transposes) ${pct(attention)}`,
);
if (heap) console.log(`wasm heap: ${(heap / 1e9).toFixed(2)} GB (high-water mark)`);
console.log(`${'kernel'.padEnd(24)} ${'ms'.padStart(9)} ${'share'.padStart(7)} ${'calls'.padStart(6)}`);
for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
  console.log(`${name.padEnd(24)} ${ms.toFixed(1).padStart(9)} ${pct(ms).padStart(7)} ${String(calls).padStart(6)}`);
}
tf.dispose([tokens, targets, positions]);
opt.dispose();
model.dispose();

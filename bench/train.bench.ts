/**
 * Training-step time of the trainer per architecture, model size and TF.js backend.
 *
 *     npx tsx bench/train.bench.ts [--backends wasm,cpu] [--configs default,small] [--archs gpt2,llama,rwkv,mamba]
 *                                  [--steps 7] [--warmup 2] [--ablate]
 *
 * Each run trains on random facts shaped like the comparison task (inputs of 5 tokens, answer at
 * position 1 for atomic and 4 for inferred facts) through `trainModel`, the loop the `train`
 * stage runs, and times the steps between evaluations; it prints the median (and min/max) of
 * the timed steps after `--warmup` steps. Backends that are not installed are skipped. `--archs`
 * (default gpt2) picks the architectures, each at its defaults for the config's n_layers and d_model
 * (`architectures` is the size of pipelines/architectures.yaml). `--ablate`
 * also times each config with TF.js' stock matmul gradient (transposed products) instead of
 * `layers.ts`' explicit transposes.
 */
import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';
import { BACKEND_PREFERENCE, initBackend } from '../src/models/backend.js';
import type { BackendName } from '../src/models/backend.js';
import { llamaHidden, mambaDtRank } from '../src/models/count.js';
import { useExplicitTransposeGradient } from '../src/models/layers.js';
import type { Arch, ModelConfig } from '../src/models/model.js';
import { makeRng } from '../src/models/random.js';
import { trainModel } from '../src/models/trainer.js';
import type { Examples, TrainerConfig } from '../src/models/trainer.js';

interface BenchConfig {
  /** Shown in the output. */
  name: string;
  nLayers: number;
  dModel: number;
  nHeads: number;
  batch: number;
  vocab: number;
}

const CONFIGS: Record<string, BenchConfig> = {
  // The DESIGN.md default pipeline size: vocab ~1200 is 1000 entities + 20 attributes + 20 values + labels.
  default: { name: '2 layers, d_model 128, 4 heads, batch 512, vocab 1200', nLayers: 2, dModel: 128, nHeads: 4, batch: 512, vocab: 1200 },
  small: { name: '2 layers, d_model 64, 4 heads, batch 128, vocab 150', nLayers: 2, dModel: 64, nHeads: 4, batch: 128, vocab: 150 },
  // pipelines/architectures.yaml: 200 entities, 4 attributes, 10 values (per-attribute labels) give 230 tokens.
  architectures: { name: '2 layers, d_model 64, batch 128, vocab 230', nLayers: 2, dModel: 64, nHeads: 4, batch: 128, vocab: 230 },
};

/** The config of `arch` at `cfg`'s size, with that architecture's defaults (as the train stage fills them). */
function modelConfig(arch: Arch, cfg: BenchConfig): ModelConfig {
  const base = { n_layers: cfg.nLayers, d_model: cfg.dModel, vocab_size: cfg.vocab, seq_len: 5 };
  switch (arch) {
    case 'gpt2':
      return { arch, ...base, n_heads: cfg.nHeads, d_mlp: 4 * cfg.dModel };
    case 'llama':
      return { arch, ...base, n_heads: cfg.nHeads, d_mlp: llamaHidden(cfg.dModel), tie_embeddings: false, rope_base: 10000 };
    case 'rwkv':
      return { arch, ...base, d_mlp: 4 * cfg.dModel };
    case 'mamba':
      return { arch, ...base, d_state: 16, expand: 2, d_conv: 4, dt_rank: mambaDtRank(cfg.dModel), tie_embeddings: true };
  }
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** `n` random facts: 1 in 14 atomic (`<e> <attr>`, answer at 1), the rest inferred (answer at 4). */
function randomFacts(n: number, vocab: number, seed: number): Examples {
  const rng = makeRng(seed);
  const L = 5;
  const tokens = new Int32Array(n * L);
  const positions = new Int32Array(n);
  const targets = new Int32Array(n);
  const tok = () => 4 + ((rng.next() >>> 0) % (vocab - 4));
  for (let i = 0; i < n; i++) {
    const atomic = i % 14 === 0;
    const len = atomic ? 2 : 5;
    for (let j = 0; j < len; j++) tokens[i * L + j] = tok();
    positions[i] = len - 1;
    targets[i] = tok();
  }
  return { tokens, positions, targets, n, seqLen: L };
}

async function bench(arch: Arch, cfg: BenchConfig, steps: number, warmup: number): Promise<number[]> {
  const train = randomFacts(cfg.batch * 8, cfg.vocab, 1);
  const config: TrainerConfig = {
    model: modelConfig(arch, cfg),
    optimizer: { lr: 1e-3, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 100, grad_clip: 1 },
    batchSize: cfg.batch,
    maxSteps: warmup + steps + 1,
    evalEvery: 1_000_000, // evaluations only at step 0 and the last step, both outside the timed steps
    evalSize: 1,
    seed: 0,
    checkpointEvery: 0,
  };
  const stamps: number[] = [];
  const r = await trainModel(config, train, new Map([['test', randomFacts(1, cfg.vocab, 2)]]), {
    events: { onStep: () => stamps.push(performance.now()) },
  });
  r.model.dispose();
  // stamps[k] follows step k; step k takes stamps[k] - stamps[k - 1]. Skip warm-up and the last step (its eval).
  const times: number[] = [];
  for (let k = warmup + 1; k <= warmup + steps; k++) times.push(stamps[k] - stamps[k - 1]);
  return times;
}

const backends = arg('backends', BACKEND_PREFERENCE.join(',')).split(',') as BackendName[];
const configs = arg('configs', 'default,small').split(',');
const archs = arg('archs', 'gpt2').split(',') as Arch[];
const steps = Number(arg('steps', '7'));
const warmup = Number(arg('warmup', '2'));
console.log(`train step time: ${steps} timed steps after ${warmup} warm-up, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (const b of backends) {
  let name: BackendName;
  try {
    name = await initBackend(b);
  } catch (err) {
    console.log(`${b.padEnd(15)} skipped: ${(err as Error).message.split(';')[0]}`);
    continue;
  }
  for (const c of configs) {
    const cfg = CONFIGS[c];
    if (!cfg) throw new Error(`unknown config ${c} (known: ${Object.keys(CONFIGS).join(', ')})`);
    for (const arch of archs) {
      for (const explicit of process.argv.includes('--ablate') ? [true, false] : [true]) {
        useExplicitTransposeGradient(explicit);
        const t = await bench(arch, cfg, steps, warmup);
        const sorted = [...t].sort((x, y) => x - y);
        const median = sorted[sorted.length >> 1];
        const label = `${arch} ${explicit ? cfg.name : `${cfg.name} [stock matmul grad]`}`;
        console.log(
          `${name.padEnd(15)} ${label.padEnd(78)} ${median.toFixed(1).padStart(8)} ms/step  (min ${sorted[0].toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)})`,
        );
      }
    }
    useExplicitTransposeGradient(true);
  }
  if (tf.memory().numTensors !== 0) console.log(`  warning: ${tf.memory().numTensors} tensors left on ${name}`);
}

/**
 * Training-step time per model size, architecture and TF.js backend, through `trainModel` (the
 * loop the train stage runs).
 *
 *     npm run bench -- train [--json] [--models 2x64x4@128,2x64x4@128*8,2x128x4,4x256x8,8x768x12]
 *                            [--archs gpt2] [--backends wasm-blas,wasm,cpu] [--steps 5] [--warmup 2]
 *                            [--batch 512] [--micro-batch auto|N] [--max-step-seconds 60] [--ablate | --unfused]
 *                            [--python PATH | --no-reference] [--threads N] [--side-by-side]
 *
 * A model is `n_layers x d_model x n_heads`, optionally `@batch` (else `--batch`) and `*members`:
 * that many models of that size (seeds 0, 1, ...), each on its own data, trained as one ensemble
 * (`trainEnsemble`: one batched network, docs/design.md §5 "Ensembles"; architectures without an
 * ensemble network, or with `--side-by-side`, as that many `trainModel` loops in one process, a step
 * of each in turn). `ms_per_step` then times one step of all members, `ms_per_member_step` that over
 * the members, and `vs_one_member` that step against the row of one model of the same size
 * (`2x64x4@128` before `2x64x4@128*8`), the ensemble's cost in single steps.
 *
 * Every row also has `cpu_ms_per_step`, the median CPU time of this process a step (all its
 * threads), with `cpu_vs_one_member` and `cpu_vs_pytorch` (the reference's own CPU time): on a
 * machine shared with other work a wall-clock time is mostly the wait for a core, and a long step
 * waits more than a short one; CPU times compare the work.
 *
 * **PyTorch reference.** For every GPT-2 size, right after grokpipe's rows, the bench runs
 * bench/reference/pytorch_train_step.py on the same size, batch, members and step counts, and
 * prints the ratio of each grokpipe row to it (`vs_pytorch`; `pytorch_ms`, `pytorch_way`,
 * `torch` in the JSON rows). For members, PyTorch's faster way (a loop of the models or
 * `torch.func.vmap`) is the reference, and the row says which. The interpreter: `--python`, else
 * `$GROKPIPE_PYTHON`, else `.venv/bin/python`, else `python3`, the first that imports torch;
 * none: the ratios are left out with the reason (`--no-reference` leaves them out too).
 * `--threads N` (default: every core) is given to both: BLAS's threads on `wasm-blas`
 * (`initBackend`'s `threads`), libtensorflow's, and PyTorch's `torch.set_num_threads`. On a
 * machine shared with other work, 1 thread each keeps PyTorch's OpenMP threads from spinning
 * against the other processes.
 *
 * The work is the one of issue 7 and of bench/reference/pytorch_train_step.py: batch 512, 6
 * tokens, vocabulary 1,200, logits at the last position only, cross-entropy, AdamW with clipping.
 * Per (model, backend) it prints the median step time of `--steps` steps after `--warmup`
 * (evaluations fall outside the timed steps), tokens per second, the model's nominal GFLOP per
 * step (`stepFlops`), GFLOP/s, and that as a share of the machine's matmul peak, measured first
 * (`measurePeak`). With `--json`, one JSON object per line and nothing else on stdout (run it as
 * `npm run -s bench -- train --json`: without `-s` npm prints its own banner first); fields:
 * arch, n_layers, d_model, n_heads, batch_size, members, ensemble, micro_batch_size, seq_len, vocab, backend,
 * backend_detail, threads, fused_layers, ms_per_step, ms_per_member_step, vs_one_member, ms_min, ms_max, steps_timed, tokens_per_s,
 * gflop_per_step, gflops, peak_gflops, peak_share, wasm_heap_bytes, cpu, load. A backend that is not installed is skipped (a
 * `{"backend", "skipped"}` line); so is a model whose step is predicted (from the previous model's
 * GFLOP/s on that backend) to exceed `--max-step-seconds`, with `ms_per_step: null`.
 *
 * `--ablate` also times every model with GELU/LayerNorm/RMSNorm as plain op chains instead of the
 * fused layers (`fused_layers: false`), to measure what the fusion pays (`--unfused`: only so); `wasm_heap_bytes` is the
 * wasm heap's size after the run (a high-water mark: it never shrinks within the process).
 * The native-BLAS lever is the `wasm-blas` rows against the `wasm` ones.
 *
 * `--micro-batch auto` splits the batch only when the step would not fit the wasm heap
 * (`wasmMicroBatch` in src/models/memory.ts); the optimizer step is the full batch's either way.
 */
import * as tf from '@tensorflow/tfjs-core';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { BACKEND_PREFERENCE, backendDescription, initBackend } from '../src/models/backend.js';
import type { BackendName } from '../src/models/backend.js';
import { countModel, trainsAsEnsemble } from '../src/models/arch/registry.js';
import { llamaHidden } from '../src/models/arch/llama.js';
import { mambaDtRank } from '../src/models/arch/mamba.js';
import { useFusedLayers } from '../src/models/layers.js';
import type { Arch, ModelConfig } from '../src/models/arch/registry.js';
import { wasmMicroBatch } from '../src/models/memory.js';
import { loadNativeBlas, measureBlasPeak } from '../src/models/native-blas.js';
import { makeRng } from '../src/models/train-rng.js';
import { trainEnsemble, trainModel } from '../src/models/train/trainer.js';
import type { Examples } from '../src/models/train/examples.js';
import type { TrainerConfig } from '../src/models/train/trainer.js';

const SEQ = 6;
const VOCAB = 1200;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const json = process.argv.includes('--json');
const ablate = process.argv.includes('--ablate');
const say = (line: string) => {
  if (!json) console.log(line);
};

/** `arch` at `n_layers × d_model` with `n_heads` heads, its other widths at their defaults. */
function modelConfig(arch: Arch, nLayers: number, dModel: number, nHeads: number): ModelConfig {
  const base = { n_layers: nLayers, d_model: dModel, vocab_size: VOCAB, seq_len: SEQ };
  switch (arch) {
    case 'gpt2':
      return { arch, ...base, n_heads: nHeads, d_mlp: 4 * dModel };
    case 'llama':
      return { arch, ...base, n_heads: nHeads, d_mlp: llamaHidden(dModel), tie_embeddings: false, rope_base: 10000 };
    case 'rwkv':
      return { arch, ...base, d_mlp: 4 * dModel };
    case 'mamba':
      return { arch, ...base, d_state: 16, expand: 2, d_conv: 4, dt_rank: mambaDtRank(dModel), tie_embeddings: true };
  }
}

/**
 * Nominal FLOPs of one training step (models/arch/architecture.ts convention, Kaplan et al. 2020 §2.1): three
 * forward passes' worth (`3 ·`) of every token's matrices and sequence mixing, plus the
 * unembedding at the answer position only. For GPT-2 2×128 this is the issue's 7.8 GFLOP.
 * The same number for every backend, whatever each skips (ours skips the last layer's work at
 * non-answer positions), so GFLOP/s compare times.
 */
function stepFlops(config: ModelConfig, batch: number): number {
  const unembed = 2 * config.d_model * config.vocab_size;
  return 3 * batch * (SEQ * (countModel(config).flops_per_token - unembed) + unembed);
}

/** `n` random facts of `SEQ` tokens, answer at the last position. */
function randomFacts(n: number, seed: number): Examples {
  const rng = makeRng(seed);
  const tokens = Int32Array.from({ length: n * SEQ }, () => (rng.next() >>> 0) % VOCAB);
  const targets = Int32Array.from({ length: n }, () => (rng.next() >>> 0) % VOCAB);
  return { tokens, positions: new Int32Array(n).fill(SEQ - 1), targets, n, seqLen: SEQ };
}

/**
 * Step times (ms) of `steps` steps after `warmup`, stopping early once `maxMs` is spent. With
 * `members` > 1, that many models (seeds 0, 1, ...), each with its own data, train as one ensemble
 * (`ensemble`), else side by side, one step of each in turn (the trainer yields between steps); a
 * time is one step of all of them.
 */
async function timeSteps(
  config: ModelConfig,
  batch: number,
  micro: number,
  steps: number,
  warmup: number,
  maxMs: number,
  members = 1,
  ensemble = false,
): Promise<{ times: number[]; cpu: number[] }> {
  const trainer = (seed: number): TrainerConfig => ({
    model: config,
    optimizer: { lr: 1e-3, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 100, grad_clip: 1 },
    batchSize: batch,
    microBatchSize: micro < batch ? micro : undefined,
    maxSteps: warmup + steps + 1,
    evalEvery: 1_000_000, // evaluations at step 0 and the last step only, outside the timed steps
    evalSize: 1,
    seed,
    checkpointEvery: 0,
  });
  const stamps: number[] = [];
  const cpuStamps: number[] = [];
  let calls = 0;
  const started = performance.now();
  const stop = new AbortController();
  const request = (member: number) => ({
    config: trainer(member),
    train: randomFacts(batch * 4, 1 + 2 * member),
    tests: new Map([['test', randomFacts(1, 2 + 2 * member)]]),
    options: {
      signal: stop.signal,
      events: {
        onStep: () => {
          if (++calls % members !== 0) return; // a round: every member has made this step
          stamps.push(performance.now());
          const c = process.cpuUsage();
          cpuStamps.push((c.user + c.system) / 1000);
          if (stamps.length > warmup + 2 && performance.now() - started > maxMs) stop.abort();
        },
      },
    },
  });
  const one = async (member: number) => {
    const r = request(member);
    (await trainModel(r.config, r.train, r.tests, r.options)).model.dispose();
  };
  try {
    if (ensemble) {
      const results = await trainEnsemble(Array.from({ length: members }, (_, i) => request(i)));
      for (const r of results) r.model.dispose();
    } else await Promise.all(Array.from({ length: members }, (_, i) => one(i)));
  } catch (err) {
    if (!stop.signal.aborted) throw err; // out of time: trainModel disposed its tensors; keep the steps timed so far
  }
  // stamps[k] follows step k; step k takes stamps[k] - stamps[k - 1]; the last step includes an evaluation.
  const times: number[] = [];
  const cpu: number[] = [];
  for (let k = warmup + 1; k <= warmup + steps && k < stamps.length - (stop.signal.aborted ? 0 : 1); k++) {
    times.push(stamps[k] - stamps[k - 1]);
    cpu.push(cpuStamps[k] - cpuStamps[k - 1]);
  }
  return { times, cpu };
}

/** A model of the `--models` list: `n_layers x d_model x n_heads[@batch][*members]`. */
interface ModelSpec {
  nLayers: number;
  dModel: number;
  nHeads: number;
  batch: number;
  members: number;
}

/** Parses `--models`. @throws Error naming a malformed entry. */
function parseModels(list: string, batch: number): ModelSpec[] {
  return list.split(',').map((m) => {
    const match = /^(\d+)x(\d+)x(\d+)(?:@(\d+))?(?:\*(\d+))?$/.exec(m.trim());
    if (!match) throw new Error(`--models: "${m}" is not n_layers x d_model x n_heads[@batch][*members]`);
    const [nLayers, dModel, nHeads] = [1, 2, 3].map((i) => Number(match[i]));
    return { nLayers, dModel, nHeads, batch: Number(match[4] ?? batch), members: Number(match[5] ?? 1) };
  });
}

/** A PyTorch reference time: the median ms of a step, how it trained members, the torch version. */
interface Reference {
  ms: number;
  /** Median CPU ms of the Python process a step. */
  cpuMs: number;
  way: string;
  torch: string;
}

/** The Python interpreter that imports torch (see the module comment), or why there is none. */
async function findPython(): Promise<{ python: string } | { error: string }> {
  if (process.argv.includes('--no-reference')) return { error: '--no-reference' };
  const repo = fileURLToPath(new URL('..', import.meta.url));
  const given = arg('python', process.env.GROKPIPE_PYTHON ?? '');
  const venv = `${repo}.venv/bin/python`;
  const candidates = given ? [given] : [...(existsSync(venv) ? [venv] : []), 'python3'];
  for (const python of candidates) {
    const r = await execa(python, ['-c', 'import torch'], { reject: false });
    if (r.exitCode === 0) return { python };
  }
  return { error: `no PyTorch in ${candidates.join(', ')} (pip install torch==2.13.0, or --python PATH)` };
}

/**
 * Times `spec` with bench/reference/pytorch_train_step.py (same steps and warm-up).
 * @throws Error when the script fails.
 */
async function pytorchReference(python: string, spec: ModelSpec): Promise<Reference> {
  const script = fileURLToPath(new URL('reference/pytorch_train_step.py', import.meta.url));
  const r = await execa(python, [
    script,
    ...['--models', `${spec.nLayers}x${spec.dModel}x${spec.nHeads}`, '--batch', String(spec.batch)],
    ...['--members', String(spec.members), '--steps', String(steps), '--warmup', String(warmup)],
    ...['--threads', String(threads)],
  ]);
  const rows = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map(
      (l) =>
        JSON.parse(l) as {
          ms_per_step: number;
          cpu_ms_per_step: number;
          members?: number;
          ensemble?: string;
          torch: string;
        },
    );
  const mine = rows.filter((x) => (x.members ?? 1) === spec.members);
  const best = mine.reduce((a, b) => (b.ms_per_step < a.ms_per_step ? b : a));
  const way =
    spec.members > 1
      ? `${best.ensemble}, ${mine.map((x) => `${x.ensemble} ${x.ms_per_step}`).join(' / ')} ms`
      : 'one model';
  return { ms: best.ms_per_step, cpuMs: best.cpu_ms_per_step, way, torch: best.torch };
}

/** The matmul peak of this machine in GFLOP/s: the best of BLAS (2048³, all threads) and wasm (1024³). */
async function measurePeak(): Promise<{ gflops: number; source: string }> {
  const blas = loadNativeBlas();
  if (!('error' in blas)) return { gflops: measureBlasPeak(2048), source: `${blas.config ?? blas.path} sgemm 2048³` };
  await initBackend('wasm');
  const n = 1024;
  const [a, b] = [tf.randomNormal([n, n]), tf.randomNormal([n, n])];
  tf.matMul(a, b).dispose();
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) tf.matMul(a, b).dataSync();
  const s = (performance.now() - t0) / 3 / 1000;
  tf.dispose([a, b]);
  return { gflops: (2 * n ** 3) / s / 1e9, source: 'wasm matMul 1024³' };
}

/** Threads doing the numbers: BLAS's for wasm-blas, libtensorflow's intra-op pool (all cores by default), one for wasm and cpu. */
function backendThreads(backend: BackendName): number {
  if (backend === 'wasm-blas') {
    const blas = loadNativeBlas();
    return 'error' in blas ? 1 : (blas.threads ?? os.availableParallelism());
  }
  return backend === 'wasm' || backend === 'cpu'
    ? 1
    : Number(process.env.TF_NUM_INTRAOP_THREADS ?? os.availableParallelism());
}

/** Bytes the wasm heap has grown to (it never shrinks: the high-water mark so far), or null off wasm. */
function wasmHeapBytes(): number | null {
  const b = tf.backend() as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.length ?? null;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];

const steps = Number(arg('steps', '5'));
const warmup = Number(arg('warmup', '2'));
const batchArg = Number(arg('batch', '512'));
const models = parseModels(arg('models', '2x64x4@128,2x64x4@128*8,2x128x4,4x256x8,8x768x12'), batchArg);
const archs = arg('archs', 'gpt2').split(',') as Arch[];
const backends = arg('backends', BACKEND_PREFERENCE.join(',')).split(',') as BackendName[];
const microArg = arg('micro-batch', 'auto');
const threads = Number(arg('threads', String(os.availableParallelism())));
const maxStepMs = Number(arg('max-step-seconds', '60')) * 1000;
const cpu = `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`;
const python = await findPython();
const references = new Map<string, Reference | { error: string }>();
/** Wall and CPU ms of a step of one model, by backend, size and fusion, for the `vs_one_member` of ensembles. */
const oneMember = new Map<string, { ms: number; cpuMs: number }>();

/** The PyTorch reference of a GPT-2 spec, measured once (on first use) and kept. */
async function reference(spec: ModelSpec): Promise<Reference | { error: string }> {
  const id = JSON.stringify(spec);
  let ref = references.get(id);
  if (!ref) {
    if ('error' in python) ref = python;
    else {
      try {
        ref = await pytorchReference(python.python, spec);
      } catch (err) {
        ref = { error: (err as Error).message.split('\n').slice(-1)[0] };
      }
    }
    references.set(id, ref);
  }
  return ref;
}

const peak = await measurePeak();
say(
  `train step: ${SEQ} tokens, vocab ${VOCAB}; median of ${steps} steps after ${warmup} warm-up; ${cpu}; load ${os.loadavg()[0].toFixed(1)}; matmul peak ${peak.gflops.toFixed(0)} GFLOP/s (${peak.source})`,
);
say(`PyTorch reference: ${'error' in python ? `none (${python.error})` : python.python}`);
say(
  `${'backend'.padEnd(10)} ${'model'.padEnd(26)} ${'micro'.padStart(5)} ${'ms/step'.padStart(9)} ${'tokens/s'.padStart(9)} ${'GFLOP/s'.padStart(8)} ${'of peak'.padStart(7)} ${'vs torch'.padStart(8)}`,
);
for (const requested of backends) {
  let backend: BackendName;
  try {
    backend = await initBackend(requested, { threads });
  } catch (err) {
    const reason = (err as Error).message.split(';')[0];
    if (json) console.log(JSON.stringify({ backend: requested, skipped: reason }));
    say(`${requested.padEnd(10)} skipped: ${reason}`);
    continue;
  }
  for (const arch of archs) {
    let gflops: number | undefined; // of the previous model on this backend, to predict the next
    for (const spec of models) {
      const { nLayers, dModel, nHeads, batch, members } = spec;
      const config = modelConfig(arch, nLayers, dModel, nHeads);
      const flops = members * stepFlops(config, batch);
      const micro = microArg === 'auto' ? wasmMicroBatch(config, batch, SEQ) : Math.min(batch, Number(microArg));
      const row = {
        arch,
        n_layers: nLayers,
        d_model: dModel,
        n_heads: arch === 'gpt2' || arch === 'llama' ? nHeads : null,
        batch_size: batch,
        members,
        micro_batch_size: micro,
        seq_len: SEQ,
        vocab: VOCAB,
        backend,
        backend_detail: backendDescription() ?? backend,
        threads: backendThreads(backend),
      };
      const ensemble = members > 1 && trainsAsEnsemble(arch) && !process.argv.includes('--side-by-side');
      const label = `${arch} ${nLayers}x${dModel} b${batch}${members > 1 ? ` x${members} ${ensemble ? 'ensemble' : 'models'}` : ''}`;
      const predicted = gflops ? flops / (gflops * 1e9) : 0;
      if (predicted * 1000 > maxStepMs) {
        const skipped = `predicted ${predicted.toFixed(0)} s/step from the previous model, over --max-step-seconds`;
        if (json) console.log(JSON.stringify({ ...row, ms_per_step: null, skipped }));
        say(`${backend.padEnd(10)} ${label.padEnd(26)} ${String(micro).padStart(5)} skipped: ${skipped}`);
        continue;
      }
      for (const fused of ablate ? [true, false] : [!process.argv.includes('--unfused')]) {
        useFusedLayers(fused);
        const { times, cpu: cpuTimes } = await timeSteps(
          config,
          batch,
          micro,
          steps,
          warmup,
          maxStepMs * (steps + warmup),
          members,
          ensemble,
        );
        useFusedLayers(true);
        const ms = median(times);
        const cpuMs = median(cpuTimes);
        const achieved = flops / (ms / 1000) / 1e9;
        if (fused) gflops = achieved;
        const ref = arch === 'gpt2' ? await reference(spec) : { error: 'the reference is GPT-2 only' };
        const sizeKey = `${backend} ${arch} ${nLayers}x${dModel}x${nHeads}@${batch} ${fused}`;
        if (members === 1) oneMember.set(sizeKey, { ms, cpuMs });
        const one = oneMember.get(sizeKey);
        const result = {
          ...row,
          ensemble,
          fused_layers: fused,
          ms_per_step: +ms.toFixed(1),
          ms_per_member_step: +(ms / members).toFixed(2),
          vs_one_member: members > 1 && one !== undefined ? +(ms / one.ms).toFixed(2) : null,
          cpu_ms_per_step: +cpuMs.toFixed(1),
          cpu_vs_one_member: members > 1 && one !== undefined ? +(cpuMs / one.cpuMs).toFixed(2) : null,
          ms_min: +Math.min(...times).toFixed(1),
          ms_max: +Math.max(...times).toFixed(1),
          steps_timed: times.length,
          tokens_per_s: Math.round((members * batch * SEQ) / (ms / 1000)),
          gflop_per_step: +(flops / 1e9).toFixed(2),
          gflops: +achieved.toFixed(1),
          peak_gflops: +peak.gflops.toFixed(1),
          peak_share: +(achieved / peak.gflops).toFixed(3),
          wasm_heap_bytes: wasmHeapBytes(),
          pytorch_ms: 'error' in ref ? null : ref.ms,
          pytorch_way: 'error' in ref ? ref.error : ref.way,
          torch: 'error' in ref ? null : ref.torch,
          vs_pytorch: 'error' in ref ? null : +(ms / ref.ms).toFixed(2),
          pytorch_cpu_ms: 'error' in ref ? null : ref.cpuMs,
          cpu_vs_pytorch: 'error' in ref ? null : +(cpuMs / ref.cpuMs).toFixed(2),
          cpu,
          load: +os.loadavg()[0].toFixed(2),
        };
        if (json) console.log(JSON.stringify(result));
        say(
          `${backend.padEnd(10)} ${(fused ? label : `${label} [unfused]`).padEnd(26)} ${String(micro).padStart(5)} ${ms.toFixed(1).padStart(9)} ` +
            `${String(result.tokens_per_s).padStart(9)} ${achieved.toFixed(1).padStart(8)} ${(100 * result.peak_share).toFixed(1).padStart(6)}% ` +
            `${(result.vs_pytorch === null ? '-' : `${result.vs_pytorch}x`).padStart(8)}  ` +
            `(${times.length} steps, min ${result.ms_min}, max ${result.ms_max}` +
            `; CPU ${result.cpu_ms_per_step} ms` +
            ('error' in ref ? '' : ` (${result.cpu_vs_pytorch}x PyTorch's ${ref.cpuMs})`) +
            (members > 1
              ? `; ${result.ms_per_member_step} ms a member-step` +
                (result.vs_one_member === null
                  ? ''
                  : `, ${result.vs_one_member}x one model's step (CPU ${result.cpu_vs_one_member}x)`)
              : '') +
            `; PyTorch ${'error' in ref ? ref.error : `${ref.torch} ${ref.ms} ms, ${ref.way}`})`,
        );
      }
    }
  }
  if (tf.memory().numTensors !== 0) say(`  note: ${tf.memory().numTensors} tensors left on ${backend}`);
}

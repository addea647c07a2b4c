/**
 * Ensembles (`models/members.ts`, `trainEnsemble`): three runs of different seeds, data, learning
 * rates and weight decays trained as one batched network give each run's solo weights and curve,
 * bit for bit on `wasm-blas` and `cpu`, to float rounding on `wasm` (its batched products sum in
 * another order than its single ones); one batched step's gradients equal each member's solo
 * gradients; a shared Grokfast filter, kept checkpoints and the final state are each member's own;
 * members' checkpoints have one run's format (an ensemble resumes its own, a run alone resumes a
 * member's); and what may not train together is refused.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createEnsemble, createModel } from '../src/models/arch/factories.js';
import type { Arch } from '../src/models/arch/registry.js';
import { initBackend } from '../src/models/backend.js';
import type { BackendName } from '../src/models/backend-names.js';
import { loadNativeBlas } from '../src/models/native-blas.js';
import { makeRng } from '../src/models/train-rng.js';
import { batchGradients, membersBatchGradients } from '../src/models/train/loss.js';
import { trainEnsemble, trainModel } from '../src/models/train/trainer.js';
import type { TrainerConfig, TrainRequest, TrainResult } from '../src/models/train/trainer.js';
import type { LanguageModel } from '../src/models/model.js';
import { maxRelDiff, tinyConfig, tinyFacts } from './model-arch-helpers.js';

const native = loadNativeBlas();
/** Backends whose ensembles equal solo runs bit for bit. */
const BITWISE: BackendName[] = 'error' in native ? ['cpu'] : ['wasm-blas', 'cpu'];

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gp-ens-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A run: batch 8, 12 steps, evaluated every 4; eps 1e-4 (see test/model-microbatch.test.ts). */
function config(arch: Arch, seed: number, lr: number, weight_decay: number): TrainerConfig {
  return {
    model: tinyConfig(arch, 24, 3),
    optimizer: { lr, weight_decay, beta1: 0.9, beta2: 0.98, eps: 1e-4, warmup_steps: 3, grad_clip: 1 },
    batchSize: 8,
    maxSteps: 12,
    evalEvery: 4,
    evalSize: 10,
    seed,
    checkpointEvery: 0,
  };
}

/**
 * Three runs of `arch`: seeds 1-3, learning rates 3e-3, 1e-3, 5e-3, weight decays 0.1, 0, 0.5,
 * training sets of 30, 40 and 25 facts and test sets of their own (of `testSizes`).
 */
function requests(arch: Arch, testSizes = [10, 10, 10]): TrainRequest[] {
  const sizes = [30, 40, 25];
  const knobs: [number, number][] = [
    [3e-3, 0.1],
    [1e-3, 0],
    [5e-3, 0.5],
  ];
  return knobs.map(([lr, wd], m) => ({
    config: config(arch, m + 1, lr, wd),
    train: tinyFacts(sizes[m], 10 + m),
    tests: new Map([
      ['id_inferred', tinyFacts(testSizes[m], 20 + m)],
      ['ood_inferred', tinyFacts(testSizes[m], 30 + m)],
    ]),
  }));
}

/** Each run's weights by name; disposes the models. */
async function weightsOf(results: TrainResult[]): Promise<Map<string, Float32Array>[]> {
  const out: Map<string, Float32Array>[] = [];
  for (const r of results) {
    const w = new Map<string, Float32Array>();
    for (const [name, p] of r.model.params) w.set(name, (await p.data()) as Float32Array);
    r.model.dispose();
    out.push(w);
  }
  return out;
}

/** Largest relative difference over all parameters of two runs. */
function worstRelDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  return Math.max(...[...b].map(([name, w]) => maxRelDiff(a.get(name) as Float32Array, w)));
}

/** Whether every parameter is equal bit for bit (the names and order too). */
function sameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if ([...a.keys()].join() !== [...b.keys()].join()) return false;
  return [...a].every(([name, w]) => {
    const v = b.get(name) as Float32Array;
    return Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  });
}

/** Trains `reqs` as one ensemble and each alone. */
async function ensembleAndSolo(reqs: TrainRequest[]) {
  const before = tf.memory().numTensors;
  const ensemble = await trainEnsemble(reqs);
  const ensCurves = ensemble.map((r) => r.curve);
  const ensWeights = await weightsOf(ensemble);
  expect(tf.memory().numTensors, 'tensors left by the ensemble').toBe(before);
  const solo = await Promise.all(reqs.map((r) => trainModel(r.config, r.train, r.tests)));
  const soloCurves = solo.map((r) => r.curve);
  return { ensCurves, ensWeights, soloCurves, soloWeights: await weightsOf(solo) };
}

describe.each(['gpt2', 'llama'] as Arch[])('%s: an ensemble of three equals three runs alone', (arch) => {
  it.each(BITWISE)(
    '%s: weights and curves bit for bit',
    async (backend) => {
      await initBackend(backend);
      const { ensCurves, ensWeights, soloCurves, soloWeights } = await ensembleAndSolo(requests(arch));
      for (let m = 0; m < 3; m++) {
        expect(sameBits(ensWeights[m], soloWeights[m]), `member ${m}'s weights`).toBe(true);
        expect(ensCurves[m], `member ${m}'s curve`).toEqual(soloCurves[m]);
      }
      // The members really differ (own seeds, data and knobs).
      expect(worstRelDiff(ensWeights[0], ensWeights[1])).toBeGreaterThan(0.1);
    },
    60_000,
  );

  it('wasm: weights and curves to float rounding', async () => {
    await initBackend('wasm');
    const { ensCurves, ensWeights, soloCurves, soloWeights } = await ensembleAndSolo(requests(arch));
    for (let m = 0; m < 3; m++) {
      expect(worstRelDiff(ensWeights[m], soloWeights[m]), `member ${m}'s weights`).toBeLessThan(1e-4);
      expect(ensCurves[m].length).toBe(soloCurves[m].length);
      ensCurves[m].forEach((row, i) => {
        const solo = soloCurves[m][i];
        const blank = { loss: 0, accuracy: 0, norms: undefined };
        expect({ ...row, ...blank }).toEqual({ ...solo, ...blank });
        expect(Math.abs(row.norms.total - solo.norms.total) / solo.norms.total).toBeLessThan(1e-4);
        expect(Math.abs(row.loss - solo.loss), `${row.type} at ${row.step}`).toBeLessThan(1e-5);
        expect(Math.abs(row.accuracy - solo.accuracy)).toBeLessThanOrEqual(1 / 10);
      });
    }
  }, 60_000);

  it("one batched step's gradients equal each member's own (wasm, to 1e-5)", async () => {
    await initBackend('wasm');
    const reqs = requests(arch);
    const indices = reqs.map((r) => Int32Array.from({ length: 8 }, (_, i) => (i * 3) % r.train.n));
    const ensemble = createEnsemble(
      reqs[0].config.model,
      reqs.map((r) => makeRng(r.config.seed)),
    );
    const stacked = membersBatchGradients(
      ensemble,
      reqs.map((r) => r.train),
      indices,
      8,
    );
    const losses = stacked.loss.dataSync();
    for (const [m, r] of reqs.entries()) {
      const model = createModel(r.config.model, makeRng(r.config.seed));
      const alone = batchGradients(model, r.train, indices[m], 8);
      expect(Math.abs(losses[m] - alone.loss.dataSync()[0])).toBeLessThan(1e-6);
      for (const [name, g] of alone.grads) {
        const all = stacked.grads.get(name)?.dataSync() as Float32Array;
        const mine = all.subarray(m * g.size, (m + 1) * g.size);
        expect(maxRelDiff(g.dataSync() as Float32Array, mine), `${name} of member ${m}`).toBeLessThan(1e-5);
      }
      tf.dispose([...alone.grads.values(), alone.loss, alone.accuracy]);
      model.dispose();
    }
    tf.dispose([...stacked.grads.values(), stacked.loss, stacked.accuracy]);
    ensemble.dispose();
  });
});

describe('ensembles: evaluation, checkpoints, refusals', () => {
  const backend = BITWISE[0];

  it(`${backend}: members with a shared Grokfast filter equal the runs alone with it`, async () => {
    await initBackend(backend);
    const reqs = requests('gpt2').map((r) => ({
      ...r,
      config: { ...r.config, gradFilter: { kind: 'ema' as const, alpha: 0.9, lambda: 2 } },
    }));
    const { ensCurves, ensWeights, soloCurves, soloWeights } = await ensembleAndSolo(reqs);
    for (let m = 0; m < 3; m++) {
      expect(sameBits(ensWeights[m], soloWeights[m]), `member ${m}'s weights`).toBe(true);
      expect(ensCurves[m]).toEqual(soloCurves[m]);
    }
  }, 60_000);

  it(`${backend}: each member's kept checkpoints and final state are the run alone's`, async () => {
    await initBackend(backend);
    const saved = (into: Map<string, string>) => ({
      keep: {
        steps: [0, 5],
        save: async (step: number, model: LanguageModel) => {
          const bytes: string[] = [];
          for (const p of model.params.values()) bytes.push(Buffer.from((await p.data()).buffer).toString('base64'));
          into.set(`kept ${step}`, bytes.join());
        },
      },
      onFinalState: async (files: [string, Uint8Array | string][]) => {
        for (const [name, data] of files) into.set(name, Buffer.from(data).toString('base64'));
      },
    });
    const reqs = requests('gpt2');
    const ens = reqs.map(() => new Map<string, string>());
    for (const r of await trainEnsemble(reqs.map((r, m) => ({ ...r, options: saved(ens[m]) })))) r.model.dispose();
    for (const [m, r] of reqs.entries()) {
      const alone = new Map<string, string>();
      (await trainModel(r.config, r.train, r.tests, saved(alone))).model.dispose();
      expect([...ens[m].keys()].sort()).toEqual([
        'checkpoint-000000012.json',
        'checkpoint-000000012.safetensors',
        'kept 0',
        'kept 5',
      ]);
      expect(ens[m], `member ${m}`).toEqual(alone);
    }
  }, 60_000);

  it(`${backend}: members with test sets of different sizes get their own curves (to 1e-6)`, async () => {
    await initBackend(backend);
    const { ensCurves, ensWeights, soloCurves, soloWeights } = await ensembleAndSolo(requests('gpt2', [10, 7, 4]));
    for (let m = 0; m < 3; m++) {
      expect(sameBits(ensWeights[m], soloWeights[m])).toBe(true);
      ensCurves[m].forEach((row, i) => {
        expect(Math.abs(row.loss - soloCurves[m][i].loss)).toBeLessThan(1e-6);
        expect(row.accuracy).toBe(soloCurves[m][i].accuracy);
      });
    }
  }, 60_000);

  it(`${backend}: an interrupted ensemble resumes its members, and a run alone resumes a member's checkpoint`, async () => {
    await initBackend(backend);
    const reqs = requests('gpt2').map((r) => ({ ...r, config: { ...r.config, checkpointEvery: 4 } }));
    const whole = await weightsOf(await trainEnsemble(reqs));
    const ckpt = reqs.map(() => tempDir());
    const controller = new AbortController();
    const interrupted = reqs.map((r, m) => ({
      ...r,
      options: {
        checkpointDir: ckpt[m],
        signal: controller.signal,
        events: { onStep: (s: { step: number }) => (s.step === 6 ? controller.abort(new Error('stop')) : undefined) },
      },
    }));
    await expect(trainEnsemble(interrupted)).rejects.toThrow('stop');
    // A run alone on member 1's checkpoint resumes at step 6 and ends as the uninterrupted member.
    const copy = tempDir();
    cpSync(ckpt[1], copy, { recursive: true });
    const alone = await trainModel(reqs[1].config, reqs[1].train, reqs[1].tests, { checkpointDir: copy });
    expect(alone.resumedFrom).toBe(6);
    expect(sameBits((await weightsOf([alone]))[0], whole[1])).toBe(true);
    // The ensemble resumes all three at step 6 and ends as the uninterrupted ensemble.
    const logs: string[] = [];
    const resumed = await trainEnsemble(
      reqs.map((r, m) => ({
        ...r,
        options: { checkpointDir: ckpt[m], events: { onLog: (l: string) => logs.push(l) } },
      })),
    );
    expect(resumed.map((r) => r.resumedFrom)).toEqual([6, 6, 6]);
    const again = await weightsOf(resumed);
    for (let m = 0; m < 3; m++) expect(sameBits(again[m], whole[m]), `member ${m}`).toBe(true);
    expect(logs.filter((l) => l === 'resumed from the checkpoint at step 6')).toHaveLength(3);
  }, 120_000);

  it('members whose checkpoints are at different steps all start from step 0', async () => {
    await initBackend(backend);
    const reqs = requests('gpt2').map((r) => ({ ...r, config: { ...r.config, maxSteps: 4, checkpointEvery: 2 } }));
    const ckpt = reqs.map(() => tempDir());
    const controller = new AbortController();
    // Only member 0 has a checkpoint: it trained alone, interrupted after step 2.
    await expect(
      trainModel(reqs[0].config, reqs[0].train, reqs[0].tests, {
        checkpointDir: ckpt[0],
        signal: controller.signal,
        events: { onStep: (s) => (s.step === 2 ? controller.abort(new Error('stop')) : undefined) },
      }),
    ).rejects.toThrow('stop');
    const logs: string[] = [];
    const results = await trainEnsemble(
      reqs.map((r, m) => ({
        ...r,
        options: { checkpointDir: ckpt[m], events: { onLog: (l: string) => logs.push(l) } },
      })),
    );
    expect(results.map((r) => r.resumedFrom)).toEqual([0, 0, 0]);
    expect(logs).toContain("the ensemble's checkpoints are at steps 2, 0, 0: every member starts from step 0");
    for (const r of results) r.model.dispose();
  }, 60_000);

  it('refuses runs that differ in more than seed, lr and weight decay, and architectures without an ensemble network', async () => {
    await initBackend(backend);
    const reqs = requests('gpt2');
    reqs[2] = { ...reqs[2], config: { ...reqs[2].config, batchSize: 4 } };
    await expect(trainEnsemble(reqs)).rejects.toThrow(
      'run 2 differs from run 0 in more than seed, lr and weight_decay',
    );
    expect(() => createEnsemble(tinyConfig('rwkv', 24, 3), [makeRng(1), makeRng(2)])).toThrow(
      'rwkv has no ensemble network',
    );
  });
});

// In-process, alternating: one model's trainer step vs an 8-member ensemble's step (GPT-2 2x64, batch 128).
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../../src/models/adamw.js';
import { createEnsemble, createModel } from '../../src/models/arch/factories.js';
import { initBackend } from '../../src/models/backend.js';
import { makeRng } from '../../src/models/train-rng.js';
import { batchGradients, membersBatchGradients } from '../../src/models/train/loss.js';
const M = Number(process.argv[2] ?? 8);
await initBackend(process.argv[3] ?? 'wasm-blas', { threads: Number(process.argv[4] ?? 1) });
const SEQ = 6, VOCAB = 1200, B = 128;
const config: any = { arch: 'gpt2', n_layers: 2, d_model: 64, n_heads: 4, d_mlp: 256, vocab_size: VOCAB, seq_len: SEQ };
const adamw = { lr: 1e-3, weight_decay: 0.1, beta1: 0.9, beta2: 0.98, eps: 1e-8, warmup_steps: 100, grad_clip: 1 };
const rng = makeRng(2);
const data = () => ({ tokens: Int32Array.from({ length: B * SEQ }, () => (rng.next() >>> 0) % VOCAB), positions: new Int32Array(B).fill(SEQ - 1), targets: Int32Array.from({ length: B }, () => (rng.next() >>> 0) % VOCAB), n: B, seqLen: SEQ });
const datas = Array.from({ length: M }, data);
const idx = Int32Array.from({ length: B }, (_, i) => i);
const solo = createModel(config, makeRng(1));
const soloOpt = new AdamW(solo.params, adamw, (n) => solo.decays(n));
const ens = createEnsemble(config, Array.from({ length: M }, (_, m) => makeRng(1 + m)));
const ensOpt = new AdamW(ens.params, new Array(M).fill(adamw), (n) => ens.decays(n));
const stepSolo = () => tf.tidy(() => { const g = batchGradients(solo, datas[0], idx, B); soloOpt.apply(g.grads); tf.dispose([g.accuracy]); });
const stepEns = () => tf.tidy(() => { const g = membersBatchGradients(ens, datas, new Array(M).fill(idx), B); ensOpt.apply(g.grads); tf.dispose([g.accuracy, g.loss]); });
const time = (f: () => void) => { const c0 = process.cpuUsage(); f(); (solo.params.values().next().value as tf.Variable).dataSync(); const c = process.cpuUsage(c0); return (c.user + c.system) / 1000; };
for (let i = 0; i < 5; i++) { stepSolo(); stepEns(); }
const a: number[] = [], b: number[] = [];
for (let i = 0; i < Number(process.argv[5] ?? 30); i++) { a.push(time(stepSolo)); b.push(time(stepEns)); }
const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1];
const min = (x: number[]) => Math.min(...x);
console.log(JSON.stringify({ members: M, backend: process.argv[3] ?? 'wasm-blas', threads: Number(process.argv[4] ?? 1), one_ms_median: +med(a).toFixed(1), one_ms_min: +min(a).toFixed(1), ensemble_ms_median: +med(b).toFixed(1), ensemble_ms_min: +min(b).toFixed(1), ratio_median: +(med(b) / med(a)).toFixed(2), ratio_min: +(min(b) / min(a)).toFixed(2) }));

import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/models/backend.js';
await initBackend('wasm-blas', { threads: 1 });
for (const n of [128, 1024]) {
  const x = tf.randomNormal([n, 1200]);
  const ts: number[] = [];
  for (let i = 0; i < 30; i++) { const t0 = performance.now(); const y = tf.exp(x); y.dataSync(); y.dispose(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  console.log(n, 'exp min', ts[0].toFixed(2), 'median', ts[15].toFixed(2), 'per 1k rows', (ts[0] / n * 1000).toFixed(2));
  const ts2: number[] = [];
  for (let i = 0; i < 30; i++) { const t0 = performance.now(); const y = tf.add(x, x); y.dataSync(); y.dispose(); ts2.push(performance.now() - t0); }
  ts2.sort((a, b) => a - b);
  console.log(n, 'add min', ts2[0].toFixed(2), 'median', ts2[15].toFixed(2));
}

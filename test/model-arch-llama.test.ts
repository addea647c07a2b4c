/**
 * LLaMA's rotary position embeddings (Su et al. 2021): the rotation matches its complex-number
 * definition, and the attention score of a query at position i and a key at position j depends
 * only on i − j.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { llamaHidden } from '../src/models/arch/llama.js';
import { applyRope, ropeTables } from '../src/models/arch/llama-model.js';
import { fillNormal, makeRng } from '../src/models/train-rng.js';
import { maxAbsDiff } from './model-arch-helpers.js';

const SEQ = 10;
const HEADS = 2;
const D_HEAD = 8;
const D = HEADS * D_HEAD;

beforeAll(async () => {
  await initBackend('wasm');
});

/** `x` `[D]` placed at every position of a `[1, SEQ, D]` tensor and rotated by RoPE. */
function rotatedEverywhere(x: Float32Array, base = 10000): number[][] {
  const { cos, sin } = ropeTables(SEQ, D_HEAD, base);
  return tf.tidy(() => {
    const rep = tf.tile(tf.tensor3d(x, [1, 1, D]), [1, SEQ, 1]) as tf.Tensor3D;
    const c = tf.tensor4d(cos, [1, SEQ, 1, D_HEAD]);
    const s = tf.tensor4d(sin, [1, SEQ, 1, D_HEAD]);
    return (applyRope(rep, c, s, HEADS).arraySync() as number[][][])[0];
  });
}

/** Per-head dot products of `q` rows and `k` rows: `score[h][i][j]`. */
function scores(q: number[][], k: number[][]): number[][][] {
  return Array.from({ length: HEADS }, (_, h) =>
    q.map((qi) =>
      k.map((kj) => qi.slice(h * D_HEAD, (h + 1) * D_HEAD).reduce((a, x, c) => a + x * kj[h * D_HEAD + c], 0)),
    ),
  );
}

describe('rotary position embeddings', () => {
  it('rotate each channel pair (c, c + d_head/2) of each head by t · base^(-2c/d_head)', () => {
    const x = fillNormal(makeRng(1), new Float32Array(D));
    const got = rotatedEverywhere(x);
    const half = D_HEAD / 2;
    for (let t = 0; t < SEQ; t++) {
      const want = new Float64Array(D);
      for (let h = 0; h < HEADS; h++) {
        for (let c = 0; c < half; c++) {
          const theta = t * Math.pow(10000, (-2 * c) / D_HEAD);
          const [re, im] = [x[h * D_HEAD + c], x[h * D_HEAD + c + half]]; // (re + i·im) · e^{iθ}
          want[h * D_HEAD + c] = re * Math.cos(theta) - im * Math.sin(theta);
          want[h * D_HEAD + c + half] = re * Math.sin(theta) + im * Math.cos(theta);
        }
      }
      expect(maxAbsDiff(got[t], want), `position ${t}`).toBeLessThan(1e-5);
    }
  });

  it('make the score of q at i and k at j depend only on i − j', () => {
    const q = rotatedEverywhere(fillNormal(makeRng(2), new Float32Array(D)));
    const k = rotatedEverywhere(fillNormal(makeRng(3), new Float32Array(D)));
    const s = scores(q, k);
    for (let h = 0; h < HEADS; h++) {
      for (let i = 0; i < SEQ; i++) {
        for (let j = 0; j < SEQ; j++) {
          // Same offset, another place: (i, j) against (i − min(i, j), j − min(i, j)).
          const m = Math.min(i, j);
          expect(Math.abs(s[h][i][j] - s[h][i - m][j - m]), `head ${h}, (${i}, ${j})`).toBeLessThan(1e-4);
        }
      }
      // And it does depend on the offset: the rotation is not the identity.
      expect(Math.abs(s[h][0][0] - s[h][3][0])).toBeGreaterThan(1e-3);
    }
  });

  it('leave position 0 unrotated', () => {
    const x = fillNormal(makeRng(4), new Float32Array(D));
    expect(maxAbsDiff(rotatedEverywhere(x)[0], x)).toBeLessThan(1e-6);
  });
});

describe('SwiGLU width', () => {
  it('is 8/3 · d_model rounded up to a multiple of 8', () => {
    expect([64, 128, 768, 4096].map(llamaHidden)).toEqual([176, 344, 2048, 10928]);
  });
});

/** The safetensors writer/reader: layout per the spec, round-trips, rejection of damaged files. */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { CONFIG_METADATA_KEY, modelFromSafetensors, modelToSafetensors } from '../src/models/weights.js';
import { createModel } from '../src/models/arch/factories.js';
import type { ModelConfig } from '../src/models/arch/registry.js';
import { makeRng } from '../src/models/train-rng.js';
import { SafetensorsError, decodeSafetensors, encodeSafetensors } from '../src/models/safetensors.js';

describe('safetensors', () => {
  it('lays out header length, space-padded JSON header and data as the spec says', () => {
    const bytes = encodeSafetensors(
      [
        ['a', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
        ['b', { dtype: 'I32', shape: [1], data: Int32Array.from([-7]) }],
        ['s', { dtype: 'F32', shape: [], data: Float32Array.from([0.5]) }],
      ],
      { format: 'pt' },
    );
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const n = Number(view.getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const text = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
    expect(text).toMatch(/^\{.*\} *$/);
    const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header.a).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.b).toEqual({ dtype: 'I32', shape: [1], data_offsets: [24, 28] });
    expect(header.s).toEqual({ dtype: 'F32', shape: [], data_offsets: [28, 32] });
    expect(bytes.byteLength).toBe(8 + n + 32);
    expect(view.getFloat32(8 + n + 4 * 5, true)).toBe(6);
    expect(view.getInt32(8 + n + 24, true)).toBe(-7);
  });

  it('round-trips every supported dtype and the metadata', () => {
    const tensors = new Map([
      ['f32', { dtype: 'F32' as const, shape: [3], data: Float32Array.from([1.5, -0, 3.4e38]) }],
      ['f64', { dtype: 'F64' as const, shape: [1, 2], data: Float64Array.from([Math.PI, -1e-300]) }],
      ['i32', { dtype: 'I32' as const, shape: [2], data: Int32Array.from([2 ** 31 - 1, -(2 ** 31)]) }],
      ['i64', { dtype: 'I64' as const, shape: [1], data: BigInt64Array.from([-(2n ** 62n)]) }],
      ['u8', { dtype: 'U8' as const, shape: [3], data: Uint8Array.from([0, 7, 255]) }],
      ['empty', { dtype: 'F32' as const, shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const bytes = encodeSafetensors(tensors, { x: 'y', config: '{"a":1}' });
    // Also from a Node Buffer at an odd offset of a larger allocation (as readFileSync may give).
    const pool = Buffer.alloc(bytes.length + 3);
    pool.set(bytes, 3);
    for (const input of [bytes, pool.subarray(3)]) {
      const back = decodeSafetensors(input);
      expect(back.metadata).toEqual({ x: 'y', config: '{"a":1}' });
      expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
      for (const [name, t] of tensors) expect(back.tensors.get(name)).toEqual(t);
    }
  });

  it('rejects damaged files', () => {
    const good = encodeSafetensors([['a', { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) }]]);
    expect(() => decodeSafetensors(good.subarray(0, 5))).toThrow(SafetensorsError);
    expect(() => decodeSafetensors(good.subarray(0, good.length - 1))).toThrow(/beyond|cover/);
    const extra = new Uint8Array(good.length + 4);
    extra.set(good);
    expect(() => decodeSafetensors(extra)).toThrow(/cover/);
    const badJson = good.slice();
    badJson[8] = 0x21;
    expect(() => decodeSafetensors(badJson)).toThrow(/JSON/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 10n ** 12n, true);
    expect(() => decodeSafetensors(huge)).toThrow(/header length/);
    expect(() => encodeSafetensors([['a', { dtype: 'F32', shape: [3], data: new Float32Array(2) }]])).toThrow(
      /needs 3/,
    );
  });

  it('a model saved and loaded gives identical logits', async () => {
    await initBackend('wasm');
    const config: ModelConfig = {
      arch: 'gpt2',
      n_layers: 2,
      d_model: 16,
      n_heads: 2,
      d_mlp: 24,
      vocab_size: 19,
      seq_len: 5,
    };
    const model = createModel(config, makeRng(11));
    const bytes = await modelToSafetensors(model);
    const meta = decodeSafetensors(bytes).metadata;
    expect(meta.format).toBe('pt');
    expect(JSON.parse(meta[CONFIG_METADATA_KEY])).toEqual(config);
    const loaded = modelFromSafetensors(bytes);
    const tokens = tf.tensor2d(
      Int32Array.from({ length: 15 }, (_, i) => (i * 5) % 19),
      [3, 5],
      'int32',
    );
    const a = tf.tidy(() => Array.from(model.logits(tokens).dataSync()));
    const b = tf.tidy(() => Array.from(loaded.logits(tokens).dataSync()));
    expect(b).toEqual(a);
    expect(() => modelFromSafetensors(bytes, { ...config, d_mlp: 32 })).toThrow(/mlp.c_fc.weight/);
    model.dispose();
    loaded.dispose();
    tokens.dispose();
  });
});

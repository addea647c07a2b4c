/**
 * The architecture registry (`src/models/arch/`): the train schema's per-architecture blocks agree
 * with the declarations (names, order, types, defaults), every declaration's config has exactly
 * its fields, and validation, checks and the log line go through the registry for every `arch`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Knob } from '../src/models/arch/architecture.js';
import {
  ARCHITECTURES,
  architecture,
  checkModel,
  describeModel,
  modelConfig,
  validateConfig,
} from '../src/models/arch/registry.js';
import type { Arch, ModelConfig, ModelParams } from '../src/models/arch/registry.js';

interface SchemaProperty {
  type?: string;
  default?: unknown;
  const?: string;
}
interface ArchBlock {
  if: { properties: { arch: { const: string } }; required: string[] };
  then: { properties: Record<string, SchemaProperty>; additionalProperties: boolean };
}
interface ModelSchema {
  description: string;
  allOf: [{ properties: { arch: { enum: string[]; default: string } } }, ...ArchBlock[]];
}

const schema = JSON.parse(readFileSync(new URL('../schemas/stages/train.schema.json', import.meta.url), 'utf8')) as {
  properties: { model: ModelSchema };
};
const model = schema.properties.model;
const arches = Object.keys(ARCHITECTURES) as Arch[];
const blocks = model.allOf.slice(1) as ArchBlock[];

/** A declaration's knobs as the schema would declare them. */
const asSchema = (knobs: Readonly<Record<string, Knob>>) =>
  Object.fromEntries(
    Object.entries(knobs).map(([name, k]) => [
      name,
      k.default === undefined ? { type: k.type } : { type: k.type, default: k.default },
    ]),
  );

/** The params the schema fills in for `arch` when nothing but the arch is given. */
const defaults = (arch: Arch): ModelParams =>
  ({
    arch,
    ...Object.fromEntries(
      Object.entries(ARCHITECTURES[arch].knobs).flatMap(([n, k]) => (k.default === undefined ? [] : [[n, k.default]])),
    ),
  }) as ModelParams;

describe('train schema against the registry', () => {
  it('offers exactly the registered architectures, in order', () => {
    expect(model.allOf[0].properties.arch.enum).toEqual(arches);
    expect(blocks.map((b) => b.if.properties.arch.const)).toEqual(arches);
  });

  it.each(arches)('%s: the block has the declared knobs, in order, with their types and defaults', (arch) => {
    const block = blocks.find((b) => b.if.properties.arch.const === arch) as ArchBlock;
    expect(block.if.required).toEqual(['arch']);
    expect(block.then.additionalProperties).toBe(false);
    const { arch: archProp, ...knobs } = block.then.properties;
    expect(archProp).toEqual({ const: arch });
    expect(Object.keys(knobs)).toEqual(Object.keys(ARCHITECTURES[arch].knobs));
    const declared = Object.fromEntries(
      Object.entries(knobs).map(([n, p]) => [
        n,
        p.default === undefined ? { type: p.type } : { type: p.type, default: p.default },
      ]),
    );
    expect(declared).toEqual(asSchema(ARCHITECTURES[arch].knobs));
    expect(model.description).toContain(`${arch}: ${Object.keys(knobs).join(', ')}.`);
  });
});

describe('architecture declarations', () => {
  it.each(arches)('%s: the config has exactly the knobs and the data sizes, and is valid', (arch) => {
    const config = modelConfig(defaults(arch), 60, 5);
    expect(config.arch).toBe(arch);
    expect(Object.keys(config).sort()).toEqual(
      ['arch', ...Object.keys(ARCHITECTURES[arch].knobs), 'vocab_size', 'seq_len'].sort(),
    );
    expect(() => validateConfig(config)).not.toThrow();
    expect(checkModel(defaults(arch))).toEqual([]);
  });

  it('names the field of a bad config', () => {
    const patched = (arch: Arch, patch: Record<string, unknown>) =>
      ({ ...modelConfig(defaults(arch), 60, 5), ...patch }) as ModelConfig;
    expect(() => validateConfig(patched('gpt2', { d_mlp: 2.5 }))).toThrow(
      'model.d_mlp must be a positive integer, got 2.5',
    );
    expect(() => validateConfig(patched('gpt2', { vocab_size: 0 }))).toThrow(/model\.vocab_size/);
    expect(() => validateConfig(patched('gpt2', { n_heads: 5 }))).toThrow(/model\.d_model.*divisible by n_heads/);
    expect(() => validateConfig(patched('llama', { d_model: 24, n_heads: 8 }))).toThrow(/model\.n_heads.*even/);
    expect(() => validateConfig(patched('llama', { rope_base: 1 }))).toThrow(/model\.rope_base/);
    expect(() => validateConfig(patched('mamba', { tie_embeddings: 1 }))).toThrow(
      'model.tie_embeddings must be true or false',
    );
    expect(() => validateConfig(patched('gpt2', { arch: 'lstm' }))).toThrow(
      'unknown model arch "lstm" (known: gpt2, llama, rwkv, mamba)',
    );
    expect(() => architecture('toString')).toThrow(/unknown model arch/);
  });

  it('describes each architecture in one log line', () => {
    const line = (arch: Arch) => describeModel(modelConfig(defaults(arch), 60, 5));
    expect(line('gpt2')).toBe('gpt2 2 layers, d_model 128, 4 heads, vocab 60');
    expect(line('llama')).toBe('llama 2 layers, d_model 128, 4 heads, vocab 60');
    expect(line('rwkv')).toBe('rwkv 2 layers, d_model 128, vocab 60');
    expect(line('mamba')).toBe('mamba 2 layers, d_model 128, d_state 16, expand 2, vocab 60');
  });
});

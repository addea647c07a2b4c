/**
 * The registry of architectures: one declaration per family (`architecture.ts` lists what a
 * declaration provides), and what the rest of grokpipe asks of an architecture by its `arch`:
 * the full config of stage params, consistency checks, validation of a config, the size count
 * and the log line. Without TF.js, so that the train stage can plan with it.
 *
 * Adding an architecture: its declaration `<arch>.ts` and a line in `ARCHITECTURES` here; its
 * network `<arch>-model.ts` and a line in `factories.ts` (a compile error until it is there); its
 * block in `schemas/stages/train.schema.json` (test/model-arch-registry.test.ts checks it).
 */
import type { Architecture, ModelCount, Problem } from './architecture.js';
import { gpt2 } from './gpt2.js';
import { llama } from './llama.js';
import { mamba } from './mamba.js';
import { rwkv } from './rwkv.js';

export type { ModelCount, Problem } from './architecture.js';

/** Every architecture, by `arch`. */
export const ARCHITECTURES = { gpt2, llama, rwkv, mamba };

/** The architectures' names (`model.arch`). */
export type Arch = keyof typeof ARCHITECTURES;

type ConfigOf<A> = A extends Architecture<infer C, infer _P> ? C : never;
type ParamsOf<A> = A extends Architecture<infer _C, infer P> ? P : never;

/** Full architecture config, as written to `model.json` and the safetensors metadata; `arch` picks the variant. */
export type ModelConfig = ConfigOf<(typeof ARCHITECTURES)[Arch]>;

/** Validated `with.model` params of the train stage (`schemas/stages/train.schema.json`). */
export type ModelParams = ParamsOf<(typeof ARCHITECTURES)[Arch]>;

/**
 * The declaration of `arch`.
 * @throws Error for an unknown `arch`, naming the known ones.
 */
export function architecture(arch: string): Architecture<ModelConfig, ModelParams> {
  if (!Object.hasOwn(ARCHITECTURES, arch)) {
    throw new Error(`unknown model arch "${arch}" (known: ${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  return ARCHITECTURES[arch as Arch] as Architecture<ModelConfig, ModelParams>;
}

/** The full architecture config of validated `model` params, with the omitted widths filled in. */
export function modelConfig(params: ModelParams, vocabSize: number, seqLen: number): ModelConfig {
  return architecture(params.arch).config(params, vocabSize, seqLen);
}

/** Problems across the fields of `model` params (e.g. `d_model % n_heads`); empty when consistent. */
export function checkModel(params: ModelParams): Problem[] {
  return architecture(params.arch).check(params);
}

/** Parameters and forward FLOPs per token of `config` (convention in `architecture.ts`). */
export function countModel(config: ModelConfig): ModelCount {
  return architecture(config.arch).count(config);
}

/** One line describing the architecture, for the log (`gpt2 2 layers, d_model 128, 4 heads, vocab 60`). */
export function describeModel(config: ModelConfig): string {
  const details = architecture(config.arch).describe(config);
  return `${config.arch} ${config.n_layers} layers, d_model ${config.d_model}${details ? `, ${details}` : ''}, vocab ${config.vocab_size}`;
}

/** Whether `arch` trains as an ensemble (`Architecture.ensembles`); false for an unknown one. */
export function trainsAsEnsemble(arch: string): boolean {
  return (
    Object.hasOwn(ARCHITECTURES, arch) && (ARCHITECTURES[arch as Arch] as { ensembles?: boolean }).ensembles === true
  );
}

/**
 * Checks a full config: a known `arch`, its integer fields (and vocab_size, seq_len) integers ≥ 1,
 * its true/false fields booleans, and the architecture's own checks.
 * @throws Error naming the first bad field of `config`.
 */
export function validateConfig(config: ModelConfig): void {
  const arch = architecture((config as { arch: string }).arch);
  const fields = config as unknown as Record<string, unknown>;
  const knobs = Object.entries(arch.knobs);
  const integers = [...knobs.filter(([, k]) => k.type === 'integer').map(([name]) => name), 'vocab_size', 'seq_len'];
  for (const key of integers) {
    const v = fields[key];
    if (!Number.isInteger(v) || (v as number) < 1)
      throw new Error(`model.${key} must be a positive integer, got ${String(v)}`);
  }
  for (const [key, knob] of knobs) {
    if (knob.type === 'boolean' && typeof fields[key] !== 'boolean')
      throw new Error(`model.${key} must be true or false`);
    if (knob.type === 'number' && typeof fields[key] !== 'number')
      throw new Error(`model.${key} must be a number, got ${String(fields[key])}`);
  }
  const [problem] = arch.check(config);
  if (problem) throw new Error(`model.${problem.field}: ${problem.message}`);
}

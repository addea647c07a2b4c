/**
 * What an architecture declares. `registry.ts` lists one declaration per family (`gpt2.ts`,
 * `llama.ts`, `rwkv.ts`, `mamba.ts`); the train stage, the size count, the log line and config
 * validation read them instead of switching on `arch`. Declarations import no TF.js: the train
 * stage checks its params with them while planning, and planning a cached pipeline never loads
 * TF.js. Each family's network (TF.js) is in `<arch>-model.ts`, built through `factories.ts`.
 *
 * An architecture provides (`Architecture`):
 * - `arch`: its name, the `model.arch` of a pipeline, of `model.json` and of the weights' metadata;
 * - its config type (`BaseConfig` plus its own fields) and its params type (`ArchParams`: the
 *   config without vocab_size and seq_len, the widths that depend on d_model optional);
 * - `knobs`: its fields in a pipeline's `with.model`, in schema order, each with its type and the
 *   schema's default (the block of `schemas/stages/train.schema.json` for it is checked against
 *   them by test/model-arch-registry.test.ts);
 * - `config`: the full config of params, omitted widths filled in (`model.json`, field order fixed);
 * - `check`: problems across fields that the schema cannot express (e.g. `d_model % n_heads`);
 * - `count`: trainable parameters and forward FLOPs per token (convention below);
 * - `describe`: its part of the train stage's log line (`4 heads`).
 *
 * FLOPs convention (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1): 2 FLOPs
 * per multiply–add of every weight matrix a token goes through (its embedding lookup is free; the
 * unembedding counts), plus the sequence mixing at a context of `seq_len` tokens: attention
 * (GPT-2, LLaMA) `2 · 2 · seq_len · d_model` per layer (scores and weighted values); RWKV's WKV
 * recurrence `11 · d_model` per layer; Mamba's selective scan `7 · E · N` per layer and its
 * convolution `2 · K · E` (derivations in `rwkv.ts` and `mamba.ts`). Norms, activations, gates and
 * residual adds are not counted. A training step costs about three forward passes (`6 ·`
 * parameters per token for the matrices).
 */

/** Every architecture's fields. */
export interface BaseConfig {
  /** Number of residual blocks. */
  n_layers: number;
  /** Residual stream width. */
  d_model: number;
  /** Vocabulary size (tokens). */
  vocab_size: number;
  /** Longest input sequence (positions of a learned position embedding; RoPE's longest position). */
  seq_len: number;
}

/**
 * The validated `with.model` params of an architecture whose config is `C`: the config without the
 * sizes the data sets (`vocab_size`, `seq_len`), the fields in `Derived` optional (filled from
 * d_model by `Architecture.config` when absent, and then absent from the params and the cache key).
 */
export type ArchParams<C extends BaseConfig, Derived extends keyof C = never> = Omit<
  C,
  Derived | 'vocab_size' | 'seq_len'
> &
  Partial<Pick<C, Derived>>;

/** A field of `with.model`: its JSON type (integers are ≥ 1) and the schema's default, if any. */
export interface Knob {
  readonly type: 'integer' | 'number' | 'boolean';
  /** Filled in by the schema when omitted (so part of the cache key); absent for derived widths. */
  readonly default?: number | boolean;
}

/** An integer knob (≥ 1), with the schema's default if it has one. */
export const integer = (value?: number): Knob =>
  value === undefined ? { type: 'integer' } : { type: 'integer', default: value };
/** A real-valued knob with the schema's default. */
export const real = (value: number): Knob => ({ type: 'number', default: value });
/** A true/false knob with the schema's default. */
export const boolean = (value: boolean): Knob => ({ type: 'boolean', default: value });

/** The knobs every architecture has, first in its schema block. */
export const COMMON_KNOBS = { n_layers: integer(2), d_model: integer(128) } as const;

/** A problem of a model's params or config: the field to point at and what is wrong. */
export interface Problem {
  field: string;
  message: string;
}

/** Size of a model, the same way for every architecture (recorded by the train stage as `model_size`). */
export interface ModelCount {
  /** Trainable parameters (equal to the sum of the sizes of `LanguageModel.params`). */
  parameters: number;
  /** Of which in the token/position embeddings and an untied unembedding. */
  embedding_parameters: number;
  /** Forward FLOPs per token at a context of `seq_len` tokens (module docstring). */
  flops_per_token: number;
}

/** What an architecture declares (module docstring). `C` is its config, `P` its params. */
export interface Architecture<C extends BaseConfig & { arch: string }, P extends { arch: C['arch'] }> {
  readonly arch: C['arch'];
  /** Its `with.model` fields besides `arch`, in the order of its schema block. */
  readonly knobs: Readonly<Record<string, Knob>>;
  /** The full config of validated params for a vocabulary of `vocabSize` and inputs of `seqLen` tokens. */
  config(params: P, vocabSize: number, seqLen: number): C;
  /** Problems across fields (params or a full config); empty when consistent. */
  check(model: P): Problem[];
  /** Parameters and forward FLOPs per token. */
  count(config: C): ModelCount;
  /** Its details for the log line, e.g. `4 heads`; empty for none. */
  describe(config: C): string;
  /**
   * Whether its network trains as an ensemble (several same-shape models as one batched network,
   * `models/members.ts`); absent: one model at a time only.
   */
  readonly ensembles?: boolean;
}

/** Attention splits d_model into `n_heads` heads of equal width (GPT-2, LLaMA). */
export function checkHeads(m: { d_model: number; n_heads: number }): Problem[] {
  if (m.d_model % m.n_heads === 0) return [];
  return [{ field: 'd_model', message: `d_model (${m.d_model}) must be divisible by n_heads (${m.n_heads})` }];
}

/** `checkHeads`, and the head width even: rotary embeddings (RoPE) rotate pairs of channels (LLaMA). */
export function checkRotaryHeads(m: { d_model: number; n_heads: number }): Problem[] {
  const heads = checkHeads(m);
  if (heads.length > 0 || (m.d_model / m.n_heads) % 2 === 0) return heads;
  return [
    {
      field: 'n_heads',
      message: `the head width d_model / n_heads (${m.d_model / m.n_heads}) must be even for rotary embeddings`,
    },
  ];
}

/**
 * The architecture-neutral model interface (DESIGN.md §5) and the factory by `arch`: GPT-2
 * (`gpt2.ts`), LLaMA (`llama.ts`), RWKV-4 (`rwkv.ts`) and Mamba-1 (`mamba.ts`), each with its own
 * config fields (`ModelConfig` is a union tagged by `arch`), all counted alike by `count.ts`.
 *
 * Every architecture maps token ids `[batch, seq]` to next-token logits `[batch, seq, vocab]`;
 * training and evaluation only need the logits at each example's answer position, which
 * `answerLogits` computes without projecting the other positions onto the vocabulary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createGpt2 } from './gpt2.js';
import { registerGradients } from './gradients.js';
import { createLlama } from './llama.js';
import { createMamba } from './mamba.js';
import { makeRng } from './random.js';
import type { Rng } from './random.js';
import { createRwkv } from './rwkv.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import type { NamedTensor } from './safetensors.js';

/** Architectures `createModel` knows. */
export type Arch = 'gpt2' | 'llama' | 'rwkv' | 'mamba';

/** Every architecture's fields. */
interface BaseConfig {
  /** Number of residual blocks. */
  n_layers: number;
  /** Residual stream width. */
  d_model: number;
  /** Vocabulary size (tokens). */
  vocab_size: number;
  /** Longest input sequence (positions of a learned position embedding; RoPE's longest position). */
  seq_len: number;
}

/** GPT-2 (`gpt2.ts`). Fields and their meaning are unchanged since the first release (cache keys). */
export interface Gpt2Config extends BaseConfig {
  arch: 'gpt2';
  /** Attention heads; `d_model % n_heads === 0`. */
  n_heads: number;
  /** Hidden width of the MLP (GPT-2: 4 · d_model). */
  d_mlp: number;
}

/** LLaMA (`llama.ts`). */
export interface LlamaConfig extends BaseConfig {
  arch: 'llama';
  /** Attention heads; `d_model / n_heads` must be even (RoPE rotates pairs of channels). */
  n_heads: number;
  /** Hidden width of the SwiGLU MLP (default `llamaHidden(d_model)`, about 8/3 · d_model). */
  d_mlp: number;
  /** Unembedding tied to the token embedding (LLaMA: false). */
  tie_embeddings: boolean;
  /** RoPE base θ (LLaMA: 10000). */
  rope_base: number;
}

/** RWKV-4 (`rwkv.ts`). */
export interface RwkvConfig extends BaseConfig {
  arch: 'rwkv';
  /** Hidden width of the channel-mixing block (RWKV-4: 4 · d_model). */
  d_mlp: number;
}

/** Mamba-1 (`mamba.ts`). */
export interface MambaConfig extends BaseConfig {
  arch: 'mamba';
  /** State size N per channel (Mamba: 16). */
  d_state: number;
  /** Inner width E = expand · d_model (Mamba: 2). */
  expand: number;
  /** Kernel of the causal depthwise convolution (Mamba: 4). */
  d_conv: number;
  /** Rank of the Δ projection (Mamba: ceil(d_model / 16)). */
  dt_rank: number;
  /** Unembedding tied to the token embedding (Mamba: true). */
  tie_embeddings: boolean;
}

/** Full architecture config, as written to `model.json` and the safetensors metadata; `arch` picks the variant. */
export type ModelConfig = Gpt2Config | LlamaConfig | RwkvConfig | MambaConfig;

export { llamaHidden, mambaDtRank } from './count.js';

/** A language model over token ids. Its methods are pure tensor code: call inside `tf.tidy`. */
export interface LanguageModel {
  /** The architecture config it was built from. */
  readonly config: ModelConfig;
  /**
   * Trainable parameters by checkpoint name, in a fixed order: Hugging Face names for GPT-2
   * (`transformer.h.0.attn.c_attn.weight`) and LLaMA (`model.layers.0.self_attn.q_proj.weight`),
   * the reference implementations' names for RWKV-4 (`blocks.0.att.time_decay`) and Mamba
   * (`backbone.layers.0.mixer.A_log`).
   */
  readonly params: Map<string, tf.Variable>;
  /** Next-token logits at every position. @param tokens int32 `[batch, seq]`. @returns `[batch, seq, vocab]` */
  logits(tokens: tf.Tensor2D): tf.Tensor3D;
  /**
   * Logits at one position per example (the answer position `length - 1`).
   * @param tokens int32 `[batch, seq]`; @param positions int32 `[batch]`. @returns `[batch, vocab]`
   */
  answerLogits(tokens: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D;
  /** Whether AdamW applies weight decay to the parameter called `name`. */
  decays(name: string): boolean;
  /** Frees the parameters. */
  dispose(): void;
}

export { decaysByRank } from './layers.js';

/**
 * Builds an architecture with seeded initial weights (and registers the gradients it needs).
 * @param rng initialisation randomness (consumed in parameter creation order).
 * @throws Error for an unknown `arch` or an inconsistent config (e.g. `d_model % n_heads != 0`).
 */
export function createModel(config: ModelConfig, rng: Rng): LanguageModel {
  validateConfig(config);
  registerGradients();
  switch (config.arch) {
    case 'gpt2':
      return createGpt2(config, rng);
    case 'llama':
      return createLlama(config, rng);
    case 'rwkv':
      return createRwkv(config, rng);
    case 'mamba':
      return createMamba(config, rng);
    default:
      throw new Error(`unknown model arch "${String((config as { arch: unknown }).arch)}" (known: gpt2, llama, rwkv, mamba)`);
  }
}

/** The integer fields of each architecture's config, all ≥ 1. */
const INTEGER_FIELDS: Record<Arch, readonly string[]> = {
  gpt2: ['n_layers', 'd_model', 'n_heads', 'd_mlp', 'vocab_size', 'seq_len'],
  llama: ['n_layers', 'd_model', 'n_heads', 'd_mlp', 'vocab_size', 'seq_len'],
  rwkv: ['n_layers', 'd_model', 'd_mlp', 'vocab_size', 'seq_len'],
  mamba: ['n_layers', 'd_model', 'd_state', 'expand', 'd_conv', 'dt_rank', 'vocab_size', 'seq_len'],
};

/** @throws Error naming the first bad field of `config`. */
export function validateConfig(config: ModelConfig): void {
  const fields = INTEGER_FIELDS[config.arch];
  if (!fields) throw new Error(`unknown model arch "${String((config as { arch: unknown }).arch)}" (known: ${Object.keys(INTEGER_FIELDS).join(', ')})`);
  for (const key of fields) {
    const v = (config as unknown as Record<string, unknown>)[key];
    if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`model.${key} must be a positive integer, got ${String(v)}`);
  }
  if (config.arch === 'gpt2' || config.arch === 'llama') {
    if (config.d_model % config.n_heads !== 0) {
      throw new Error(`model.d_model (${config.d_model}) must be divisible by model.n_heads (${config.n_heads})`);
    }
  }
  if (config.arch === 'llama') {
    if ((config.d_model / config.n_heads) % 2 !== 0) {
      throw new Error(`model.d_model / model.n_heads (${config.d_model / config.n_heads}) must be even for rotary embeddings`);
    }
    if (!(config.rope_base > 1)) throw new Error(`model.rope_base must be > 1, got ${String(config.rope_base)}`);
    if (typeof config.tie_embeddings !== 'boolean') throw new Error('model.tie_embeddings must be true or false');
  }
  if (config.arch === 'mamba' && typeof config.tie_embeddings !== 'boolean') throw new Error('model.tie_embeddings must be true or false');
}

/** Safetensors metadata key holding the JSON `ModelConfig`. */
export const CONFIG_METADATA_KEY = 'grokpipe.model_config';

/**
 * The model's weights as a safetensors file (float32, parameters in `params` order), with
 * `format: pt` (what Hugging Face loaders expect) and the config as JSON in the metadata.
 */
export async function modelToSafetensors(model: LanguageModel): Promise<Uint8Array> {
  const tensors: [string, NamedTensor][] = [];
  for (const [name, p] of model.params) {
    tensors.push([name, { dtype: 'F32', shape: [...p.shape], data: (await p.data()) as Float32Array }]);
  }
  return encodeSafetensors(tensors, { format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(model.config) });
}

/**
 * Rebuilds a model from `modelToSafetensors` bytes.
 * @param config the architecture; read from the file's metadata when omitted.
 * @throws Error when the config is missing or a parameter is absent or of another shape.
 * @throws SafetensorsError when the bytes are not a valid file.
 */
export function modelFromSafetensors(bytes: Uint8Array, config?: ModelConfig): LanguageModel {
  const st = decodeSafetensors(bytes);
  const cfgJson = st.metadata[CONFIG_METADATA_KEY];
  const cfg = config ?? (cfgJson ? (JSON.parse(cfgJson) as ModelConfig) : undefined);
  if (!cfg) throw new Error(`weights carry no ${CONFIG_METADATA_KEY} metadata and no config was given`);
  const model = createModel(cfg, makeRng(0));
  try {
    tf.tidy(() => {
      for (const [name, p] of model.params) {
        const t = st.tensors.get(name);
        if (!t) throw new Error(`weights lack parameter ${name}`);
        if (t.dtype !== 'F32' || t.shape.join() !== p.shape.join()) {
          throw new Error(`parameter ${name}: expected F32 [${p.shape.join(', ')}], found ${t.dtype} [${t.shape.join(', ')}]`);
        }
        p.assign(tf.tensor(t.data as Float32Array, p.shape, 'float32'));
      }
    });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * The architecture-neutral model interface (DESIGN.md §5) and the factory by `arch`.
 *
 * Every architecture maps token ids `[batch, seq]` to next-token logits `[batch, seq, vocab]`;
 * training and evaluation only need the logits at each example's answer position, which
 * `answerLogits` computes without projecting the other positions onto the vocabulary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createGpt2 } from './gpt2.js';
import { registerGradients } from './gradients.js';
import { makeRng } from './random.js';
import type { Rng } from './random.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import type { NamedTensor } from './safetensors.js';

/** Architectures `createModel` knows. */
export type Arch = 'gpt2';

/** Full architecture config, as written to `model.json` and the safetensors metadata. */
export interface ModelConfig {
  /** Architecture family. */
  arch: Arch;
  /** Number of transformer blocks. */
  n_layers: number;
  /** Residual stream width. */
  d_model: number;
  /** Attention heads; `d_model % n_heads === 0`. */
  n_heads: number;
  /** Hidden width of the MLP (GPT-2: 4 · d_model). */
  d_mlp: number;
  /** Vocabulary size (tokens). */
  vocab_size: number;
  /** Longest input sequence (positions of the learned position embedding). */
  seq_len: number;
}

/** A language model over token ids. Its methods are pure tensor code: call inside `tf.tidy`. */
export interface LanguageModel {
  /** The architecture config it was built from. */
  readonly config: ModelConfig;
  /**
   * Trainable parameters by checkpoint name (Hugging Face names for GPT-2, e.g.
   * `transformer.h.0.attn.c_attn.weight`), in a fixed order.
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
    default:
      throw new Error(`unknown model arch "${String((config as { arch: unknown }).arch)}" (known: gpt2)`);
  }
}

/** @throws Error naming the first bad field of `config`. */
export function validateConfig(config: ModelConfig): void {
  for (const key of ['n_layers', 'd_model', 'n_heads', 'd_mlp', 'vocab_size', 'seq_len'] as const) {
    const v = config[key];
    if (!Number.isInteger(v) || v < 1) throw new Error(`model.${key} must be a positive integer, got ${String(v)}`);
  }
  if (config.d_model % config.n_heads !== 0) {
    throw new Error(`model.d_model (${config.d_model}) must be divisible by model.n_heads (${config.n_heads})`);
  }
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

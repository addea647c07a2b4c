/**
 * GPT-2's declaration (Radford et al. 2019): config, knobs, checks and size. The network is in
 * `gpt2-model.ts`; what a declaration provides is listed in `architecture.ts`.
 */
import type { ArchParams, Architecture, BaseConfig } from './architecture.js';
import { checkHeads, COMMON_KNOBS, integer } from './architecture.js';

/** GPT-2. Fields and their meaning are unchanged since the first release (cache keys). */
export interface Gpt2Config extends BaseConfig {
  arch: 'gpt2';
  /** Attention heads; `d_model % n_heads === 0`. */
  n_heads: number;
  /** Hidden width of the MLP (GPT-2: 4 · d_model). */
  d_mlp: number;
}

/** GPT-2's `with.model` params (the original fields: a GPT-2's params, hence its cache key, are unchanged); d_mlp 4 · d_model when absent. */
export type Gpt2Params = ArchParams<Gpt2Config, 'd_mlp'>;

/** GPT-2: learned positions, pre-LayerNorm, GELU MLP, biases, tied unembedding. */
export const gpt2: Architecture<Gpt2Config, Gpt2Params> = {
  arch: 'gpt2',
  knobs: { ...COMMON_KNOBS, n_heads: integer(4), d_mlp: integer() },
  config: (m, vocabSize, seqLen) =>
    // Field order as before the other architectures existed (model.json unchanged).
    ({
      arch: 'gpt2',
      n_layers: m.n_layers,
      d_model: m.d_model,
      n_heads: m.n_heads,
      d_mlp: m.d_mlp ?? 4 * m.d_model,
      vocab_size: vocabSize,
      seq_len: seqLen,
    }),
  check: checkHeads,
  count(c) {
    const { n_layers: L, d_model: d, vocab_size: V, seq_len: T, d_mlp: m } = c;
    const matrices = 4 * d * d + 2 * d * m;
    const perLayer = matrices + 3 * d + d + m + d + 4 * d; // + c_attn/c_proj/c_fc/c_proj biases + 2 LayerNorms
    const embedding = V * d + T * d;
    return {
      parameters: embedding + L * perLayer + 2 * d,
      embedding_parameters: embedding,
      flops_per_token: L * (2 * matrices + 4 * T * d) + 2 * d * V,
    };
  },
  describe: (c) => `${c.n_heads} heads`,
  ensembles: true,
};

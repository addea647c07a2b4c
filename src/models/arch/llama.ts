/**
 * LLaMA's declaration (Touvron et al. 2023): config, knobs, checks and size. The network is in
 * `llama-model.ts`; what a declaration provides is listed in `architecture.ts`.
 */
import type { ArchParams, Architecture, BaseConfig, Problem } from './architecture.js';
import { boolean, checkRotaryHeads, COMMON_KNOBS, integer, real } from './architecture.js';

/** LLaMA. */
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

/** LLaMA's `with.model` params; d_mlp `llamaHidden(d_model)` when absent. */
export type LlamaParams = ArchParams<LlamaConfig, 'd_mlp'>;

/** SwiGLU hidden width of LLaMA for `d_model` (Touvron et al. 2023, §2): 8/3 · d_model rounded up to a multiple of 8. */
export function llamaHidden(dModel: number): number {
  return Math.ceil((8 * dModel) / 3 / 8) * 8;
}

/** LLaMA: RMSNorm, rotary embeddings, SwiGLU MLP, no biases, untied unembedding. */
export const llama: Architecture<LlamaConfig, LlamaParams> = {
  arch: 'llama',
  knobs: {
    ...COMMON_KNOBS,
    n_heads: integer(4),
    d_mlp: integer(),
    tie_embeddings: boolean(false),
    rope_base: real(10000),
  },
  config: (m, vocabSize, seqLen) => ({
    arch: 'llama',
    n_layers: m.n_layers,
    d_model: m.d_model,
    vocab_size: vocabSize,
    seq_len: seqLen,
    n_heads: m.n_heads,
    d_mlp: m.d_mlp ?? llamaHidden(m.d_model),
    tie_embeddings: m.tie_embeddings,
    rope_base: m.rope_base,
  }),
  check(m) {
    const problems: Problem[] = checkRotaryHeads(m);
    if (!(m.rope_base > 1))
      problems.push({ field: 'rope_base', message: `rope_base must be > 1, got ${String(m.rope_base)}` });
    return problems;
  },
  count(c) {
    const { n_layers: L, d_model: d, vocab_size: V, seq_len: T, d_mlp: m } = c;
    const matrices = 4 * d * d + 3 * d * m;
    const embedding = (c.tie_embeddings ? 1 : 2) * V * d;
    return {
      parameters: embedding + L * (matrices + 2 * d) + d,
      embedding_parameters: embedding,
      flops_per_token: L * (2 * matrices + 4 * T * d) + 2 * d * V,
    };
  },
  describe: (c) => `${c.n_heads} heads`,
  ensembles: true,
};

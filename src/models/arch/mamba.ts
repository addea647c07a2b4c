/**
 * Mamba-1's declaration (Gu & Dao 2023): config, knobs, checks and size. The network is in
 * `mamba-model.ts`; what a declaration provides is listed in `architecture.ts`.
 */
import type { ArchParams, Architecture, BaseConfig } from './architecture.js';
import { boolean, COMMON_KNOBS, integer } from './architecture.js';

/** Mamba-1. */
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

/** Mamba's `with.model` params; dt_rank `mambaDtRank(d_model)` when absent. */
export type MambaParams = ArchParams<MambaConfig, 'dt_rank'>;

/** Mamba's default Δ rank for `d_model` (Gu & Dao 2023, `dt_rank="auto"`): ceil(d_model / 16). */
export function mambaDtRank(dModel: number): number {
  return Math.ceil(dModel / 16);
}

/** Mamba-1: selective state-space blocks, no attention, tied unembedding. */
export const mamba: Architecture<MambaConfig, MambaParams> = {
  arch: 'mamba',
  knobs: {
    ...COMMON_KNOBS,
    d_state: integer(16),
    expand: integer(2),
    d_conv: integer(4),
    dt_rank: integer(),
    tie_embeddings: boolean(true),
  },
  config: (m, vocabSize, seqLen) => ({
    arch: 'mamba',
    n_layers: m.n_layers,
    d_model: m.d_model,
    vocab_size: vocabSize,
    seq_len: seqLen,
    d_state: m.d_state,
    expand: m.expand,
    d_conv: m.d_conv,
    dt_rank: m.dt_rank ?? mambaDtRank(m.d_model),
    tie_embeddings: m.tie_embeddings,
  }),
  check: () => [],
  /**
   * The selective scan costs `7 · E · N` FLOPs per layer and token (per state entry: Δ·A, its exp,
   * (Δ⊙u)·B, the state update's multiply and add, and C·s's multiply and add), the convolution `2 · K · E`.
   */
  count(c) {
    const { n_layers: L, d_model: d, vocab_size: V, d_state: N, d_conv: K, dt_rank: R } = c;
    const E = c.expand * d;
    const matrices = 2 * E * d + (R + 2 * N) * E + E * R + d * E; // in_proj, x_proj, dt_proj, out_proj
    const perLayer = matrices + E * K + E + E + E * N + E + d; // conv w/b, dt bias, A_log, D, norm
    const embedding = (c.tie_embeddings ? 1 : 2) * V * d;
    return {
      parameters: embedding + L * perLayer + d,
      embedding_parameters: embedding,
      flops_per_token: L * (2 * matrices + 2 * K * E + 7 * E * N) + 2 * d * V,
    };
  },
  describe: (c) => `d_state ${c.d_state}, expand ${c.expand}`,
};

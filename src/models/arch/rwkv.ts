/**
 * RWKV-4's declaration (Peng et al. 2023): config, knobs, checks and size. The network is in
 * `rwkv-model.ts`; what a declaration provides is listed in `architecture.ts`.
 */
import type { ArchParams, Architecture, BaseConfig } from './architecture.js';
import { COMMON_KNOBS, integer } from './architecture.js';

/** RWKV-4. */
export interface RwkvConfig extends BaseConfig {
  arch: 'rwkv';
  /** Hidden width of the channel-mixing block (RWKV-4: 4 · d_model). */
  d_mlp: number;
}

/** RWKV-4's `with.model` params; d_mlp 4 · d_model when absent. */
export type RwkvParams = ArchParams<RwkvConfig, 'd_mlp'>;

/** RWKV-4: token shift, WKV time mixing with per-channel decay, squared-ReLU channel mixing. */
export const rwkv: Architecture<RwkvConfig, RwkvParams> = {
  arch: 'rwkv',
  knobs: { ...COMMON_KNOBS, d_mlp: integer() },
  config: (m, vocabSize, seqLen) => ({
    arch: 'rwkv',
    n_layers: m.n_layers,
    d_model: m.d_model,
    vocab_size: vocabSize,
    seq_len: seqLen,
    d_mlp: m.d_mlp ?? 4 * m.d_model,
  }),
  check: () => [],
  /**
   * The WKV recurrence costs `11 · d_model` FLOPs per layer and token: the RNN form's updates of
   * numerator and denominator and the output (4 exps, 5 multiplies/adds, 1 division, 1 add per channel).
   */
  count(c) {
    const { n_layers: L, d_model: d, vocab_size: V, d_mlp: m } = c;
    const matrices = 4 * d * d + d * d + 2 * d * m; // att key/value/receptance/output, ffn receptance, key, value
    const vectors = 2 * d + 2 * d + 3 * d + 2 * d + 2 * d; // ln1, decay/first, 3 mixes, ln2, 2 ffn mixes
    const embedding = 2 * V * d; // emb and head
    return {
      parameters: embedding + 2 * d + L * (matrices + vectors) + 2 * d, // + ln0, ln_out
      embedding_parameters: embedding,
      flops_per_token: L * (2 * matrices + 11 * d) + 2 * d * V,
    };
  },
  describe: () => '',
};

/**
 * Size of every architecture counted the same way, from its config alone (no TF.js): trainable
 * parameters, and forward FLOPs per token, so that architectures can be compared at equal size.
 *
 * FLOPs convention (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1): 2 FLOPs
 * per multiply–add of every weight matrix a token goes through (its embedding lookup is free; the
 * unembedding counts), plus the sequence mixing at a context of `seq_len` tokens:
 * - attention (GPT-2, LLaMA): `2 · 2 · seq_len · d_model` per layer (scores and weighted values);
 * - RWKV's WKV recurrence: `11 · d_model` per layer (the RNN form's updates of numerator and
 *   denominator and the output: 4 exps, 5 multiplies/adds, 1 division, 1 add per channel);
 * - Mamba's selective scan: `7 · E · N` per layer (per state entry: Δ·A, its exp, (Δ⊙u)·B, the
 *   state update's multiply and add, and C·s's multiply and add) and the convolution `2 · K · E`.
 * Norms, activations, gates and residual adds are not counted. A training step costs about three
 * forward passes (`6 ·` parameters per token for the matrices).
 *
 * Also the default widths that depend on `d_model` (`llamaHidden`, `mambaDtRank`), without TF.js
 * so that the train stage can fill them in while planning.
 */
import type { ModelConfig } from './model.js';

/** SwiGLU hidden width of LLaMA for `d_model` (Touvron et al. 2023, §2): 8/3 · d_model rounded up to a multiple of 8. */
export function llamaHidden(dModel: number): number {
  return Math.ceil((8 * dModel) / 3 / 8) * 8;
}

/** Mamba's default Δ rank for `d_model` (Gu & Dao 2023, `dt_rank="auto"`): ceil(d_model / 16). */
export function mambaDtRank(dModel: number): number {
  return Math.ceil(dModel / 16);
}

/** What `countModel` returns (recorded by the train stage as `model_size`). */
export interface ModelCount {
  /** Trainable parameters (equal to the sum of the sizes of `LanguageModel.params`). */
  parameters: number;
  /** Of which in the token/position embeddings and an untied unembedding. */
  embedding_parameters: number;
  /** Forward FLOPs per token at a context of `seq_len` tokens (convention above). */
  flops_per_token: number;
}

/** Parameters and forward FLOPs per token of `config` (see the module docstring). */
export function countModel(config: ModelConfig): ModelCount {
  const { n_layers: L, d_model: d, vocab_size: V, seq_len: T } = config;
  const unembedFlops = 2 * d * V;
  switch (config.arch) {
    case 'gpt2': {
      const m = config.d_mlp;
      const matrices = 4 * d * d + 2 * d * m;
      const perLayer = matrices + 3 * d + d + m + d + 4 * d; // + c_attn/c_proj/c_fc/c_proj biases + 2 LayerNorms
      const embedding = V * d + T * d;
      return {
        parameters: embedding + L * perLayer + 2 * d,
        embedding_parameters: embedding,
        flops_per_token: L * (2 * matrices + 4 * T * d) + unembedFlops,
      };
    }
    case 'llama': {
      const m = config.d_mlp;
      const matrices = 4 * d * d + 3 * d * m;
      const embedding = (config.tie_embeddings ? 1 : 2) * V * d;
      return {
        parameters: embedding + L * (matrices + 2 * d) + d,
        embedding_parameters: embedding,
        flops_per_token: L * (2 * matrices + 4 * T * d) + unembedFlops,
      };
    }
    case 'rwkv': {
      const m = config.d_mlp;
      const matrices = 4 * d * d + d * d + 2 * d * m; // att key/value/receptance/output, ffn receptance, key, value
      const vectors = 2 * d + 2 * d + 3 * d + 2 * d + 2 * d; // ln1, decay/first, 3 mixes, ln2, 2 ffn mixes
      const embedding = 2 * V * d; // emb and head
      return {
        parameters: embedding + 2 * d + L * (matrices + vectors) + 2 * d, // + ln0, ln_out
        embedding_parameters: embedding,
        flops_per_token: L * (2 * matrices + 11 * d) + unembedFlops,
      };
    }
    case 'mamba': {
      const { d_state: N, d_conv: K, dt_rank: R } = config;
      const E = config.expand * d;
      const matrices = 2 * E * d + (R + 2 * N) * E + E * R + d * E; // in_proj, x_proj, dt_proj, out_proj
      const perLayer = matrices + E * K + E + E + E * N + E + d; // conv w/b, dt bias, A_log, D, norm
      const embedding = (config.tie_embeddings ? 1 : 2) * V * d;
      return {
        parameters: embedding + L * perLayer + d,
        embedding_parameters: embedding,
        flops_per_token: L * (2 * matrices + 2 * K * E + 7 * E * N) + unembedFlops,
      };
    }
  }
}

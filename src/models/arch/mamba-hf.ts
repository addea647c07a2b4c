/**
 * Mamba-1 as Hugging Face `MambaForCausalLM` (`hf.ts`). transformers' `modeling_mamba.py` runs the
 * same mixer (`in_proj` without bias → x, z; causal depthwise `conv1d` with bias; SiLU; `x_proj`
 * → Δ, B, C; `dt_proj` with bias, softplus; `A = −exp(A_log)`; the scan; `+ D ⊙ u`; `⊙ silu(z)`;
 * `out_proj` without bias) in pre-RMSNorm residual blocks (eps 1e-5), a final `norm_f` and the
 * head tied to the embedding unless untied. Layouts are state-spaces/mamba's, as grokpipe's; only
 * the embedding's name differs (`backbone.embedding` there, `backbone.embeddings` in transformers).
 */
import type { HfMapping } from './hf-mapping.js';
import { DT_FLOOR, DT_MAX, DT_MIN, EMB_STD, RMS_EPS } from './mamba-model.js';
import type { MambaConfig } from './mamba.js';

/** `MambaConfig` fields and `MambaForCausalLM` names of a grokpipe Mamba. */
export const mambaHf: HfMapping<MambaConfig> = {
  architecture: 'MambaForCausalLM',
  modelType: 'mamba',
  config: (c) => ({
    hidden_size: c.d_model,
    num_hidden_layers: c.n_layers,
    state_size: c.d_state,
    expand: c.expand,
    intermediate_size: c.expand * c.d_model,
    conv_kernel: c.d_conv,
    time_step_rank: c.dt_rank,
    use_bias: false,
    use_conv_bias: true,
    hidden_act: 'silu',
    layer_norm_epsilon: RMS_EPS,
    residual_in_fp32: true,
    initializer_range: EMB_STD,
    time_step_min: DT_MIN,
    time_step_max: DT_MAX,
    time_step_floor: DT_FLOOR,
    tie_word_embeddings: c.tie_embeddings,
  }),
  tensorName(name) {
    if (name === 'backbone.embedding.weight') return 'backbone.embeddings.weight';
    if (!name.startsWith('backbone.') && name !== 'lm_head.weight')
      throw new Error(`mamba: unexpected parameter ${name}`);
    return name;
  },
};

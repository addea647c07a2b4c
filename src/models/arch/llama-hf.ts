/**
 * LLaMA as Hugging Face `LlamaForCausalLM` (`hf.ts`): grokpipe's parameters already carry its
 * state-dict names and `nn.Linear` layouts, and RoPE rotates the two halves of each head
 * (`rotate_half`) as transformers does. Every head has its own keys and values
 * (`num_key_value_heads = n_heads`), no biases; `lm_head.weight` is written only when untied.
 */
import type { HfMapping } from './hf-mapping.js';
import { INIT_STD, RMS_EPS } from './llama-model.js';
import type { LlamaConfig } from './llama.js';

/** `LlamaConfig` fields and `LlamaForCausalLM` names of a grokpipe LLaMA. */
export const llamaHf: HfMapping<LlamaConfig> = {
  architecture: 'LlamaForCausalLM',
  modelType: 'llama',
  config: (c) => ({
    hidden_size: c.d_model,
    intermediate_size: c.d_mlp,
    num_hidden_layers: c.n_layers,
    num_attention_heads: c.n_heads,
    num_key_value_heads: c.n_heads,
    head_dim: c.d_model / c.n_heads,
    hidden_act: 'silu',
    max_position_embeddings: c.seq_len,
    rms_norm_eps: RMS_EPS,
    initializer_range: INIT_STD,
    // `rope_parameters` since transformers 5, `rope_theta` before.
    rope_theta: c.rope_base,
    rope_parameters: { rope_type: 'default', rope_theta: c.rope_base },
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: c.tie_embeddings,
  }),
  tensorName(name) {
    if (!name.startsWith('model.') && name !== 'lm_head.weight') throw new Error(`llama: unexpected parameter ${name}`);
    return name;
  },
};

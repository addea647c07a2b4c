/**
 * GPT-2 as Hugging Face `GPT2LMHeadModel` (`hf.ts`): grokpipe's parameters already carry its
 * state-dict names and layouts (`Conv1D` weights `[d_in, d_out]`), and its unembedding is tied to
 * `transformer.wte` as grokpipe's is, so no `lm_head.weight` is written. The MLP's GELU is the tanh
 * approximation (`gelu_new`); no dropout, as grokpipe trains.
 */
import { INIT_STD, LN_EPS } from './gpt2-model.js';
import type { Gpt2Config } from './gpt2.js';
import type { HfMapping } from './hf-mapping.js';

/** `GPT2Config` fields and `GPT2LMHeadModel` names of a grokpipe GPT-2. */
export const gpt2Hf: HfMapping<Gpt2Config> = {
  architecture: 'GPT2LMHeadModel',
  modelType: 'gpt2',
  config: (c) => ({
    n_layer: c.n_layers,
    n_embd: c.d_model,
    n_head: c.n_heads,
    n_inner: c.d_mlp,
    n_positions: c.seq_len,
    activation_function: 'gelu_new',
    layer_norm_epsilon: LN_EPS,
    initializer_range: INIT_STD,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    summary_first_dropout: 0,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
  }),
  tensorName(name) {
    if (!name.startsWith('transformer.')) throw new Error(`gpt2: unexpected parameter ${name}`);
    return name;
  },
};

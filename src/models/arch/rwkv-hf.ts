/**
 * RWKV-4 as Hugging Face `RwkvForCausalLM` (`hf.ts`). transformers' `modeling_rwkv.py` runs the
 * same network: `time_decay` stored as grokpipe (and BlinkDL/RWKV-LM) store it, the decay being
 * `−exp(time_decay)` inside the WKV kernel; `time_first` the bonus as is; the token shift
 * `ZeroPad2d((0, 0, 1, −1))`; `time_mix_*` `[1, 1, d_model]`; squared-ReLU channel mixing; block
 * 0's `pre_ln` after the embedding; LayerNorms with eps 1e-5; an untied head. The names differ,
 * renamed as transformers' own converter (`convert_rwkv_checkpoint_to_hf.py`) renames them.
 * `rescale_every` is 0: transformers otherwise halves the hidden state every 6 blocks at inference
 * and divides later blocks' output weights to match (a guard against float16 overflow; the same
 * function but for LayerNorm's eps), which grokpipe does not do.
 */
import type { HfMapping } from './hf-mapping.js';
import { LN_EPS } from './rwkv-model.js';
import type { RwkvConfig } from './rwkv.js';

/** grokpipe (BlinkDL) name → transformers name, applied in order to each parameter name. */
const RENAMES: readonly [RegExp, string][] = [
  [/^emb\.weight$/, 'rwkv.embeddings.weight'],
  [/^blocks\.0\.ln0\.(weight|bias)$/, 'rwkv.blocks.0.pre_ln.$1'],
  [/^blocks\.(\d+)\.(ln1|ln2)\.(weight|bias)$/, 'rwkv.blocks.$1.$2.$3'],
  [/^blocks\.(\d+)\.att\.(time_decay|time_first)$/, 'rwkv.blocks.$1.attention.$2'],
  [/^blocks\.(\d+)\.att\.time_mix_k$/, 'rwkv.blocks.$1.attention.time_mix_key'],
  [/^blocks\.(\d+)\.att\.time_mix_v$/, 'rwkv.blocks.$1.attention.time_mix_value'],
  [/^blocks\.(\d+)\.att\.time_mix_r$/, 'rwkv.blocks.$1.attention.time_mix_receptance'],
  [/^blocks\.(\d+)\.att\.(key|value|receptance|output)\.weight$/, 'rwkv.blocks.$1.attention.$2.weight'],
  [/^blocks\.(\d+)\.ffn\.time_mix_k$/, 'rwkv.blocks.$1.feed_forward.time_mix_key'],
  [/^blocks\.(\d+)\.ffn\.time_mix_r$/, 'rwkv.blocks.$1.feed_forward.time_mix_receptance'],
  [/^blocks\.(\d+)\.ffn\.(key|value|receptance)\.weight$/, 'rwkv.blocks.$1.feed_forward.$2.weight'],
  [/^ln_out\.(weight|bias)$/, 'rwkv.ln_out.$1'],
  [/^head\.weight$/, 'head.weight'],
];

/** `RwkvConfig` fields and `RwkvForCausalLM` names of a grokpipe RWKV-4. */
export const rwkvHf: HfMapping<RwkvConfig> = {
  architecture: 'RwkvForCausalLM',
  modelType: 'rwkv',
  config: (c) => ({
    hidden_size: c.d_model,
    attention_hidden_size: c.d_model,
    intermediate_size: c.d_mlp,
    num_hidden_layers: c.n_layers,
    context_length: c.seq_len,
    layer_norm_epsilon: LN_EPS,
    rescale_every: 0,
    tie_word_embeddings: false,
  }),
  tensorName(name) {
    for (const [from, to] of RENAMES) if (from.test(name)) return name.replace(from, to);
    throw new Error(`rwkv: unexpected parameter ${name}`);
  },
};

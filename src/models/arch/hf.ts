/**
 * Hugging Face `transformers` export of the registry's architectures: for each, the transformers
 * class that runs the same network, the fields of its `config.json`, and the name of each
 * parameter in that class's state dict. `toHuggingFace` turns a train run's `weights.safetensors`
 * into the `config.json` and `model.safetensors` that `from_pretrained` loads (`grokpipe export
 * --format hf`). No TF.js computation: tensors are renamed, never changed (every layout already is
 * the PyTorch one, `nn.Linear` `[d_out, d_in]` or GPT-2's `Conv1D` `[d_in, d_out]`).
 *
 * Adding an architecture: its mapping `<arch>-hf.ts` and a line in `HF_EXPORTS` (a compile error
 * until it is there); an architecture no transformers class runs exactly declares that instead
 * (`{ unsupported: reason }`), and the export refuses it with that reason.
 */
import { decodeSafetensors, encodeSafetensors } from '../safetensors.js';
import type { NamedTensor } from '../safetensors.js';
import { CONFIG_METADATA_KEY } from '../weights.js';
import { gpt2Hf } from './gpt2-hf.js';
import { llamaHf } from './llama-hf.js';
import { mambaHf } from './mamba-hf.js';
import type { HfMapping, HfTokenIds, HfUnsupported } from './hf-mapping.js';
import type { Arch, ModelConfig } from './registry.js';
import { validateConfig } from './registry.js';
import { rwkvHf } from './rwkv-hf.js';

/** The transformers mapping of every registered architecture (one missing is a compile error). */
const HF_EXPORTS: { [A in Arch]: HfMapping<Extract<ModelConfig, { arch: A }>> | HfUnsupported } = {
  gpt2: gpt2Hf,
  llama: llamaHf,
  rwkv: rwkvHf,
  mamba: mambaHf,
};

/** Thrown when an architecture cannot be exported to transformers (the message says why). */
export class HfExportError extends Error {}

/** A model as transformers loads it. */
export interface HfModel {
  /** grokpipe's config of the model (the weights' metadata). */
  readonly source: ModelConfig;
  /** `config.json`. */
  readonly config: Record<string, unknown>;
  /** `model.safetensors`: float32 tensors under the class's names, metadata `format: pt`. */
  readonly weights: Uint8Array;
}

/**
 * `config.json` and `model.safetensors` of a train run's weights.
 * @param bytes `weights.safetensors` (`models/weights.ts`: the config in its metadata).
 * @param ids the tokenizer's pad/bos/eos ids, written into the config (transformers' defaults are
 *   those of the original checkpoints' vocabularies, e.g. GPT-2's 50256).
 * @throws HfExportError when the architecture has no transformers counterpart.
 * @throws Error when the file carries no config, the config is invalid, or a parameter is unknown
 *   to the mapping; SafetensorsError when the bytes are not a safetensors file.
 */
export function toHuggingFace(bytes: Uint8Array, ids: HfTokenIds): HfModel {
  const st = decodeSafetensors(bytes);
  const json = st.metadata[CONFIG_METADATA_KEY];
  if (json === undefined) throw new Error(`the weights carry no ${CONFIG_METADATA_KEY} metadata`);
  const config = JSON.parse(json) as ModelConfig;
  validateConfig(config);
  const mapping = HF_EXPORTS[config.arch] as HfMapping<ModelConfig> | HfUnsupported;
  if ('unsupported' in mapping) throw new HfExportError(`${config.arch}: ${mapping.unsupported}`);
  const tensors: [string, NamedTensor][] = [];
  const seen = new Set<string>();
  for (const [name, t] of st.tensors) {
    const hfName = mapping.tensorName(name);
    if (seen.has(hfName)) throw new Error(`${config.arch}: two parameters map to ${hfName}`);
    seen.add(hfName);
    tensors.push([hfName, t as NamedTensor]);
  }
  return {
    source: config,
    config: {
      architectures: [mapping.architecture],
      model_type: mapping.modelType,
      ...mapping.config(config),
      vocab_size: config.vocab_size,
      pad_token_id: ids.pad,
      bos_token_id: ids.bos,
      eos_token_id: ids.eos,
      // `dtype` since transformers 4.56, `torch_dtype` before (and still read).
      dtype: 'float32',
      torch_dtype: 'float32',
    },
    weights: encodeSafetensors(tensors, { format: 'pt', [CONFIG_METADATA_KEY]: json }),
  };
}

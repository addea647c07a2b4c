/**
 * A model's weights as a safetensors file (`weights.safetensors` of the train stage): float32
 * parameters under their checkpoint names, the architecture config as JSON in the metadata.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createModel } from './arch/factories.js';
import type { ModelConfig } from './arch/registry.js';
import type { LanguageModel } from './model.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import type { NamedTensor } from './safetensors.js';
import { makeRng } from './train-rng.js';

/** Safetensors metadata key holding the JSON `ModelConfig`. */
export const CONFIG_METADATA_KEY = 'grokpipe.model_config';

/**
 * The model's weights as a safetensors file (float32, parameters in `params` order), with
 * `format: pt` (what Hugging Face loaders expect) and the config as JSON in the metadata.
 */
export async function modelToSafetensors(model: LanguageModel): Promise<Uint8Array> {
  const tensors: [string, NamedTensor][] = [];
  for (const [name, p] of model.params) {
    tensors.push([name, { dtype: 'F32', shape: [...p.shape], data: (await p.data()) as Float32Array }]);
  }
  return encodeSafetensors(tensors, { format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(model.config) });
}

/**
 * Rebuilds a model from `modelToSafetensors` bytes.
 * @param config the architecture; read from the file's metadata when omitted.
 * @throws Error when the config is missing or a parameter is absent or of another shape.
 * @throws SafetensorsError when the bytes are not a valid file.
 */
export function modelFromSafetensors(bytes: Uint8Array, config?: ModelConfig): LanguageModel {
  const st = decodeSafetensors(bytes);
  const cfgJson = st.metadata[CONFIG_METADATA_KEY];
  const cfg = config ?? (cfgJson ? (JSON.parse(cfgJson) as ModelConfig) : undefined);
  if (!cfg) throw new Error(`weights carry no ${CONFIG_METADATA_KEY} metadata and no config was given`);
  const model = createModel(cfg, makeRng(0));
  try {
    tf.tidy(() => {
      for (const [name, p] of model.params) {
        const t = st.tensors.get(name);
        if (!t) throw new Error(`weights lack parameter ${name}`);
        if (t.dtype !== 'F32' || t.shape.join() !== p.shape.join()) {
          throw new Error(
            `parameter ${name}: expected F32 [${p.shape.join(', ')}], found ${t.dtype} [${t.shape.join(', ')}]`,
          );
        }
        p.assign(tf.tensor(t.data as Float32Array, p.shape, 'float32'));
      }
    });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * The networks of the registry's architectures (TF.js): `createModel` builds the one a config
 * names, `createEnsemble` M of them as one batched network. Apart from `registry.ts`, which the
 * train stage reads while planning, because importing this module loads TF.js.
 */
import { registerGradients } from '../gradients.js';
import type { EnsembleModel } from '../members.js';
import type { LanguageModel } from '../model.js';
import type { Rng } from '../train-rng.js';
import { createGpt2 } from './gpt2-model.js';
import { createLlama } from './llama-model.js';
import { createMamba } from './mamba-model.js';
import type { Arch, ModelConfig } from './registry.js';
import { validateConfig } from './registry.js';
import { createRwkv } from './rwkv-model.js';

/** The network factory of every registered architecture (one missing is a compile error). */
const FACTORIES: { [A in Arch]: (config: Extract<ModelConfig, { arch: A }>, rng: Rng) => LanguageModel } = {
  gpt2: createGpt2,
  llama: createLlama,
  rwkv: createRwkv,
  mamba: createMamba,
};

/**
 * The ensemble factories: the architectures whose network is written for a member axis
 * (`members.ts`; their declarations say `ensembles: true`). RWKV and Mamba train one model at a time.
 */
const ENSEMBLE_FACTORIES: {
  [A in Arch]?: (config: Extract<ModelConfig, { arch: A }>, rngs: readonly Rng[]) => EnsembleModel;
} = {
  gpt2: createGpt2,
  llama: createLlama,
};

/**
 * Builds an architecture with seeded initial weights (and registers the gradients it needs).
 * @param rng initialisation randomness (consumed in parameter creation order).
 * @throws Error for an unknown `arch` or an inconsistent config (e.g. `d_model % n_heads != 0`).
 */
export function createModel(config: ModelConfig, rng: Rng): LanguageModel {
  validateConfig(config);
  registerGradients();
  const create = FACTORIES[config.arch] as (config: ModelConfig, rng: Rng) => LanguageModel;
  return create(config, rng);
}

/**
 * Builds `rngs.length` models of one config as one ensemble, parameters stacked `[members, ...]`:
 * member m's initial weights are those `createModel(config, rngs[m])` draws.
 * @throws Error for an architecture without an ensemble network, no members, or a bad config.
 */
export function createEnsemble(config: ModelConfig, rngs: readonly Rng[]): EnsembleModel {
  validateConfig(config);
  const create = ENSEMBLE_FACTORIES[config.arch] as
    ((config: ModelConfig, rngs: readonly Rng[]) => EnsembleModel) | undefined;
  if (!create) throw new Error(`${config.arch} has no ensemble network: train its runs one at a time`);
  if (rngs.length < 1) throw new Error('an ensemble needs at least one member');
  registerGradients();
  return create(config, rngs);
}

/**
 * What the training loop (`trainer.ts`) trains: one model, or the members of an ensemble as one
 * batched network (`members.ts`), behind one interface: parameters, their decay rule, the
 * gradient of a step's batches, how test sets and weight norms are measured, and each run's model.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createEnsemble, createModel } from '../arch/factories.js';
import type { ModelConfig } from '../arch/registry.js';
import type { EnsembleModel } from '../members.js';
import type { LanguageModel } from '../model.js';
import type { Rng } from '../train-rng.js';
import { makeRng } from '../train-rng.js';
import { membersMeasure, modelMeasure } from './evaluation.js';
import type { Measure } from './evaluation.js';
import type { Examples } from './examples.js';
import { batchGradients, membersBatchGradients } from './loss.js';
import type { BatchGradients } from './loss.js';
import { membersWeightNorms, weightNorms } from './weight-norms.js';
import type { WeightNorms } from './weight-norms.js';

/** One model or an ensemble, as the training loop drives it. */
export interface Network {
  /** Parameters by checkpoint name: of their own shapes, or stacked `[members, ...]`. */
  readonly params: Map<string, tf.Variable>;
  /** Whether AdamW decays `name`. */
  decays(name: string): boolean;
  /**
   * Gradient of each run's mean loss on its batch `indices[m]` of `data[m]`, with the mean loss
   * and accuracy (scalars for one model, `[members]` for an ensemble); see `batchGradients`.
   */
  gradients(data: readonly Examples[], indices: readonly Int32Array[], microBatch: number): BatchGradients;
  /** Measures one test set per run. */
  readonly measure: Measure;
  /** Each run's weight norms now. */
  norms(): Promise<WeightNorms[]>;
  /** Run `m`'s trained model (the caller disposes it). */
  result(m: number): LanguageModel;
  /** Frees the parameters (for one model, the model `result(0)` returns). */
  dispose(): void;
}

/** One model, initialised from `rng`, as a `Network`. */
export function modelNetwork(config: ModelConfig, rng: Rng, evalBatch: number): Network {
  const model = createModel(config, rng);
  return {
    params: model.params,
    decays: (name) => model.decays(name),
    gradients: (data, indices, microBatch) => batchGradients(model, data[0], indices[0], microBatch),
    measure: modelMeasure(model, evalBatch),
    norms: async () => [await weightNorms(model.params)],
    result: () => model,
    dispose: () => model.dispose(),
  };
}

/** An ensemble of one model per generator (member m initialised from `rngs[m]`), as a `Network`. */
export function ensembleNetwork(config: ModelConfig, rngs: readonly Rng[], evalBatch: number): Network {
  const ensemble = createEnsemble(config, rngs);
  return {
    params: ensemble.params,
    decays: (name) => ensemble.decays(name),
    gradients: (data, indices, microBatch) => membersBatchGradients(ensemble, data, indices, microBatch),
    measure: membersMeasure(ensemble, evalBatch),
    norms: () => membersWeightNorms(ensemble.params, ensemble.members),
    result: (m) => memberModel(ensemble, m),
    dispose: () => ensemble.dispose(),
  };
}

/**
 * Member `m` of an ensemble as a model of its own: the same architecture with that member's slice
 * of every stacked parameter (copied; the ensemble may be disposed afterwards).
 */
export function memberModel(ensemble: EnsembleModel, m: number): LanguageModel {
  const model = createModel(ensemble.config, makeRng(0));
  tf.tidy(() => {
    for (const [name, p] of model.params) {
      const stackedParam = ensemble.params.get(name);
      if (!stackedParam) throw new Error(`ensemble lacks parameter ${name}`);
      p.assign(tf.reshape(tf.slice(stackedParam, m, 1), p.shape));
    }
  });
  return model;
}

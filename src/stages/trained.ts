/**
 * Reading a `train` artifact for the stages that use the trained model (`evaluate`, `probe`): its
 * architecture config, checked against the tokenize artifact it is used with, and its weight
 * files by step (the kept checkpoints and the final weights; docs/artifacts.md "train").
 */
import { readFile } from 'node:fs/promises';
import type { InputArtifact } from '../engine/stage.js';
import type { ModelConfig } from '../models/arch/registry.js';
import { keptCheckpointStep, MODEL_FILE, WEIGHTS_FILE } from './files.js';

/**
 * The model's config (`model.json`) of `trained`.
 * @param vocabSize, seqLen of the tokenize artifact `tokens` the model is used with.
 * @throws Error naming `stage` and both artifacts when the vocabulary sizes differ (not the data it
 *   was trained on) or the inputs are longer than the model's `seq_len`.
 */
export async function readModelConfig(
  stage: string,
  trained: InputArtifact,
  tokens: InputArtifact,
  vocabSize: number,
  seqLen: number,
): Promise<ModelConfig> {
  const config = JSON.parse(await readFile(trained.path(MODEL_FILE), 'utf8')) as ModelConfig;
  if (config.vocab_size !== vocabSize) {
    throw new Error(
      `${stage}: model "${trained.id}" has a vocabulary of ${config.vocab_size} tokens, tokenize "${tokens.id}" of ${vocabSize}: not the data it was trained on`,
    );
  }
  if (seqLen > config.seq_len)
    throw new Error(`${stage}: test inputs of ${seqLen} tokens exceed the model's seq_len ${config.seq_len}`);
  return config;
}

/** One set of weights of a train run. */
export interface WeightsAtStep {
  /** Optimizer steps done when they were saved. */
  step: number;
  /** Output file of the train artifact holding them. */
  file: string;
}

/**
 * Every set of weights of `trained`, by step: the kept checkpoints it lists, and the final
 * `weights.safetensors` at `finalStep` (its curve's last step; a checkpoint at that step is the
 * same weights and is left out). A run without kept checkpoints has only its final weights.
 */
export function weightsByStep(trained: InputArtifact, finalStep: number): WeightsAtStep[] {
  const out: WeightsAtStep[] = [];
  for (const file of trained.files) {
    const step = keptCheckpointStep(file);
    if (step !== undefined && step !== finalStep) out.push({ step, file });
  }
  out.push({ step: finalStep, file: WEIGHTS_FILE });
  return out.sort((a, b) => a.step - b.step);
}

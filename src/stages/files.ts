/**
 * Names of the trained model's files: written by `train`, read by `evaluate` (docs/artifacts.md).
 * The curve's and the analysis' files are named in `../analysis/files.ts`.
 */

/** The weights (`../models/weights.ts`: float32 safetensors, the config in the metadata). */
export const WEIGHTS_FILE = 'weights.safetensors';
/** The architecture config as JSON, vocabulary size and sequence length included. */
export const MODEL_FILE = 'model.json';
/** The folder of a train run's kept checkpoints (docs/artifacts.md "train"). */
export const CHECKPOINTS_DIR = 'checkpoints';
/** A kept checkpoint's file: `checkpoints/step-<step, 7 digits>.safetensors`, weights only, as `WEIGHTS_FILE`. */
export function checkpointFile(step: number): string {
  return `${CHECKPOINTS_DIR}/step-${String(step).padStart(7, '0')}.safetensors`;
}

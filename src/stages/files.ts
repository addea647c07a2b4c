/**
 * Names of the trained model's files: written by `train`, read by `evaluate` (docs/artifacts.md).
 * The curve's and the analysis' files are named in `../analysis/files.ts`.
 */

/** The weights (`../models/weights.ts`: float32 safetensors, the config in the metadata). */
export const WEIGHTS_FILE = 'weights.safetensors';
/** The architecture config as JSON, vocabulary size and sequence length included. */
export const MODEL_FILE = 'model.json';

/**
 * Folder of the kept checkpoints (`keep_checkpoints`): `checkpoints/step-<step, 7 digits>.safetensors`,
 * each the weights only, written as `WEIGHTS_FILE` (same tensor names, layouts and metadata).
 * Readers list the folder and order the files by step (`keptCheckpointStep`).
 */
export const KEPT_CHECKPOINTS_DIR = 'checkpoints';

/** The file of the checkpoint kept at `step` (`checkpoints/step-0000100.safetensors`). */
export function keptCheckpointFile(step: number): string {
  return `${KEPT_CHECKPOINTS_DIR}/step-${String(step).padStart(7, '0')}.safetensors`;
}

/** The step of a kept checkpoint's file name (`checkpoints/step-0000100.safetensors` -> 100), else undefined. */
export function keptCheckpointStep(name: string): number | undefined {
  const m = /^checkpoints\/step-(\d{7,})\.safetensors$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Folder of the final training state: one resumable checkpoint (`models/train/checkpoint.ts`:
 * weights, AdamW moments, data order, curve so far), which a longer run of the same params continues.
 */
export const FINAL_STATE_DIR = 'state';

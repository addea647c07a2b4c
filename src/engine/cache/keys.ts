/** The key components of a stage run, once its inputs' content hashes are known. */
import type { StageRun } from '../pipeline/expand.js';
import { stageKey } from './hash.js';
import type { KeyComponents } from './hash.js';

/**
 * Key components of `run` given the content hashes of its inputs (same order as `run.inputs`).
 * Inputs carry their matrix values only for `across: matrix` runs.
 * @throws Error when the number of content hashes does not match the inputs (a bug).
 */
export function keyComponents(run: StageRun, inputHashes: readonly string[]): KeyComponents {
  if (inputHashes.length !== run.inputs.length)
    throw new Error(`internal: ${run.id} has ${run.inputs.length} inputs, got ${inputHashes.length} hashes`);
  return {
    stage: run.stage.name,
    version: run.stage.version,
    params: run.params,
    inputs: run.inputs.map((input, i) => ({
      stage: input.stage.name,
      content_hash: inputHashes[i],
      ...(run.across ? { matrix: input.matrix } : {}),
    })),
  };
}

/**
 * The key of `run` (`stageKey` of its `keyComponents`), given its inputs' content hashes.
 * @throws Error as `keyComponents`.
 */
export function runKey(run: StageRun, inputHashes: readonly string[]): { components: KeyComponents; key: string } {
  const components = keyComponents(run, inputHashes);
  return { components, key: stageKey(components) };
}

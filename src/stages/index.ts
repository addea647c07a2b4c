/**
 * The registry of built-in stage types. The CLI hands it to the engine; the engine itself imports
 * no stage. Stage modules import heavy libraries (TF.js, Vega) lazily inside `run`, so that
 * planning a fully cached pipeline stays fast.
 */
import type { StageDefinition } from '../engine/stage.js';
import { analyzeStage } from './analyze.js';
import { evaluateStage } from './evaluate.js';
import { generateStage } from './generate.js';
import { probeStage } from './probe.js';
import { splitStage } from './split.js';
import { tokenizeStage } from './tokenize.js';
import { trainStage } from './train.js';

/** Every built-in stage type, by the name used in a pipeline's `uses:`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const builtinStages: readonly StageDefinition<any>[] = [
  analyzeStage,
  evaluateStage,
  generateStage,
  probeStage,
  splitStage,
  tokenizeStage,
  trainStage,
];

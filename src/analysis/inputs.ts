/**
 * The runs an analysis covers, read from the artifacts that carry a grokking curve (normally
 * `evaluate`'s; `train`'s also has one): each run named by its matrix values, its curve, its
 * grokking metrics, its final accuracies and its weight norms. Shared by the `analyze` stage and
 * the HTML report (which analyses the runs already in the store while the sweep is unfinished).
 */
import type { InputArtifact, Json } from '../engine/stage.js';
import { column, numRows } from '../table/table.js';
import { ACCURACY_FILE, CURVE_FILE } from './files.js';
import { computeRunMetrics, curveFromTable } from './metrics.js';
import type { AnalyzedRun } from './tables.js';
import { runName } from './tables.js';
import { weightNormsFromTable } from './weight-norms.js';

/** The thresholds of an analysis (the `analyze` stage's params of the same names). */
export interface AnalysisThresholds {
  /** `train_inferred` accuracy that marks memorisation (default 0.99). */
  memorise_threshold: number;
  /** ID/OOD accuracies at which generalisation is measured (default [0.9, 0.95, 0.99]). */
  generalise_thresholds: number[];
}

/** What an analysis reads of an artifact. */
export type CurveInput = Pick<InputArtifact, 'id' | 'stage' | 'matrix' | 'files' | 'readTable'>;

/**
 * Names of runs, as `analyze` gives them: by matrix values (`entities=400,seed=1`), or by the
 * input's stage id outside a sweep; repeated names get `#2`, `#3`, ...
 */
export function uniqueRunNames(inputs: readonly { matrix: Readonly<Record<string, Json>>; id: string }[]): string[] {
  const seen = new Map<string, number>();
  return inputs.map((input) => {
    const base = runName(input.matrix, input.id);
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    return count > 1 ? `${base}#${count}` : base;
  });
}

/** Reads evaluate's `accuracy.parquet` (`type STRING, accuracy DOUBLE`) as `{ type: accuracy }`; empty without one. */
async function readAccuracy(input: CurveInput): Promise<Record<string, number>> {
  if (!input.files.includes(ACCURACY_FILE)) return {};
  const table = await input.readTable(ACCURACY_FILE);
  const type = column(table, 'type', 'STRING');
  const accuracy = column(table, 'accuracy', 'DOUBLE');
  const out: Record<string, number> = {};
  for (let i = 0; i < numRows(table); i++) out[type[i]] = accuracy[i];
  return out;
}

/**
 * Reads and analyses every input that has a curve, named by `uniqueRunNames`.
 * @throws Error when no input has a curve.
 */
export async function analyzeInputs(
  inputs: readonly CurveInput[],
  thresholds: AnalysisThresholds,
): Promise<AnalyzedRun[]> {
  const withCurve = inputs.filter((i) => i.files.includes(CURVE_FILE));
  if (withCurve.length === 0) {
    const got = inputs.map((i) => `${i.id} (${i.stage})`).join(', ') || 'none';
    throw new Error(`analyze needs at least one input with ${CURVE_FILE} (an evaluate or train stage); got ${got}`);
  }
  const names = uniqueRunNames(withCurve);
  const runs: AnalyzedRun[] = [];
  for (const [i, input] of withCurve.entries()) {
    const table = await input.readTable(CURVE_FILE);
    const curve = curveFromTable(table);
    const metrics = computeRunMetrics(curve, {
      memoriseThreshold: thresholds.memorise_threshold,
      generaliseThresholds: thresholds.generalise_thresholds,
    });
    const evaluated = await readAccuracy(input);
    const norms = weightNormsFromTable(table);
    runs.push({ name: names[i], matrix: input.matrix, curve, metrics, evaluated, ...(norms && { norms }) });
  }
  return runs;
}

/**
 * The grokking metrics of a stored run (Wang et al. 2024 §2, `analysis/metrics.ts`): computed, with
 * the code of the `analyze` stage, from the newest artifact downstream of the run that carries a
 * grokking curve (`evaluate`'s, with the final accuracies on the full test sets), else from the
 * run's own curve (`train`'s). The thresholds are those of the newest `analyze` downstream of that
 * curve, else analyze's defaults (0.99; 0.9, 0.95, 0.99).
 */
import { inputArtifact } from '../engine/exec/job.js';
import type { Json } from '../engine/stage.js';
import { CURVE_FILE } from '../analysis/files.js';
import { analyzeInputs } from '../analysis/inputs.js';
import type { AnalysisThresholds } from '../analysis/inputs.js';
import { DEFAULT_GENERALISE_THRESHOLDS, DEFAULT_MEMORISE_THRESHOLD } from '../analysis/metrics.js';
import type { AnalyzedRun } from '../analysis/tables.js';
import { metricColumnNames, metricsRecord } from '../analysis/tables.js';
import type { StoredEntry, StoredRun } from './collect.js';

/** A run's metrics and where they come from. */
export interface RunMetricsRow {
  /** The artifact whose curve gave them (`evaluate/<key>`), or null when none has a curve. */
  readonly source: { readonly stage: string; readonly key: string } | null;
  /** The thresholds used. */
  readonly thresholds: AnalysisThresholds;
  /**
   * The columns of analyze's `metrics.parquet` (`memorise_step`, `id_step_0.9`, ...,
   * `final_ood_inferred`, `last_step`), null where it has −1 or NaN (never reached, undefined).
   */
  readonly values: Readonly<Record<string, number | null>>;
  /** The analysed run (curve and metrics), for plots; absent without a curve. */
  readonly analysed?: AnalyzedRun;
}

const hasCurve = (e: StoredEntry) => e.manifest.outputs.some((o) => o.name === CURVE_FILE);

/** The thresholds of the newest `analyze` among `entries` that reads `source`, else the defaults. */
function thresholdsFor(source: StoredEntry, entries: readonly StoredEntry[]): AnalysisThresholds {
  const analyze = entries.find((e) => e.stage === 'analyze' && e.manifest.inputs.some((i) => i.key === source.key));
  const p = analyze?.manifest.params as Partial<AnalysisThresholds> | undefined;
  return {
    memorise_threshold: p?.memorise_threshold ?? DEFAULT_MEMORISE_THRESHOLD,
    generalise_thresholds: p?.generalise_thresholds ?? [...DEFAULT_GENERALISE_THRESHOLDS],
  };
}

/**
 * The metrics of `run` (see the module comment); `matrix` labels the analysed run for plots.
 * @throws Error when a curve table cannot be read (a damaged artifact).
 */
export async function runMetrics(run: StoredRun, matrix: Readonly<Record<string, Json>> = {}): Promise<RunMetricsRow> {
  const source = run.downstream.find(hasCurve) ?? (hasCurve(run) ? run : undefined);
  const thresholds = thresholdsFor(source ?? run, run.downstream);
  if (!source) {
    const values = Object.fromEntries(metricColumnNames(thresholds.generalise_thresholds).map((c) => [c, null]));
    return { source: null, thresholds, values };
  }
  const artifact = inputArtifact({
    id: run.id,
    stage: source.stage,
    key: source.key,
    matrix,
    params: source.manifest.params,
    files: source.manifest.outputs.map((o) => o.name),
    dir: source.dir,
  });
  const [analysed] = await analyzeInputs([artifact], thresholds);
  const record = metricsRecord([analysed], thresholds.generalise_thresholds) as Record<string, Record<string, Json>>;
  const { matrix: _matrix, ...numbers } = record[analysed.name];
  return {
    source: { stage: source.stage, key: source.key },
    thresholds,
    values: numbers as Record<string, number | null>,
    analysed,
  };
}

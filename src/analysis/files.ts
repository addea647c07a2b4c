/**
 * Names of the files of the grokking curve and of its analysis (docs/artifacts.md): written by
 * `train`, `evaluate` and `analyze`, read by `analyze` and by the HTML report.
 */

/** The grokking curve: written by `train`, passed on unchanged by `evaluate`. */
export const CURVE_FILE = 'curve.parquet';
/** `evaluate`'s final accuracy and loss per test type. */
export const ACCURACY_FILE = 'accuracy.parquet';
/** `analyze`: one row of metrics per run. */
export const METRICS_FILE = 'metrics.parquet';
/** `analyze`: every run's curve, stacked with a `run` column. */
export const CURVES_FILE = 'curves.parquet';
/** `analyze`: mean and spread of the metrics over seeds (written when runs differ only by seed). */
export const SWEEP_FILE = 'sweep.parquet';
/** `analyze`'s trend of steps-to-generalise against each numeric knob (Spearman ρ, bootstrap CI). */
export const TREND_FILE = 'trend.parquet';
/** `probe`: the logit lens's accuracy per checkpoint step, layer and test type. */
export const PROBE_FILE = 'probe.parquet';

/** `curve.parquet`'s column of the L2 norm of all the weights (Omnigrok's weight norm), at each step. */
export const WEIGHT_NORM = 'weight_norm';

/**
 * `curve.parquet`'s column of the weight norm of block `part` (0-based), or of the parameters of no
 * block (`other`: embeddings, final norm, unembedding): `weight_norm_block_<i>`, `weight_norm_other`.
 */
export function weightNormColumn(part: number | 'other'): string {
  return part === 'other' ? `${WEIGHT_NORM}_other` : `${WEIGHT_NORM}_block_${part}`;
}

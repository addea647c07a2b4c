/**
 * What a pipeline's HTML report shows, gathered from the pipeline and the artifact store without
 * computing or writing anything: the stages (the DAG) with how many of their runs are cached,
 * every stage run with its artifact folder and files, and for each `analyze` run the runs it
 * covers with their knobs and grokking metrics.
 *
 * Metrics come from the `analyze` artifact (`metrics.parquet`, `curves.parquet`, `sweep.parquet`)
 * when it is in the store. When it is not (the sweep is still running, or a knob changed), they are
 * computed here, with the same code, from the runs whose curves are already in the store, and the
 * other runs are listed as not computed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StageRun } from '../engine/pipeline/expand.js';
import type { Manifest } from '../engine/cache/manifest.js';
import type { Pipeline } from '../engine/pipeline/pipeline.js';
import { upstreamRuns } from '../engine/pipeline/pipeline.js';
import type { PlannedRun } from '../engine/explain/plan.js';
import { planRuns } from '../engine/explain/plan.js';
import type { Json } from '../engine/stage.js';
import type { Store } from '../engine/cache/store.js';
import { inputArtifact } from '../engine/exec/job.js';
import { readTable } from '../table/parquet.js';
import type { Table } from '../table/table.js';
import { toRows } from '../table/table.js';
import type { Curve, CurvePoint } from '../analysis/metrics.js';
import { ACCURACY_TYPES, buildCurve, computeRunMetrics } from '../analysis/metrics.js';
import { CURVE_FILE, CURVES_FILE, METRICS_FILE, SWEEP_FILE } from '../analysis/files.js';
import { analyzeInputs, uniqueRunNames } from '../analysis/inputs.js';
import type { AnalysisThresholds } from '../analysis/inputs.js';
import type { AnalyzedRun } from '../analysis/tables.js';
import { metricsTable } from '../analysis/tables.js';
import { hasReplicates, sweepTable } from '../analysis/aggregate.js';
import { gatherProbes } from './probe.js';
import type { ReportProbe } from './probe.js';

/** A table row as plain values (`toRows`). */
export type Row = Record<string, string | number | boolean | null>;

/** A stage of the pipeline: a node of the DAG. */
export interface ReportStage {
  /** Stage id in the file (`kb`). */
  readonly id: string;
  /** Stage type (`generate`). */
  readonly uses: string;
  /** Ids of the stages it reads, in `needs:` order. */
  readonly needs: readonly string[];
  /** True for `across: matrix`. */
  readonly across: boolean;
  /** Number of runs (one per matrix combination it depends on). */
  readonly runs: number;
  /** How many of them are in the store. */
  readonly cached: number;
}

/** One output file of an artifact. */
export interface ReportFile {
  readonly name: string;
  /** Size (bytes). */
  readonly bytes: number;
}

/** A stage run and its artifact folder, when it is in the store. */
export interface ReportArtifact {
  /** Run id (`model[entities=400,seed=1]`). */
  readonly id: string;
  /** Stage type. */
  readonly stage: string;
  readonly status: 'cached' | 'planned';
  /** Its key, null while an upstream run is not computed. */
  readonly key: string | null;
  /** Why it would run (empty when cached). */
  readonly reason: string;
  /** Absolute artifact folder (cached only). */
  readonly dir?: string;
  /** Its output files (cached only). */
  readonly files: readonly ReportFile[];
  /** Seconds it took to compute (cached only). */
  readonly seconds?: number;
}

/** One run covered by an analysis: a row of the runs table. */
export interface ReportRun {
  /** Run label (`entities=400,seed=1`), as in `metrics.parquet`. */
  readonly name: string;
  /** Its matrix values. */
  readonly matrix: Readonly<Record<string, Json>>;
  /** `analysed`: metrics below; `not computed`: some of its stage runs are not in the store. */
  readonly status: 'analysed' | 'not computed';
  /** Its `metrics.parquet` row (analysed runs only). */
  readonly metrics?: Row;
  /** Ids of its stage runs that are not in the store yet. */
  readonly pending: readonly string[];
  /** Its stage runs, dependencies first (the artifact folders of this run). */
  readonly artifacts: readonly ReportArtifact[];
}

/** One `analyze` run of the pipeline and what it covers. */
export interface ReportAnalysis {
  /** Run id of the analyze run (`report`). */
  readonly id: string;
  /**
   * `stored`: read from the analyze artifact; `partial`: analyze is not in the store, metrics
   * computed for the report from the runs whose curves are; `none`: no curve is in the store yet;
   * `all-runs`: every stored run of the pipeline, whatever `--set` produced it (`all-runs.ts`).
   */
  readonly source: 'stored' | 'partial' | 'none' | 'all-runs';
  /** The analyze artifact. */
  readonly artifact: ReportArtifact;
  /** Its thresholds (from its validated params). */
  readonly params: AnalysisThresholds;
  /** The matrix knobs of its runs, in matrix order. */
  readonly knobs: readonly string[];
  /** One entry per run it covers, in matrix order. */
  readonly runs: readonly ReportRun[];
  /** The analysed runs with curves and metrics (for the plots), in the order of `runs`. */
  readonly analysed: readonly AnalyzedRun[];
  /** `sweep.parquet` rows (mean and spread over seeds), when some runs differ only by seed. */
  readonly sweep: readonly Row[];
}

/** Everything the report shows. */
export interface ReportData {
  /** `name:` of the pipeline (or its file name). */
  readonly name: string;
  readonly description?: string;
  /** The pipeline file. */
  readonly file: string;
  /** Absolute store root. */
  readonly store: string;
  /** The stages, dependencies first. */
  readonly stages: readonly ReportStage[];
  /** Every stage run, dependencies first. */
  readonly artifacts: readonly ReportArtifact[];
  /** One per `analyze` run. */
  readonly analyses: readonly ReportAnalysis[];
  /** One per `probe` run (the logit lens), in pipeline order; absent or empty when there is none. */
  readonly probes?: readonly ReportProbe[];
}

function artifactOf(p: PlannedRun): ReportArtifact {
  const m: Manifest | undefined = p.manifest;
  return {
    id: p.run.id,
    stage: p.run.stage.name,
    status: p.status,
    key: p.key,
    reason: p.reason,
    dir: p.dir,
    files: m ? m.outputs.map((o) => ({ name: o.name, bytes: o.bytes })) : [],
    seconds: m?.timings.seconds,
  };
}

function stagesOf(pipeline: Pipeline, plan: ReadonlyMap<StageRun, PlannedRun>): ReportStage[] {
  const out = new Map<
    string,
    { id: string; uses: string; needs: string[]; across: boolean; runs: number; cached: number }
  >();
  for (const run of pipeline.runs) {
    let s = out.get(run.stageId);
    if (!s)
      out.set(
        run.stageId,
        (s = { id: run.stageId, uses: run.stage.name, needs: [], across: run.across, runs: 0, cached: 0 }),
      );
    s.runs++;
    if (plan.get(run)?.status === 'cached') s.cached++;
    for (const i of run.inputs) if (!s.needs.includes(i.stageId)) s.needs.push(i.stageId);
  }
  return [...out.values()];
}

/** Analysed runs rebuilt from an analyze artifact's `metrics.parquet` and `curves.parquet`. */
function runsFromTables(
  metrics: readonly Row[],
  curves: Table,
  matrixOf: (name: string) => Readonly<Record<string, Json>>,
  params: AnalysisThresholds,
): AnalyzedRun[] {
  const points = new Map<string, CurvePoint[]>();
  for (const r of toRows(curves)) {
    const name = r.run as string;
    let list = points.get(name);
    if (!list) points.set(name, (list = []));
    list.push({
      type: r.type as string,
      step: r.step as number,
      epoch: r.epoch as number,
      accuracy: r.accuracy as number,
      loss: r.loss as number,
    });
  }
  return metrics.map((row) => {
    const name = row.run as string;
    const curve: Curve = buildCurve(points.get(name) ?? []);
    const evaluated: Record<string, number> = {};
    for (const type of ACCURACY_TYPES) {
      const v = row[`final_${type}`];
      if (typeof v === 'number' && Number.isFinite(v)) evaluated[type] = v;
    }
    return {
      name,
      matrix: matrixOf(name),
      curve,
      metrics: computeRunMetrics(curve, {
        memoriseThreshold: params.memorise_threshold,
        generaliseThresholds: params.generalise_thresholds,
      }),
      evaluated,
    };
  });
}

async function gatherAnalysis(run: StageRun, plan: ReadonlyMap<StageRun, PlannedRun>): Promise<ReportAnalysis> {
  const positions = new Map([...plan.keys()].map((r, i) => [r, i]));
  const index = (r: StageRun): number => positions.get(r) ?? -1;
  const params = run.params as unknown as AnalysisThresholds;
  const planned = plan.get(run) as PlannedRun;
  const hasCurve = (r: StageRun): boolean => plan.get(r)?.manifest?.outputs.some((o) => o.name === CURVE_FILE) ?? false;
  // The runs: inputs in the store with a curve, and inputs not computed yet unless a stored run of
  // the same stage has no curve (an input that analyze reads for something else).
  const stored = (r: StageRun): boolean => plan.get(r)?.status === 'cached';
  const curveless = new Set(run.inputs.filter((r) => stored(r) && !hasCurve(r)).map((r) => r.stageId));
  const inputs = run.inputs.filter((r) => hasCurve(r) || (!stored(r) && !curveless.has(r.stageId)));
  const names = uniqueRunNames(inputs);
  const byName = new Map(names.map((n, i) => [n, inputs[i]]));
  const knobs: string[] = [];
  for (const r of inputs) for (const k of Object.keys(r.matrix)) if (!knobs.includes(k)) knobs.push(k);

  let analysed: AnalyzedRun[] = [];
  let metricRows: Row[] = [];
  let sweep: Row[] = [];
  let source: ReportAnalysis['source'];
  if (planned.status === 'cached' && planned.dir) {
    source = 'stored';
    const dir = planned.dir;
    metricRows = toRows(await readTable(join(dir, METRICS_FILE)));
    analysed = runsFromTables(
      metricRows,
      await readTable(join(dir, CURVES_FILE)),
      (n) => byName.get(n)?.matrix ?? {},
      params,
    );
    if (existsSync(join(dir, SWEEP_FILE))) sweep = toRows(await readTable(join(dir, SWEEP_FILE)));
  } else {
    const done = inputs.filter(hasCurve);
    if (done.length === 0) {
      source = 'none';
    } else {
      source = 'partial';
      const artifacts = done.map((r) => {
        const p = plan.get(r) as PlannedRun;
        const m = p.manifest as Manifest;
        return inputArtifact({
          id: r.id,
          stage: r.stage.name,
          key: m.key,
          matrix: r.matrix,
          params: r.params,
          files: m.outputs.map((o) => o.name),
          dir: p.dir as string,
        });
      });
      analysed = await analyzeInputs(artifacts, params);
      // Names as analyze would give them over every input (`#2` for repeats).
      analysed = analysed.map((a, i) => ({ ...a, name: names[inputs.indexOf(done[i])] }));
      metricRows = toRows(metricsTable(analysed, params.generalise_thresholds));
      if (hasReplicates(analysed, params.generalise_thresholds))
        sweep = toRows(sweepTable(analysed, params.generalise_thresholds));
    }
  }
  const rowByName = new Map(metricRows.map((r) => [r.run as string, r]));
  const runs: ReportRun[] = inputs.map((input, i) => {
    // upstreamRuns is nearest first: sort into the pipeline's dependency order.
    const chain = [...upstreamRuns(input), input]
      .sort((a, b) => index(a) - index(b))
      .map((r) => plan.get(r) as PlannedRun);
    const metrics = rowByName.get(names[i]);
    return {
      name: names[i],
      matrix: input.matrix,
      status: metrics ? 'analysed' : 'not computed',
      metrics,
      pending: chain.filter((p) => p.status !== 'cached').map((p) => p.run.id),
      artifacts: chain.map(artifactOf),
    };
  });
  return { id: run.id, source, artifact: artifactOf(planned), params, knobs, runs, analysed, sweep };
}

/**
 * Gathers the report of a compiled pipeline from `store` (reads only).
 * @throws Error when a stored table cannot be read.
 */
export async function gatherReport(pipeline: Pipeline, store: Store): Promise<ReportData> {
  const planned = await planRuns(pipeline.runs, store);
  const plan = new Map(planned.map((p) => [p.run, p]));
  const analyses: ReportAnalysis[] = [];
  for (const run of pipeline.runs) if (run.stage.name === 'analyze') analyses.push(await gatherAnalysis(run, plan));
  return {
    name: pipeline.name,
    description: pipeline.description,
    file: pipeline.file,
    store: store.root,
    stages: stagesOf(pipeline, plan),
    artifacts: planned.map(artifactOf),
    analyses,
    probes: await gatherProbes(planned),
  };
}

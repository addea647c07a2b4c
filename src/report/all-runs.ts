/**
 * The report's section of every run of the pipeline (`grokpipe report --all-runs`): each `train`
 * run of the store that the pipeline used, whatever `--set` produced it and however the file read
 * then (`runs/collect.ts`), as one row with the knobs that differ between them as its columns and
 * its grokking metrics, computed for the report from its curve (`runs/metrics.ts`); and the plots
 * of all of them. The same rows as `grokpipe runs <pipeline>`.
 */
import type { Manifest } from '../engine/cache/manifest.js';
import type { Store } from '../engine/cache/store.js';
import type { Pipeline } from '../engine/pipeline/pipeline.js';
import type { Json } from '../engine/stage.js';
import { toRows } from '../table/table.js';
import { hasReplicates, sweepTable } from '../analysis/aggregate.js';
import { uniqueRunNames } from '../analysis/inputs.js';
import type { AnalyzedRun } from '../analysis/tables.js';
import { metricsTable } from '../analysis/tables.js';
import { collectRuns } from '../runs/collect.js';
import type { StoredEntry, StoredRun } from '../runs/collect.js';
import { differingKnobs, shortKnobNames } from '../runs/knobs.js';
import { runMetrics } from '../runs/metrics.js';
import type { ReportAnalysis, ReportArtifact, ReportRun, Row } from './data.js';

/** The id of the section (its anchor is `analysis-all-runs`). */
export const ALL_RUNS_ID = 'all-runs';

/** A store entry as an artifact of the report (always cached: it is in the store). */
function artifactOf(e: StoredEntry): ReportArtifact {
  const m: Manifest = e.manifest;
  return {
    id: m.pipeline.id,
    stage: e.stage,
    status: 'cached',
    key: e.key,
    reason: '',
    dir: e.dir,
    files: m.outputs.map((o) => ({ name: o.name, bytes: o.bytes })),
    seconds: m.timings.seconds,
  };
}

/** The run's lineage (inputs first), itself, and the artifact its metrics came from. */
function chainOf(run: StoredRun, byKey: ReadonlyMap<string, StoredEntry>, source: string | null): ReportArtifact[] {
  const up: StoredEntry[] = [];
  const visit = (e: StoredEntry) => {
    for (const i of e.manifest.inputs) {
      const found = byKey.get(i.key);
      if (found && !up.includes(found)) {
        visit(found);
        up.push(found);
      }
    }
  };
  visit(run);
  const down = run.downstream.filter((d) => d.key === source);
  return [...up, run, ...down].map(artifactOf);
}

/**
 * The section of every stored `train` run of `pipeline`, or null when the store holds none.
 * @throws Error when a curve table cannot be read.
 */
export async function gatherAllRuns(pipeline: Pipeline, store: Store): Promise<ReportAnalysis | null> {
  const stored = await collectRuns(store, { stage: 'train', pipelineFile: pipeline.file });
  if (stored.length === 0) return null;
  stored.reverse(); // oldest first, as a lab notebook
  const knobs = differingKnobs(stored);
  const short = shortKnobNames(knobs);
  const matrixOf = (r: StoredRun): Record<string, Json> =>
    Object.fromEntries(knobs.map((k, i) => [short[i], r.knobs[k] ?? null]));
  const names = uniqueRunNames(stored.map((r) => ({ matrix: matrixOf(r), id: r.meta.name ?? r.id })));
  const metrics = await Promise.all(stored.map((r) => runMetrics(r, matrixOf(r))));
  const params = metrics[0].thresholds;
  const analysed: AnalyzedRun[] = [];
  metrics.forEach((m, i) => {
    if (m.analysed) analysed.push({ ...m.analysed, name: names[i] });
  });
  const rows = new Map(toRows(metricsTable(analysed, params.generalise_thresholds)).map((r) => [r.run as string, r]));
  const byKey = new Map<string, StoredEntry>();
  for (const r of stored) for (const d of [r, ...r.downstream]) byKey.set(d.key, d);
  for (const e of (await Promise.all(stored.map((r) => upstreamEntries(store, r)))).flat()) byKey.set(e.key, e);
  const runs: ReportRun[] = stored.map((r, i) => {
    const row: Row | undefined = rows.get(names[i]);
    const source = metrics[i].source?.key ?? null;
    return {
      name: names[i],
      matrix: matrixOf(r),
      status: row ? 'analysed' : 'not computed',
      metrics: row,
      pending: row ? [] : [`an evaluate or train curve of ${r.id}`],
      artifacts: chainOf(r, byKey, source),
    };
  });
  const artifact: ReportArtifact = {
    id: ALL_RUNS_ID,
    stage: 'analyze',
    status: 'planned',
    key: null,
    reason: 'computed for this report',
    files: [],
  };
  const sweep = hasReplicates(analysed, params.generalise_thresholds)
    ? toRows(sweepTable(analysed, params.generalise_thresholds))
    : [];
  return { id: ALL_RUNS_ID, source: 'all-runs', artifact, params, knobs: short, runs, analysed, sweep };
}

/** The entries upstream of a run (its inputs, recursively), read from the store. */
async function upstreamEntries(store: Store, run: StoredEntry): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  let frontier = [...run.manifest.inputs];
  while (frontier.length > 0) {
    const next: typeof frontier = [];
    for (const i of frontier) {
      if (out.some((e) => e.key === i.key)) continue;
      const manifest = await store.findManifest(i.stage, i.key);
      if (!manifest) continue;
      out.push({ stage: i.stage, key: i.key, dir: store.artifactDir(i.stage, i.key), manifest });
      next.push(...manifest.inputs);
    }
    frontier = next;
  }
  return out;
}

/**
 * What would run and why, without computing anything or writing to the store: for each run in
 * dependency order, its key when its inputs are cached, then `cached`, or `planned` with a reason
 * that names its root causes (`cause.ts`).
 */
import { explainRun } from './cause.js';
import type { RootCause } from './cause.js';
import type { StageRun } from '../pipeline/expand.js';
import { stageKey } from '../cache/hash.js';
import { keyComponents } from '../cache/keys.js';
import type { Manifest } from '../cache/manifest.js';
import type { Store } from '../cache/store.js';

/** The plan for one run. */
export interface PlannedRun {
  readonly run: StageRun;
  /** Its key, or null while an upstream run has not run (its content is unknown). */
  readonly key: string | null;
  readonly status: 'cached' | 'planned';
  /** Empty for cached runs; otherwise why it must run. */
  readonly reason: string;
  /** Root causes of a planned run (the run itself when it has reasons of its own). */
  readonly roots?: readonly RootCause[];
  /** The nearest cached entry of the same stage type a planned run was compared with. */
  readonly nearest?: Manifest;
  /** Artifact folder of a cached run. */
  readonly dir?: string;
  /** Manifest of a cached run. */
  readonly manifest?: Manifest;
}

/**
 * Plans every run (given in dependency order). Reads the store only.
 * @returns one entry per run, in the same order.
 */
export async function planRuns(runs: readonly StageRun[], store: Store): Promise<PlannedRun[]> {
  const byRun = new Map<StageRun, PlannedRun>();
  const out: PlannedRun[] = [];
  const find = (stage: string, key: string) => store.findManifest(stage, key);
  for (const run of runs) {
    const ups = run.inputs.map((i) => byRun.get(i));
    if (ups.some((u) => u === undefined)) throw new Error(`internal: ${run.id} planned before its inputs`);
    const inputs = (ups as PlannedRun[]).map((u) => ({
      id: u.run.id,
      matrix: u.run.matrix,
      ...(u.status === 'planned' ? { roots: u.roots ?? [{ id: u.run.id, reason: u.reason }] } : {}),
      ...(u.manifest ? { manifest: u.manifest } : {}),
    }));
    const own = { stage: run.stage.name, version: run.stage.version, params: run.params };
    let plan: PlannedRun;
    if (ups.some((u) => u?.status !== 'cached')) {
      const why = await explainRun({ id: run.id, own, inputs, candidates: await store.manifests(run.stage.name), find, mode: 'plan' });
      plan = { run, key: null, status: 'planned', reason: why.reason, roots: why.roots, ...(why.nearest ? { nearest: why.nearest } : {}) };
    } else {
      const components = keyComponents(
        run,
        ups.map((u) => (u?.manifest as Manifest).content_hash),
      );
      const key = stageKey(components);
      const found = await store.lookup(run.stage.name, key);
      if (found.hit) {
        plan = { run, key, status: 'cached', reason: '', dir: found.dir, manifest: found.manifest };
      } else {
        const why = await explainRun({
          id: run.id,
          own,
          components,
          inputs,
          ...(found.reason ? { lookupReason: found.reason } : {}),
          candidates: await store.manifests(run.stage.name),
          find,
          mode: 'plan',
        });
        plan = { run, key, status: 'planned', reason: why.reason, roots: why.roots, ...(why.nearest ? { nearest: why.nearest } : {}) };
      }
    }
    byRun.set(run, plan);
    out.push(plan);
  }
  return out;
}

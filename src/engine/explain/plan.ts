/**
 * What would run and why, without computing anything or writing to the store: for each run in
 * dependency order, its key when its inputs are cached, then `cached`, or `planned` with a reason
 * that names its root causes (`cause.ts`).
 */
import type { RootCause } from './cause.js';
import type { Manifest } from '../cache/manifest.js';
import type { Store } from '../cache/store.js';
import type { StageRun } from '../pipeline/expand.js';
import { inputState, resolveRun } from './resolve.js';

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
  for (const run of runs) {
    const ups = run.inputs.map((i) => byRun.get(i));
    if (ups.some((u) => u === undefined)) throw new Error(`internal: ${run.id} planned before its inputs`);
    const inputs = (ups as PlannedRun[]).map((u) => inputState(u, u.status === 'planned'));
    const r = await resolveRun(run, inputs, store, 'plan');
    const plan: PlannedRun =
      r.kind === 'hit'
        ? { run, key: r.key, status: 'cached', reason: '', dir: r.dir, manifest: r.manifest }
        : {
            run,
            key: r.kind === 'miss' ? r.key : null,
            status: 'planned',
            reason: r.why.reason,
            roots: r.why.roots,
            ...(r.why.nearest ? { nearest: r.why.nearest } : {}),
          };
    byRun.set(run, plan);
  }
  return runs.map((run) => byRun.get(run) as PlannedRun);
}

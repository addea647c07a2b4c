/**
 * What would run and why, without computing anything or writing to the store: for each run in
 * dependency order, its key when its inputs are cached, then `cached`, or `planned` with a reason
 * that names its root causes (`cause.ts`).
 */
import type { RootCause } from './cause.js';
import type { Manifest } from '../cache/manifest.js';
import { OutputsCheck } from '../cache/outputs-check.js';
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
 * Runs from which `planRuns` checks the outputs of hits on worker threads: below it, starting the
 * workers (some 30 ms) costs more than the `stat`s it moves off this thread.
 */
export const PARALLEL_CHECK_RUNS = 2000;

/** Options of `planRuns`. */
export interface PlanOptions {
  /** Runs from which hits' outputs are checked on worker threads (default `PARALLEL_CHECK_RUNS`). */
  readonly parallelCheckFrom?: number;
}

/**
 * Plans every run (given in dependency order). Reads the store only.
 *
 * On a large sweep the outputs of cache hits are checked on worker threads while planning goes
 * on (`OutputsCheck`); should any be damaged, the plan is made again with the full lookup, so
 * the result is always the one of a lookup by lookup plan.
 * @returns one entry per run, in the same order.
 */
export async function planRuns(
  runs: readonly StageRun[],
  store: Store,
  options: PlanOptions = {},
): Promise<PlannedRun[]> {
  const threads = OutputsCheck.threads();
  if (runs.length >= (options.parallelCheckFrom ?? PARALLEL_CHECK_RUNS) && threads > 0) {
    const check = new OutputsCheck(threads);
    const plan = await planWith(runs, store, check);
    if (await check.intact()) return plan;
  }
  return planWith(runs, store);
}

/** `planRuns` with each hit's outputs checked by `check` (later) or, without it, by the lookup. */
async function planWith(runs: readonly StageRun[], store: Store, check?: OutputsCheck): Promise<PlannedRun[]> {
  const byRun = new Map<StageRun, PlannedRun>();
  for (const run of runs) {
    const ups = run.inputs.map((i) => byRun.get(i));
    if (ups.some((u) => u === undefined)) throw new Error(`internal: ${run.id} planned before its inputs`);
    const inputs = (ups as PlannedRun[]).map((u) => inputState(u, u.status === 'planned'));
    const r = await resolveRun(run, inputs, store, 'plan', check ? 'defer' : 'check');
    if (r.kind === 'hit') check?.add(r.dir, r.manifest);
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

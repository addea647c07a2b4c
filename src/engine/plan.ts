/**
 * What would run and why, without computing anything or writing to the store: for each run in
 * dependency order, its key when its inputs are cached, then `cached`, or `planned` with a reason.
 */
import type { StageRun } from './expand.js';
import { stageKey } from './hash.js';
import { keyComponents } from './keys.js';
import type { Manifest } from './manifest.js';
import type { Store } from './store.js';
import { explainMiss, formatList, ownChanges } from './why.js';

/** The plan for one run. */
export interface PlannedRun {
  readonly run: StageRun;
  /** Its key, or null while an upstream run has not run (its content is unknown). */
  readonly key: string | null;
  readonly status: 'cached' | 'planned';
  /** Empty for cached runs; otherwise why it must run. */
  readonly reason: string;
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
  const roots = new Map<StageRun, string[]>();
  const out: PlannedRun[] = [];
  for (const run of runs) {
    const ups = run.inputs.map((i) => byRun.get(i));
    if (ups.some((u) => u === undefined)) throw new Error(`internal: ${run.id} planned before its inputs`);
    const waiting = ups.filter((u) => u?.status !== 'cached') as PlannedRun[];
    let plan: PlannedRun;
    if (waiting.length > 0) {
      const rootIds = [...new Set(waiting.flatMap((u) => roots.get(u.run) ?? [u.run.id]))];
      roots.set(run, rootIds);
      const own = ownChanges(
        { stage: run.stage.name, version: run.stage.version, params: run.params },
        await store.manifests(run.stage.name),
      );
      plan = { run, key: null, status: 'planned', reason: [...own, `upstream ${formatList(rootIds)} will run`].join('; ') };
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
        roots.set(run, [run.id]);
        const reason =
          found.reason ??
          explainMiss({ components, inputIds: run.inputs.map((i) => i.id) }, await store.manifests(run.stage.name));
        plan = { run, key, status: 'planned', reason };
      }
    }
    byRun.set(run, plan);
    out.push(plan);
  }
  return out;
}

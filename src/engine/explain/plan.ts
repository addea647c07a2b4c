/**
 * What would run and why, without computing anything or writing to the store: for each run in
 * dependency order, its key when its inputs are cached, then `cached`, or `planned` with a reason
 * that names its root causes (`cause.ts`).
 */
import type { RootCause } from './cause.js';
import { IndexedLookup } from '../cache/indexed-lookup.js';
import type { Manifest } from '../cache/manifest.js';
import { IndexUpdate, ManifestIndex, worthReading } from '../cache/manifest-index.js';
import { OutputsCheck } from '../cache/outputs-check.js';
import { runKey } from '../cache/keys.js';
import type { Lookup, Store } from '../cache/store.js';
import { storeReadOnly } from '../cache/store-access.js';
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
  /** Content hash of a cached run's artifact (its manifest's `content_hash`). */
  readonly contentHash?: string;
  /** Manifest of a cached run: read when first used, when the manifest index served the lookup. */
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
  /**
   * The store's manifest index (`cache/manifest-index.ts`): used and brought up to date (default;
   * unless it is large for the plan, `worthReading`), or left alone (`false`). `racyMs` as
   * `RACY_MS` (tests make it 0).
   */
  readonly index?: false | { readonly racyMs?: number };
}

/**
 * Plans every run (given in dependency order). Reads the store, and writes only its manifest index
 * (when the plan read manifests the index lacked, and the store can be written).
 *
 * Lookups go through the manifest index (`cache/indexed-lookup.ts`). On a large sweep the outputs
 * of cache hits, and the manifests of indexed ones, are checked on worker threads while planning
 * goes on (`OutputsCheck`); should any be damaged or changed, the plan is made again with each
 * lookup checked at once, so the result is always the one of a lookup by lookup plan.
 * @returns one entry per run, in the same order.
 */
export async function planRuns(
  runs: readonly StageRun[],
  store: Store,
  options: PlanOptions = {},
): Promise<PlannedRun[]> {
  const threads = OutputsCheck.threads();
  const parallel = runs.length >= (options.parallelCheckFrom ?? PARALLEL_CHECK_RUNS) && threads > 0;
  // The workers start while this thread reads the index.
  const check = parallel ? new OutputsCheck(threads) : undefined;
  const useIndex = options.index !== false && worthReading(store.root, runs.length);
  const index = useIndex ? ManifestIndex.load(store.root) : ManifestIndex.empty();
  const writable = useIndex && storeReadOnly(store.root) === undefined;
  const racyMs = options.index ? options.index.racyMs : undefined;
  const lookup = (check?: OutputsCheck) => {
    const update = writable ? new IndexUpdate(index) : undefined;
    return { update, lookup: new IndexedLookup(store, index, { check, update, racyMs }) };
  };
  if (check) {
    if (index.size > 0) check.useIndex(store.root, index.text);
    const first = lookup(check);
    const plan = await planWith(runs, store, first.lookup);
    if (await check.intact()) {
      first.update?.save(store.root);
      return plan;
    }
  }
  const last = lookup();
  const plan = await planWith(runs, store, last.lookup);
  last.update?.save(store.root);
  return plan;
}

/**
 * `planRuns` with each key looked up by `lookup`. A run whose inputs are all cached has a known
 * key; when it is a hit too, there is nothing to explain and its plan is made at once (no
 * promise, no input states: most of a cached sweep); anything else goes through `resolveRun`.
 */
async function planWith(runs: readonly StageRun[], store: Store, lookup: IndexedLookup): Promise<PlannedRun[]> {
  const byRun = new Map<StageRun, PlannedRun>();
  const find = (stage: string, key: string) => lookup.lookup(stage, key);
  for (const run of runs) {
    const ups = run.inputs.map((i) => byRun.get(i));
    if (ups.some((u) => u === undefined)) throw new Error(`internal: ${run.id} planned before its inputs`);
    const hashes = (ups as PlannedRun[]).map((u) => u.contentHash);
    let found: Lookup | undefined;
    if (hashes.every((h) => h !== undefined)) {
      const { key } = runKey(run, hashes as string[]);
      found = lookup.lookup(run.stage.name, key);
      if (found.hit) {
        byRun.set(run, new CachedPlan(run, key, found.contentHash, found));
        continue;
      }
    }
    const inputs = (ups as PlannedRun[]).map((u) => inputState(u, u.status === 'planned'));
    const looked = found;
    const r = await resolveRun(run, inputs, store, 'plan', looked ? () => looked : find);
    const plan: PlannedRun =
      r.kind === 'hit'
        ? new CachedPlan(run, r.key, r.contentHash, r)
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

/**
 * The plan of a cached run; its manifest as the lookup has it (read when first used when the
 * manifest index served it). A class, not a literal with a getter: tens of thousands of those
 * cost V8 a dictionary each.
 */
class CachedPlan implements PlannedRun {
  readonly status = 'cached';
  readonly reason = '';
  readonly #lookup: { readonly dir: string; readonly manifest: Manifest };

  constructor(
    readonly run: StageRun,
    readonly key: string,
    readonly contentHash: string,
    lookup: { readonly dir: string; readonly manifest: Manifest },
  ) {
    this.#lookup = lookup;
  }

  get dir(): string {
    return this.#lookup.dir;
  }

  get manifest(): Manifest {
    return this.#lookup.manifest;
  }
}

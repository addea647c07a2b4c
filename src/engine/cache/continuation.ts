/**
 * Prefix reuse: the cached run that a run about to execute may continue instead of starting over.
 *
 * A stage opts in with `StageDefinition.continues(params, cachedParams)`. The candidates are the
 * complete entries of the same stage type, with the same code version and the same inputs (the
 * same key components but the params); the stage says which of them it can continue and how far
 * along each is, and the furthest wins (the newest among equals). Before a run is handed one as
 * `ctx.continueFrom`, the entry's files are checked against its manifest's byte hashes; a damaged
 * entry is passed over, never repaired here. The engine knows nothing of what is continued.
 */
import type { JobInput } from '../exec/job.js';
import type { StageRun } from '../pipeline/expand.js';
import { canonicalJson } from './hash.js';
import type { KeyComponents } from './hash.js';
import { checkArtifactBytes } from './integrity.js';
import type { ByteCheckCache } from './integrity.js';
import type { Manifest } from './manifest.js';
import type { Store } from './store.js';

/** A cached run that a run can continue. */
export interface ContinuationSource {
  /** Its key. */
  readonly key: string;
  /** Its artifact folder. */
  readonly dir: string;
  readonly manifest: Manifest;
  /** Where it stands, as the stage put it (`at step 3000`). */
  readonly point: string;
}

/** Options of `findContinuation`. */
export interface FindOptions {
  /** Check the chosen entry's bytes (what the runner does before a stage reads it); default true. */
  readonly checkBytes?: boolean;
  /** Hashes already computed in this invocation. */
  readonly bytes?: ByteCheckCache;
}

/**
 * The cached run that `run` (whose key components are `components`) would continue, if any (see
 * the module comment). Reads the store only.
 * @throws Error on a store read failure.
 */
export async function findContinuation(
  store: Store,
  run: StageRun,
  components: KeyComponents,
  options: FindOptions = {},
): Promise<ContinuationSource | undefined> {
  const continues = run.stage.continues?.bind(run.stage);
  if (!continues) return undefined;
  const sameInputs = byInputs(await store.manifests(run.stage.name)).get(canonicalJson(components.inputs)) ?? [];
  const candidates = sameInputs
    .filter((m) => m.components.version === components.version)
    .flatMap((m) => {
      const c = continues(run.params, m.params);
      return c ? [{ manifest: m, ...c }] : [];
    })
    .sort(
      (a, b) =>
        b.progress - a.progress ||
        (b.manifest.timings?.finished ?? '').localeCompare(a.manifest.timings?.finished ?? ''),
    );
  for (const c of candidates) {
    const found = await store.lookup(run.stage.name, c.manifest.key);
    if (!found.hit) continue;
    if (options.checkBytes !== false && (await checkArtifactBytes(found.dir, found.manifest, options.bytes)).length > 0)
      continue;
    return { key: found.manifest.key, dir: found.dir, manifest: found.manifest, point: c.point };
  }
  return undefined;
}

/**
 * Manifests by the canonical JSON of their key's inputs, indexed once per list (a plan asks once
 * per run; the store makes a new list when it commits an entry).
 */
const indexes = new WeakMap<readonly Manifest[], Map<string, Manifest[]>>();
/** The canonical JSON of each manifest's key inputs, made once per manifest (lists are rebuilt per commit). */
const inputsJson = new WeakMap<Manifest, string>();

function inputsOf(m: Manifest): string {
  let k = inputsJson.get(m);
  if (k === undefined) {
    k = canonicalJson(m.components.inputs);
    inputsJson.set(m, k);
  }
  return k;
}

function byInputs(manifests: readonly Manifest[]): Map<string, Manifest[]> {
  let index = indexes.get(manifests);
  if (!index) {
    index = new Map();
    for (const m of manifests) {
      const k = inputsOf(m);
      const same = index.get(k);
      if (same) same.push(m);
      else index.set(k, [m]);
    }
    indexes.set(manifests, index);
  }
  return index;
}

/** `continued from <key, 12 digits> <point>` (`will continue from` in a plan). */
export function continuationNote(source: ContinuationSource, mode: 'plan' | 'run'): string {
  return `${mode === 'plan' ? 'will continue' : 'continued'} from ${source.key.slice(0, 12)} ${source.point}`;
}

/** The source as a job reads it (`ctx.continueFrom`); its matrix is empty (it may come from any pipeline). */
export function continuationInput(source: ContinuationSource): JobInput {
  const m = source.manifest;
  return {
    id: m.pipeline.id,
    stage: m.stage,
    key: source.key,
    matrix: {},
    params: m.params,
    files: m.outputs.map((o) => o.name),
    dir: source.dir,
  };
}

/**
 * For the runner, right before it executes `run`: the cached run to continue, if any, as a job
 * input, and the reason line (`why`) with `continued from ...` appended when there is one.
 * @throws Error on a store read failure.
 */
export async function continuationFor(
  store: Store,
  run: StageRun,
  components: KeyComponents,
  why: string,
  bytes?: ByteCheckCache,
): Promise<{ reason: string; input?: JobInput }> {
  const source = await findContinuation(store, run, components, { bytes });
  if (!source) return { reason: why };
  return { reason: `${why}; ${continuationNote(source, 'run')}`, input: continuationInput(source) };
}

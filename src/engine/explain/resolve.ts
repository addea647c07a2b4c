/**
 * The step `run` (`runner.ts`) and `plan` (`plan.ts`) share: a run's key from its inputs' content
 * hashes, the store lookup of that key, and on a miss the explanation of why the run must run
 * (`cause.ts`). When an input's content is not known yet (it will run first), there is no key to
 * look up: the explanation then compares the run's own code version and params and names the
 * upstream roots. A planned miss also says which cached run it would continue, if any
 * (`will continue from <key> at step 3000`, `cache/continuation.ts`).
 */
import { continuationNote, findContinuation } from '../cache/continuation.js';
import type { KeyComponents } from '../cache/hash.js';
import { runKey } from '../cache/keys.js';
import type { Manifest } from '../cache/manifest.js';
import type { Lookup, Store } from '../cache/store.js';
import type { StageRun } from '../pipeline/expand.js';
import type { Json } from '../stage.js';
import { explainRun } from './cause.js';
import type { ExplainArgs, Explanation, InputState, RootCause } from './cause.js';

/** A run's key, looked up in the store. */
export type Resolution =
  /** The key's entry is complete: the run is cached. */
  | {
      readonly kind: 'hit';
      readonly key: string;
      readonly components: KeyComponents;
      /** Artifact folder. */
      readonly dir: string;
      /** Its manifest's `content_hash`. */
      readonly contentHash: string;
      readonly manifest: Manifest;
    }
  /** The key has no complete entry: the run must run, for the reasons in `why`. */
  | { readonly kind: 'miss'; readonly key: string; readonly components: KeyComponents; readonly why: Explanation }
  /** An input's content is not known yet (it must run first), so neither is the key. */
  | { readonly kind: 'unkeyed'; readonly why: Explanation };

/**
 * Resolves `run` against `store` (see the module comment). Reads the store only.
 * @param inputs the states of `run.inputs`, in order; an input without a manifest has no known
 *   content yet.
 * @param mode how upstream roots are worded: `plan` (`will run`) or `run` (`ran`).
 * @param lookup looks the key up (default `Store.lookup`, outputs' sizes checked); planning passes
 *   its own (`cache/indexed-lookup.ts`).
 * @throws Error on a store read failure, or when `inputs` does not match `run.inputs` (a bug).
 */
export async function resolveRun(
  run: StageRun,
  inputs: readonly InputState[],
  store: Store,
  mode: 'plan' | 'run',
  lookup: (stage: string, key: string) => Lookup | Promise<Lookup> = (stage, key) => store.lookup(stage, key),
): Promise<Resolution> {
  const explain = async (known?: Pick<ExplainArgs, 'components' | 'lookupReason'>): Promise<Explanation> =>
    explainRun({
      id: run.id,
      own: { stage: run.stage.name, version: run.stage.version, params: run.params },
      inputs,
      candidates: await store.manifests(run.stage.name),
      find: (stage, key) => store.findManifest(stage, key),
      mode,
      ...known,
    });
  if (inputs.some((i) => i.content_hash === undefined)) return { kind: 'unkeyed', why: await explain() };
  const { components, key } = runKey(
    run,
    inputs.map((i) => i.content_hash as string),
  );
  const found = await lookup(run.stage.name, key);
  if (found.hit)
    return { kind: 'hit', key, components, dir: found.dir, contentHash: found.contentHash, manifest: found.manifest };
  const why = await explain({ components, ...(found.reason ? { lookupReason: found.reason } : {}) });
  // A plan says which cached run it would continue (the runner looks again when it executes).
  const source = mode === 'plan' ? await findContinuation(store, run, components, { checkBytes: false }) : undefined;
  if (source)
    return {
      kind: 'miss',
      key,
      components,
      why: { ...why, reason: `${why.reason}; ${continuationNote(source, 'plan')}` },
    };
  return { kind: 'miss', key, components, why };
}

/** What `inputState` needs of an input: the record of a run, or its plan. */
export interface InputOutcome {
  readonly run: StageRun;
  /** Why it runs (or will), when it does. */
  readonly reason: string;
  /** Its root causes, when it runs (or will). */
  readonly roots?: readonly RootCause[];
  /** Its artifact's content hash, when its artifact exists (else read from `manifest`). */
  readonly contentHash?: string;
  /** Its manifest, when its artifact exists. */
  readonly manifest?: Manifest;
}

/**
 * How a run's input looks to `resolveRun` and `explainRun`.
 * @param computed whether the input runs (or will run) in this invocation: it then carries its
 *   roots (itself, with its reason, when it recorded none).
 */
export function inputState(input: InputOutcome, computed: boolean): InputState {
  const contentHash = input.contentHash ?? input.manifest?.content_hash;
  const roots = computed ? (input.roots ?? [{ id: input.run.id, reason: input.reason }]) : undefined;
  if (contentHash === undefined) return { id: input.run.id, matrix: input.run.matrix, ...(roots ? { roots } : {}) };
  return new Input(input, roots, contentHash);
}

/**
 * An input with an artifact, with the manifest as the input has it (read when first used, when the
 * manifest index served its lookup: explaining the misses of a large sweep reads few). A class,
 * not a literal with a getter: tens of thousands of those cost V8 a dictionary each.
 */
class Input implements InputState {
  readonly id: string;
  readonly matrix: Readonly<Record<string, Json>>;
  readonly #input: InputOutcome;

  constructor(
    input: InputOutcome,
    readonly roots: readonly RootCause[] | undefined,
    readonly content_hash: string,
  ) {
    this.id = input.run.id;
    this.matrix = input.run.matrix;
    this.#input = input;
  }

  get manifest(): Manifest | undefined {
    return this.#input.manifest;
  }
}

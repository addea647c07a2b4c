/**
 * Store lookups for planning through the manifest index (`manifest-index.ts`): an entry the index
 * holds is a hit without reading its manifest, once its manifest file still has the identity the
 * index recorded and its outputs their sizes (a few `stat`s), or, with an `OutputsCheck`, once that
 * check has found so on a worker thread (the caller then plans again without it when it has not).
 * Anything else is looked up as `Store.lookup` does, and what its manifest says is recorded for
 * the next index (`IndexUpdate`). A hit's manifest is read from its file when first asked for.
 *
 * The hits, misses and reasons are those of `Store.lookup`, index or not.
 */
import { statSync } from 'node:fs';
import { MANIFEST_FILE } from './manifest.js';
import type { Manifest } from './manifest.js';
import { RACY_MS, identityOf, indexLine, sameIdentity } from './manifest-index.js';
import type { IndexUpdate, ManifestIndex } from './manifest-index.js';
import type { OutputsCheck } from './outputs-check.js';
import { missingOutput } from './store.js';
import type { Lookup, Store } from './store.js';

/** Index lines the workers may have to check before this thread checks hits itself. */
export const MAX_BACKLOG = 3000;

/** Options of `IndexedLookup`. */
export interface IndexedLookupOptions {
  /** Where hits' outputs (and indexed manifests' identities) are checked later; absent: at once. */
  readonly check?: OutputsCheck;
  /** Where what manifests read from their files say goes; absent: nowhere (a read-only store). */
  readonly update?: IndexUpdate;
  /** See `RACY_MS` (tests make it 0). */
  readonly racyMs?: number;
}

/** Lookups of one plan through a store's manifest index (see the module comment). */
export class IndexedLookup {
  private readonly base: string;

  constructor(
    private readonly store: Store,
    private readonly index: ManifestIndex,
    private readonly options: IndexedLookupOptions = {},
  ) {
    this.base = store.root.endsWith('/') ? store.root : `${store.root}/`;
  }

  /**
   * Looks up `stage`/`key` (see the module comment). With a `check`, a hit only says that the
   * index or the manifest says so; the check says whether the outputs agree.
   */
  lookup(stage: string, key: string): Lookup {
    const found = this.index.find(stage, key);
    if (found) {
      const hit = new IndexedHit(this.store, stage, key, found.contentHash);
      // The worker checks the line's CRC, the manifest's identity and the outputs, unless it is
      // far behind: this thread then checks this one itself.
      if (this.options.check && this.options.check.backlog < MAX_BACKLOG) {
        this.options.check.addIndexed(found.line);
        return hit;
      }
      const entry = this.index.entry(found.line);
      const dir = `${this.base}${stage}/${key}`;
      const s = entry && manifestStat(dir);
      if (entry && s && sameIdentity(identityOf(s), entry.identity)) {
        const bad = missingOutput(dir, entry);
        return bad === undefined ? hit : { hit: false, reason: `corrupt: ${bad}` };
      }
    }
    const read = this.store.readManifest(stage, key);
    this.record(stage, key, read);
    if (!read.hit) return read;
    if (this.options.check) {
      this.options.check.add(read.dir, read.manifest);
      return read;
    }
    const bad = missingOutput(read.dir, read.manifest);
    return bad === undefined ? read : { hit: false, reason: `corrupt: ${bad}` };
  }

  /** Records the line of a manifest just read (its identity taken after reading: see `RACY_MS`). */
  private record(stage: string, key: string, found: Lookup): void {
    const update = this.options.update;
    if (!update) return;
    const s = found.hit ? manifestStat(found.dir) : undefined;
    const line =
      s && found.hit ? indexLine(found.manifest, identityOf(s), Date.now(), this.options.racyMs ?? RACY_MS) : undefined;
    update.record(stage, key, line ?? null);
  }
}

/**
 * A hit served by the index, whose manifest is read when first asked for (a class, not a literal
 * with a getter: tens of thousands of those cost V8 a dictionary each).
 */
class IndexedHit {
  readonly hit = true;
  readonly #store: Store;
  readonly #stage: string;
  readonly #key: string;
  #manifest: Manifest | undefined;

  constructor(
    store: Store,
    stage: string,
    key: string,
    readonly contentHash: string,
  ) {
    this.#store = store;
    this.#stage = stage;
    this.#key = key;
  }

  /** The artifact folder, as `Store.readManifest` names it (made when asked for: few are). */
  get dir(): string {
    const root = this.#store.root;
    return `${root.endsWith('/') ? root : `${root}/`}${this.#stage}/${this.#key}`;
  }

  /** @throws Error when the manifest changed since it was indexed. */
  get manifest(): Manifest {
    if (this.#manifest) return this.#manifest;
    const found = this.#store.readManifest(this.#stage, this.#key);
    if (!found.hit || found.contentHash !== this.contentHash) {
      const why = found.hit ? 'another content hash' : (found.reason ?? 'removed');
      throw new Error(`${this.#stage}/${this.#key}: ${MANIFEST_FILE} changed after planning (${why})`);
    }
    return (this.#manifest = found.manifest);
  }
}

function manifestStat(dir: string) {
  try {
    return statSync(`${dir}/${MANIFEST_FILE}`, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

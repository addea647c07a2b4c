/**
 * **Comparing runs** (`runs/`): the rows of `grokpipe runs` and of the report's `--all-runs`
 * section. `collect.ts` (this module) finds the stored runs of a stage type, in the whole store or
 * of one pipeline whatever `--set` produced them; `knobs.ts` turns their params into columns;
 * `metrics.ts` gives each its grokking metrics; `table.ts` filters, sorts and prints them. It
 * reads the store only.
 *
 * A stored run is one store entry of the chosen stage type (`train` by default), with its
 * manifest, its sidecar (name, tags, uses: `engine/cache/meta.ts`), the params of its whole
 * lineage (the manifests of its inputs, recursively) and the entries downstream of it (the
 * manifests that list it among their inputs).
 */
import { resolve } from 'node:path';
import type { Manifest } from '../engine/cache/manifest.js';
import { readAllMeta, NO_META } from '../engine/cache/meta.js';
import type { EntryMeta } from '../engine/cache/meta.js';
import type { Store } from '../engine/cache/store.js';
import { readUsage } from '../engine/cache/usage.js';
import { flattenParams } from './knobs.js';
import type { KnobValue } from './knobs.js';

/** A store entry with its manifest. */
export interface StoredEntry {
  readonly stage: string;
  readonly key: string;
  readonly dir: string;
  readonly manifest: Manifest;
}

/** One stored run, ready to be a row. */
export interface StoredRun extends StoredEntry {
  /** Its sidecar (`NO_META` when it has none). */
  readonly meta: EntryMeta;
  /** Its run id: in the pipeline asked about (its latest use there), else where it was computed. */
  readonly id: string;
  /** Its params flattened (`optimizer.lr`), and its upstream stages' (`generate.entities`). */
  readonly knobs: Readonly<Record<string, KnobValue>>;
  /** The entries that read it (directly or further down), newest first. */
  readonly downstream: readonly StoredEntry[];
}

/** Options of `collectRuns`. */
export interface CollectOptions {
  /** Stage type of the rows (`train`). */
  readonly stage: string;
  /**
   * Only the runs this pipeline file used, whatever `--set` produced them: those its `grokpipe run`s
   * recorded in the sidecars, that it computed (manifest), or that its latest run used (usage
   * record).
   */
  readonly pipelineFile?: string;
}

/** Every readable manifest of the store, by key. */
async function readEntries(store: Store): Promise<Map<string, StoredEntry>> {
  const byKey = new Map<string, StoredEntry>();
  for (const e of await store.entries()) {
    const manifest = await store.findManifest(e.stage, e.key);
    if (manifest) byKey.set(e.key, { ...e, manifest });
  }
  return byKey;
}

/** Newest first (by the time its computation finished). */
function newestFirst(a: StoredEntry, b: StoredEntry): number {
  return b.manifest.timings.finished.localeCompare(a.manifest.timings.finished);
}

/** The params of `entry` and of every entry upstream of it, as knobs (nearest upstream wins). */
function lineageKnobs(entry: StoredEntry, byKey: ReadonlyMap<string, StoredEntry>): Record<string, KnobValue> {
  const knobs: Record<string, KnobValue> = { ...flattenParams(entry.manifest.params) };
  const seen = new Set<string>([entry.key]);
  let frontier = entry.manifest.inputs.map((i) => i.key);
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const key of frontier) {
      const up = byKey.get(key);
      if (seen.has(key) || !up) continue;
      seen.add(key);
      for (const [k, v] of Object.entries(flattenParams(up.manifest.params, up.stage))) if (!(k in knobs)) knobs[k] = v;
      next.push(...up.manifest.inputs.map((i) => i.key));
    }
    frontier = next;
  }
  return knobs;
}

/** The entries downstream of each key (transitively), newest first. */
function downstreamOf(byKey: ReadonlyMap<string, StoredEntry>): (key: string) => StoredEntry[] {
  const readers = new Map<string, StoredEntry[]>();
  for (const e of byKey.values()) {
    for (const input of e.manifest.inputs) {
      const list = readers.get(input.key) ?? [];
      list.push(e);
      readers.set(input.key, list);
    }
  }
  return (key) => {
    const out: StoredEntry[] = [];
    const seen = new Set<string>();
    let frontier = readers.get(key) ?? [];
    while (frontier.length > 0) {
      const next: StoredEntry[] = [];
      for (const e of frontier) {
        if (seen.has(e.key)) continue;
        seen.add(e.key);
        out.push(e);
        next.push(...(readers.get(e.key) ?? []));
      }
      frontier = next;
    }
    return out.sort(newestFirst);
  };
}

/**
 * The stored runs of a stage type (see `CollectOptions`), newest first. Damaged entries (no
 * readable manifest) are left out.
 */
export async function collectRuns(store: Store, options: CollectOptions): Promise<StoredRun[]> {
  const [byKey, metas, usage] = await Promise.all([readEntries(store), readAllMeta(store.root), readUsage(store.root)]);
  const file = options.pipelineFile === undefined ? undefined : resolve(options.pipelineFile);
  const latest = new Set(usage.filter((u) => u.file === file).flatMap((u) => u.entries));
  const downstream = downstreamOf(byKey);
  const runs: StoredRun[] = [];
  for (const e of byKey.values()) {
    if (e.stage !== options.stage) continue;
    const meta = metas.get(`${e.stage}/${e.key}`) ?? NO_META;
    const uses = meta.uses.filter((u) => u.file === file);
    const computedHere = file !== undefined && resolve(e.manifest.pipeline.file) === file;
    if (file !== undefined && uses.length === 0 && !computedHere && !latest.has(`${e.stage}/${e.key}`)) continue;
    const id = uses.length > 0 ? uses[uses.length - 1].id : e.manifest.pipeline.id;
    runs.push({ ...e, meta, id, knobs: lineageKnobs(e, byKey), downstream: downstream(e.key) });
  }
  return runs.sort(newestFirst);
}

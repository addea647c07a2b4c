/**
 * Garbage collection of a store (`grokpipe gc`).
 *
 * What may go:
 * - **artifacts** not referenced by the kept pipelines (`--keep-pipelines`) and/or not used for
 *   longer than `--older-than` (an artifact's folder time is its last use: `run` touches it on
 *   every cache hit). With both criteria an artifact must meet both. With neither, no complete
 *   artifact is removed.
 * - **damaged** artifact folders (no valid manifest, one that contradicts itself, an output missing
 *   or of another size): never usable (`Store.lookup`), always removed.
 * - **temporaries** of processes that no longer run: `.tmp/`, half-written checkpoint files and
 *   usage records (`sweep.ts`).
 * - **locks** (`.locks/`) whose owner died, or not refreshed for `lockStaleMs`.
 * - **checkpoints** (`.checkpoints/<key>`, resumable training state) whose artifact is complete;
 *   with `--keep-pipelines`, also those of keys no kept pipeline would compute; with
 *   `--older-than`, those untouched for longer. Checkpoints of an interrupted run are otherwise
 *   kept: they are what `run` resumes from.
 *
 * "Referenced" means what planning a kept pipeline against the store reuses: every cached run's
 * key. A run whose key is not known yet (an upstream run must run first) may still reuse an
 * existing entry through early cutoff, so every entry of its stage type, code version and params
 * is kept too. Nothing held by a live lock is removed.
 */
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { diskUsage } from './du.js';
import { hashJson } from './hash.js';
import { lockIsLive } from './lock.js';
import type { PlannedRun } from './plan.js';
import type { Store } from './store.js';
import { strayTemporaries } from './sweep.js';

/** Kinds of things `collectGarbage` removes. */
export type GcKind = 'artifact' | 'damaged' | 'temporary' | 'lock' | 'checkpoint';

/** One thing removed (or, in a dry run, that would be). */
export interface GcItem {
  readonly kind: GcKind;
  /** Absolute path. */
  readonly path: string;
  /** Stage type, for artifacts. */
  readonly stage?: string;
  /** Key, for artifacts, locks and checkpoints. */
  readonly key?: string;
  /** Bytes it takes (freed). */
  readonly bytes: number;
  /** Why it goes, e.g. `not used by the kept pipelines`, `process 1234 is gone`. */
  readonly why: string;
}

/** Options of `collectGarbage`. */
export interface GcOptions {
  /** Plans of the kept pipelines against this store; undefined: no pipeline criterion. */
  readonly keep?: readonly (readonly PlannedRun[])[];
  /** Remove only what was last used longer ago than this (milliseconds). */
  readonly olderThanMs?: number;
  /** List what would go; remove nothing. */
  readonly dryRun?: boolean;
  /** Current time (milliseconds since the epoch; default now). */
  readonly now?: number;
  /** A lock not refreshed for this long is stale (milliseconds, default 60,000). */
  readonly lockStaleMs?: number;
}

/** What `collectGarbage` did. */
export interface GcResult {
  /** Removed items (would-be removed in a dry run), artifacts first. */
  readonly removed: readonly GcItem[];
  /** Complete artifacts left in place. */
  readonly keptArtifacts: number;
  /** Total bytes freed (or that would be). */
  readonly bytes: number;
  readonly dryRun: boolean;
}

/** What the kept pipelines reference. */
interface Kept {
  keys: Set<string>;
  /** `stage \n version \n params hash` of runs whose key is unknown. */
  loose: Set<string>;
  /** Known keys of runs that would be computed (their checkpoints are kept). */
  planned: Set<string>;
}

function keptBy(plans: readonly (readonly PlannedRun[])[]): Kept {
  const kept: Kept = { keys: new Set(), loose: new Set(), planned: new Set() };
  for (const plan of plans) {
    for (const p of plan) {
      if (p.status === 'cached' && p.key) kept.keys.add(p.key);
      else if (p.key) kept.planned.add(p.key);
      else kept.loose.add(`${p.run.stage.name}\n${p.run.stage.version}\n${hashJson(p.run.params)}`);
    }
  }
  return kept;
}

/**
 * Collects garbage in `store` (see the module comment).
 * @throws Error on file system errors while removing.
 */
export async function collectGarbage(store: Store, opts: GcOptions = {}): Promise<GcResult> {
  const now = opts.now ?? Date.now();
  const kept = opts.keep ? keptBy(opts.keep) : undefined;
  const old = async (path: string): Promise<boolean> => {
    if (opts.olderThanMs === undefined) return true;
    try {
      return now - (await stat(path)).mtimeMs > opts.olderThanMs;
    } catch {
      return false;
    }
  };
  const live = (key: string) => lockIsLive(store.locksDir, key, opts.lockStaleMs ?? 60_000);
  const removed: GcItem[] = [];
  const complete = new Set<string>();
  let keptArtifacts = 0;

  for (const e of await store.entries()) {
    // What `run` could not use (no valid manifest, one that contradicts itself, a file missing).
    const found = await store.lookup(e.stage, e.key);
    if (!found.hit) {
      if (!live(e.key)) removed.push({ kind: 'damaged', path: e.dir, stage: e.stage, key: e.key, bytes: await diskUsage(e.dir), why: found.reason ?? 'no valid manifest' });
      continue;
    }
    const manifest = found.manifest;
    complete.add(e.key);
    const referenced =
      kept !== undefined &&
      (kept.keys.has(e.key) || kept.loose.has(`${e.stage}\n${manifest.components.version}\n${manifest.components.params_hash}`));
    const criterion = kept !== undefined || opts.olderThanMs !== undefined;
    if (!criterion || referenced || live(e.key) || !(await old(e.dir))) {
      keptArtifacts++;
      continue;
    }
    const why = [kept ? 'not used by the kept pipelines' : '', opts.olderThanMs !== undefined ? 'not used within the age limit' : '']
      .filter(Boolean)
      .join(', ');
    removed.push({ kind: 'artifact', path: e.dir, stage: e.stage, key: e.key, bytes: await diskUsage(e.dir), why });
  }

  for (const t of await strayTemporaries(store.root, opts.lockStaleMs ?? 60_000)) {
    removed.push({ kind: 'temporary', path: t.path, ...(t.key ? { key: t.key } : {}), bytes: await diskUsage(t.path), why: `process ${t.pid} is gone` });
  }

  for (const name of await list(store.locksDir)) {
    const m = /^(.+)\.(lock|owner)$/.exec(name);
    if (!m || live(m[1])) continue;
    const path = join(store.locksDir, name);
    removed.push({ kind: 'lock', path, key: m[1], bytes: await diskUsage(path), why: m[2] === 'lock' ? 'owner gone or lock stale' : 'no lock held' });
  }

  const checkpoints = join(store.root, '.checkpoints');
  for (const key of await list(checkpoints)) {
    if (live(key)) continue;
    const path = join(checkpoints, key);
    let why: string | undefined;
    if (complete.has(key) && !removed.some((r) => r.kind === 'artifact' && r.key === key)) why = 'its artifact is complete';
    else if ((kept !== undefined || opts.olderThanMs !== undefined) && !kept?.planned.has(key) && (await old(path))) {
      why = kept ? 'no kept pipeline would compute its key' : 'not used within the age limit';
    }
    if (!why) continue;
    // Its stray temporaries go with it: listed once.
    const inside = removed.filter((r) => r.kind === 'temporary' && r.path.startsWith(`${path}/`));
    for (const r of inside) removed.splice(removed.indexOf(r), 1);
    removed.push({ kind: 'checkpoint', path, key, bytes: await diskUsage(path), why });
  }

  if (!opts.dryRun) {
    for (const item of removed) await rm(item.path, { recursive: true, force: true });
    const stages = new Set(removed.filter((r) => r.stage).map((r) => join(store.root, r.stage as string)));
    for (const dir of stages) await rmdir(dir).catch(() => undefined);
  }
  return { removed, keptArtifacts, bytes: removed.reduce((a, r) => a + r.bytes, 0), dryRun: Boolean(opts.dryRun) };
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

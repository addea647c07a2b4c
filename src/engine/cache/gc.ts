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
 * - with each artifact or damaged folder removed, its sidecar `.meta/<stage>/<key>.json` (run
 *   names, tags and uses, `meta.ts`): it describes an entry that is gone.
 * - **temporaries** of processes that no longer run: `.tmp/`, half-written checkpoint files and
 *   usage records (`temporaries.ts`).
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
import { metaDir, metaPath } from './meta.js';
import type { PlannedRun } from '../explain/plan.js';
import type { Store } from './store.js';
import { strayTemporaries } from './temporaries.js';

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

/** What the steps of `collectGarbage` share. */
interface GcContext {
  readonly store: Store;
  readonly opts: GcOptions;
  readonly kept: Kept | undefined;
  /** Whether a live process holds the key's lock. */
  readonly live: (key: string) => boolean;
  /** Whether `path` was last touched longer ago than `--older-than` (true without that option). */
  readonly old: (path: string) => Promise<boolean>;
  /** Items to remove, in order. */
  readonly removed: GcItem[];
}

/**
 * Collects garbage in `store` (see the module comment).
 * @throws Error on file system errors while removing.
 */
export async function collectGarbage(store: Store, opts: GcOptions = {}): Promise<GcResult> {
  const now = opts.now ?? Date.now();
  const ctx: GcContext = {
    store,
    opts,
    kept: opts.keep ? keptBy(opts.keep) : undefined,
    live: (key) => lockIsLive(store.locksDir, key, opts.lockStaleMs ?? 60_000),
    old: async (path) => {
      if (opts.olderThanMs === undefined) return true;
      try {
        return now - (await stat(path)).mtimeMs > opts.olderThanMs;
      } catch {
        return false;
      }
    },
    removed: [],
  };
  const { complete, keptArtifacts } = await listEntries(ctx);
  await listTemporaries(ctx);
  await listLocks(ctx);
  await listCheckpoints(ctx, complete);
  if (!opts.dryRun) await removeItems(store.root, ctx.removed);
  const removed = ctx.removed;
  return { removed, keptArtifacts, bytes: removed.reduce((a, r) => a + r.bytes, 0), dryRun: Boolean(opts.dryRun) };
}

/**
 * Lists the artifact folders that go: damaged ones, and complete ones that meet the criteria.
 * @returns the keys of complete entries, and how many complete entries stay.
 */
async function listEntries(ctx: GcContext): Promise<{ complete: Set<string>; keptArtifacts: number }> {
  const { store, opts, kept, live } = ctx;
  const complete = new Set<string>();
  let keptArtifacts = 0;
  for (const e of await store.entries()) {
    // What `run` could not use (no valid manifest, one that contradicts itself, a file missing).
    const found = await store.lookup(e.stage, e.key);
    if (!found.hit) {
      if (!live(e.key)) {
        const why = found.reason ?? 'no valid manifest';
        ctx.removed.push({
          kind: 'damaged',
          path: e.dir,
          stage: e.stage,
          key: e.key,
          bytes: await diskUsage(e.dir),
          why,
        });
      }
      continue;
    }
    const manifest = found.manifest;
    complete.add(e.key);
    const referenced =
      kept !== undefined &&
      (kept.keys.has(e.key) ||
        kept.loose.has(`${e.stage}\n${manifest.components.version}\n${manifest.components.params_hash}`));
    const criterion = kept !== undefined || opts.olderThanMs !== undefined;
    if (!criterion || referenced || live(e.key) || !(await ctx.old(e.dir))) {
      keptArtifacts++;
      continue;
    }
    const why = [
      kept ? 'not used by the kept pipelines' : '',
      opts.olderThanMs !== undefined ? 'not used within the age limit' : '',
    ]
      .filter(Boolean)
      .join(', ');
    ctx.removed.push({ kind: 'artifact', path: e.dir, stage: e.stage, key: e.key, bytes: await diskUsage(e.dir), why });
  }
  return { complete, keptArtifacts };
}

/** Lists the temporaries whose owner process is gone (`temporaries.ts`). */
async function listTemporaries(ctx: GcContext): Promise<void> {
  for (const t of await strayTemporaries(ctx.store.root, ctx.opts.lockStaleMs ?? 60_000)) {
    ctx.removed.push({
      kind: 'temporary',
      path: t.path,
      ...(t.key ? { key: t.key } : {}),
      bytes: await diskUsage(t.path),
      why: `process ${t.pid} is gone`,
    });
  }
}

/** Lists lock and owner files no live process holds. */
async function listLocks(ctx: GcContext): Promise<void> {
  const { locksDir } = ctx.store;
  for (const name of await list(locksDir)) {
    const m = /^(.+)\.(lock|owner)$/.exec(name);
    if (!m || ctx.live(m[1])) continue;
    const path = join(locksDir, name);
    ctx.removed.push({
      kind: 'lock',
      path,
      key: m[1],
      bytes: await diskUsage(path),
      why: m[2] === 'lock' ? 'owner gone or lock stale' : 'no lock held',
    });
  }
}

/**
 * Lists the checkpoint folders that go: those of complete artifacts that stay, and with a
 * criterion those no kept pipeline would compute (or unused within the age limit).
 */
async function listCheckpoints(ctx: GcContext, complete: ReadonlySet<string>): Promise<void> {
  const { kept, opts, removed } = ctx;
  const checkpoints = join(ctx.store.root, '.checkpoints');
  for (const key of await list(checkpoints)) {
    if (ctx.live(key)) continue;
    const path = join(checkpoints, key);
    let why: string | undefined;
    if (complete.has(key) && !removed.some((r) => r.kind === 'artifact' && r.key === key))
      why = 'its artifact is complete';
    else if (
      (kept !== undefined || opts.olderThanMs !== undefined) &&
      !kept?.planned.has(key) &&
      (await ctx.old(path))
    ) {
      why = kept ? 'no kept pipeline would compute its key' : 'not used within the age limit';
    }
    if (!why) continue;
    // Its stray temporaries go with it: listed once.
    const inside = removed.filter((r) => r.kind === 'temporary' && r.path.startsWith(`${path}/`));
    for (const r of inside) removed.splice(removed.indexOf(r), 1);
    removed.push({ kind: 'checkpoint', path, key, bytes: await diskUsage(path), why });
  }
}

/**
 * Removes the listed items, the sidecars of the entries among them, and the stage folders (of
 * entries and of sidecars) left empty.
 */
async function removeItems(root: string, removed: readonly GcItem[]): Promise<void> {
  const emptied = new Set<string>();
  for (const item of removed) {
    await rm(item.path, { recursive: true, force: true });
    if (item.stage === undefined || item.key === undefined) continue;
    await rm(metaPath(root, item.stage, item.key), { force: true });
    emptied.add(join(root, item.stage)).add(join(metaDir(root), item.stage));
  }
  for (const dir of emptied) await rmdir(dir).catch(() => undefined);
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

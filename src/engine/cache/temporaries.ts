/**
 * Temporaries of dead processes: what a process killed (SIGKILL, a crash, a full disk) leaves in a
 * store before it could rename or remove it. Each kind of temporary names the process that owns it:
 *
 * - `.tmp/<key>.<pid>.<random>` (a stage's output folder) and its `.job.json` (`store.ts`);
 * - `.checkpoints/<key>/<name>.tmp-<pid>`: a file a stage was writing into its checkpoint folder
 *   (the stage contract's naming, `StageContext.checkpointDir`), e.g. a training checkpoint cut
 *   short by ENOSPC;
 * - `.uses/<id>.json.<pid>.<random>.tmp`: a usage record not yet renamed into place (`usage.ts`);
 * - `.index/manifests.<pid>.<random>.tmp`: a manifest index not yet renamed into place
 *   (`manifest-index.ts`).
 *
 * One is stray when its owner no longer runs on this machine. A checkpoint folder whose key is
 * locked by a live process is never touched: its writer may run elsewhere (a SLURM node) under a
 * driver that holds the lock here. `run` sweeps at its start and `gc` lists and removes the same.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lockIsLive } from './lock.js';
import { pidAlive } from '../exec/pid.js';
import { usageDir } from './usage.js';

/**
 * A temporary's name. Its job file ends in `.job.json`; `.task.json` is the name grokpipe gave it
 * before the engine said "job", still recognized so that `cleanStale` removes those left behind.
 */
const TEMP_NAME = /^([0-9a-f]+)\.(\d+)\.([0-9a-f]+)(\.job\.json|\.task\.json)?$/;

/** A temporary in `<root>/.tmp`: `<key>.<pid>.<random>` (a folder) or its job file (`.job.json`). */
export interface Temporary {
  /** File or folder name inside `.tmp`. */
  readonly name: string;
  /** Key being computed. */
  readonly key: string;
  /** Process id that created it. */
  readonly pid: number;
}

/** Parses a temporary's name; undefined for names the store did not create. */
export function parseTempName(name: string): Temporary | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? { name, key: m[1], pid: Number(m[2]) } : undefined;
}

/** A temporary in a store and the process that owns it. */
export interface OwnedTemporary {
  /** Absolute path (file or folder). */
  readonly path: string;
  /** Process id of its owner. */
  readonly pid: number;
  /** Key it belongs to (stage outputs and checkpoints). */
  readonly key?: string;
}

const CHECKPOINT_TEMP = /\.tmp-(\d+)$/;
/** A file written beside its final name, then renamed: `<name>.<pid>.<random>.tmp`. */
const RENAMED_TEMP = /\.(\d+)\.[0-9a-f]+\.tmp$/;

/** Every temporary of the store whose owner is known, alive or not (none when the store is absent). */
export async function ownedTemporaries(root: string): Promise<OwnedTemporary[]> {
  const out: OwnedTemporary[] = [];
  const tmp = join(root, '.tmp');
  for (const name of await list(tmp)) {
    const t = parseTempName(name);
    if (t) out.push({ path: join(tmp, name), pid: t.pid, key: t.key });
  }
  const checkpoints = join(root, '.checkpoints');
  for (const key of await list(checkpoints)) {
    for (const name of await list(join(checkpoints, key))) {
      const m = CHECKPOINT_TEMP.exec(name);
      if (m) out.push({ path: join(checkpoints, key, name), pid: Number(m[1]), key });
    }
  }
  for (const dir of [usageDir(root), join(root, '.index')]) {
    for (const name of await list(dir)) {
      const m = RENAMED_TEMP.exec(name);
      if (m) out.push({ path: join(dir, name), pid: Number(m[1]) });
    }
  }
  return out;
}

/**
 * The temporaries of `root` whose owner is gone (see the module comment): not this process, not a
 * live process of this machine, and not in a checkpoint folder whose key a live process has locked.
 */
export async function strayTemporaries(root: string, lockStaleMs = 60_000): Promise<OwnedTemporary[]> {
  const locks = join(root, '.locks');
  const checkpoints = join(root, '.checkpoints');
  return (await ownedTemporaries(root)).filter((t) => {
    if (t.pid === process.pid || pidAlive(t.pid)) return false;
    const inCheckpoint = t.key !== undefined && t.path.startsWith(join(checkpoints, t.key));
    return !(inCheckpoint && lockIsLive(locks, t.key as string, lockStaleMs));
  });
}

/**
 * Removes the stray temporaries of `root`; those that cannot be removed (a read-only store) stay.
 * @returns the paths removed.
 */
export async function removeStrayTemporaries(root: string): Promise<string[]> {
  const removed: string[] = [];
  for (const t of await strayTemporaries(root)) {
    try {
      await rm(t.path, { recursive: true, force: true });
      removed.push(t.path);
    } catch {
      // A store that cannot be written (read-only): `gc` reports what stays.
    }
  }
  return removed;
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

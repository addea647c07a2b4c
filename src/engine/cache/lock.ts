/**
 * Per-key inter-process locks (proper-lockfile), so that two processes never compute the same key
 * at once: the second waits, then finds the first one's artifact in the store.
 *
 * Stale locks are recovered two ways: proper-lockfile treats a lock not refreshed for `staleMs` as
 * stale, and a lock whose recorded owner is a dead process on this host is removed at once (after
 * a kill -9). In the rare race where two waiters both recover the same dead lock, both compute the
 * key; the store's commit keeps the first complete artifact, so that only costs time.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidAlive } from '../exec/pid.js';

/** Releases a lock; never throws. */
export type Release = () => Promise<void>;

/** Options of `acquireLock`. */
export interface LockOptions {
  /** Aborts the wait (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /** A lock not refreshed for this long is stale (milliseconds, default 10,000, minimum 2,000). */
  readonly staleMs?: number;
  /** Called once when the lock is held by someone else and we start waiting. */
  readonly onWait?: () => void;
}

interface Owner {
  pid: number;
  host: string;
}

/**
 * Takes the lock for `key` in folder `dir` (created if needed), waiting as long as another live
 * process holds it.
 * @throws the signal's reason when `signal` aborts the wait; Error on file system errors.
 */
export async function acquireLock(dir: string, key: string, options: LockOptions = {}): Promise<Release> {
  mkdirSync(dir, { recursive: true });
  const target = join(dir, key);
  const lockfilePath = `${target}.lock`;
  const ownerPath = `${target}.owner`;
  const stale = Math.max(2000, options.staleMs ?? 10_000);
  const { default: lockfile } = await import('proper-lockfile');
  let waited = false;
  let delay = 100;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const release = await lockfile.lock(target, {
        realpath: false,
        lockfilePath,
        stale,
        retries: 0,
        // The lock can be lost if the event loop stalls longer than `stale`; at worst another
        // process computes the same key too, which the store's commit tolerates.
        onCompromised: () => undefined,
      });
      writeFileSync(ownerPath, JSON.stringify({ pid: process.pid, host: hostname() } satisfies Owner));
      return async () => {
        rmSync(ownerPath, { force: true });
        try {
          await release();
        } catch {
          // Already released or taken over as stale: nothing left to do.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    }
    if (ownerIsDead(ownerPath)) {
      rmSync(ownerPath, { force: true });
      rmSync(lockfilePath, { recursive: true, force: true });
      continue;
    }
    if (!waited) {
      waited = true;
      options.onWait?.();
    }
    await sleep(delay, undefined, { signal: options.signal });
    delay = Math.min(2000, delay * 2);
  }
}

function ownerIsDead(ownerPath: string): boolean {
  let owner: Owner;
  try {
    owner = JSON.parse(readFileSync(ownerPath, 'utf8')) as Owner;
  } catch {
    return false;
  }
  return owner.host === hostname() && owner.pid !== process.pid && !pidAlive(owner.pid);
}

/**
 * Whether the lock of `key` in folder `dir` is held by a live process: the lock exists and its
 * recorded owner runs on this host, or (owner elsewhere or not yet recorded) it was refreshed less
 * than `staleMs` ago (milliseconds, default 10,000). Never throws.
 */
export function lockIsLive(dir: string, key: string, staleMs = 10_000): boolean {
  const target = join(dir, key);
  let mtimeMs: number;
  try {
    mtimeMs = statSync(`${target}.lock`).mtimeMs;
  } catch {
    return false;
  }
  try {
    const owner = JSON.parse(readFileSync(`${target}.owner`, 'utf8')) as Owner;
    if (owner.host === hostname()) return pidAlive(owner.pid);
  } catch {
    // No owner recorded (yet): judge by the refresh time.
  }
  return Date.now() - mtimeMs < staleMs;
}

/**
 * `grokpipe verify --repair`: removes the store entries `verify` condemned (corrupt, damaged, or
 * different from their recomputation), each under its key's lock, so that the next `run`
 * recomputes them. Entries only downstream of a condemned one stay: their keys name the content
 * they were computed from, and a recomputed upstream entry that differs gives new keys.
 */
import type { Store } from './store.js';
import type { VerifyResult } from '../explain/verify.js';

/** An entry removed by `removeCondemned`. */
export interface RemovedEntry {
  /** Run id (`model[seed=1]`). */
  readonly id: string;
  readonly stage: string;
  readonly key: string;
}

/**
 * Removes the entries of the condemned `results` (`VerifyResult.condemned`), once per key.
 * @param lockStaleMs staleness of other processes' locks (milliseconds, default 10,000).
 * @returns the entries removed, in `results` order.
 * @throws Error on file system errors (a read-only store).
 */
export async function removeCondemned(
  store: Store,
  results: readonly VerifyResult[],
  lockStaleMs?: number,
): Promise<RemovedEntry[]> {
  const removed: RemovedEntry[] = [];
  const done = new Set<string>();
  for (const r of results) {
    if (!r.condemned || r.key === null || done.has(r.key)) continue;
    done.add(r.key);
    const release = await store.lock(r.key, { staleMs: lockStaleMs });
    try {
      await store.remove(r.run.stage.name, r.key);
    } finally {
      await release();
    }
    removed.push({ id: r.run.id, stage: r.run.stage.name, key: r.key });
  }
  return removed;
}

/**
 * The outputs' check of many cache hits (`Store.lookup`: every output a regular file of its
 * recorded size), run beside the caller on worker threads, for planning a large sweep
 * (`explain/plan.ts`): on 10,000 cached runs, `status` makes some 170,000 `stat` calls, about a
 * third of its time, and none of them decides a key, so they need not hold up the planning of
 * the next run. The caller plans with `lookup(…, 'defer')`, hands each hit to `add`, and asks
 * `intact()` at the end; when any output is missing or has another size, it plans again with the
 * full lookup, which then names the damaged file.
 *
 * The workers run inline JavaScript (`eval`) with no import beyond Node's own, so that the same
 * code runs from `dist/`, under tsx and under vitest.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Manifest } from './manifest.js';

/** Hits handed to a worker at a time. */
const BATCH = 256;

/**
 * A worker's loop: for each batch of paths (one string, NUL-separated: one string is copied to a
 * worker far faster than an array of them) and sizes, whether every path is a file of its size.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { statSync } = require('node:fs');
parentPort.on('message', ({ id, joined, sizes }) => {
  const paths = joined.split('\\0');
  let intact = paths.length === sizes.length;
  for (let i = 0; i < paths.length && intact; i++) {
    let s;
    try { s = statSync(paths[i], { throwIfNoEntry: false }); } catch { s = undefined; }
    intact = s !== undefined && s.isFile() && s.size === sizes[i];
  }
  parentPort.postMessage({ id, intact });
});
`;

/** Checks the outputs of cache hits on worker threads (see the module comment). */
export class OutputsCheck {
  private readonly workers: Worker[];
  private paths: string[] = [];
  private sizes: number[] = [];
  private sent = 0;
  private readonly pending: Promise<boolean>[] = [];
  /** Batches sent and not answered yet, by id. */
  private readonly waiting = new Map<number, (intact: boolean) => void>();

  /** @param threads workers to start (at least 1). */
  constructor(threads: number) {
    this.workers = Array.from({ length: Math.max(1, threads) }, () => {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on('message', (m: { id: number; intact: boolean }) => this.answer(m.id, m.intact));
      // A worker that fails verifies nothing: every batch still waiting counts as damaged.
      w.on('error', () => [...this.waiting.keys()].forEach((id) => this.answer(id, false)));
      return w;
    });
  }

  private answer(id: number, intact: boolean): void {
    this.waiting.get(id)?.(intact);
    this.waiting.delete(id);
  }

  /** Worker threads worth starting here: the cores but the caller's, at most 3; 0 on one core. */
  static threads(): number {
    return Math.min(3, availableParallelism() - 1);
  }

  /** Queues the outputs of the hit `manifest` in folder `dir`. */
  add(dir: string, manifest: Manifest): void {
    for (const out of manifest.outputs) {
      this.paths.push(`${dir}/${out.name}`);
      this.sizes.push(out.bytes);
    }
    if (this.paths.length >= BATCH) this.flush();
  }

  private flush(): void {
    if (this.paths.length === 0) return;
    const worker = this.workers[this.sent % this.workers.length];
    const id = this.sent++;
    this.pending.push(new Promise<boolean>((resolve) => this.waiting.set(id, resolve)));
    const sizes = Float64Array.from(this.sizes);
    worker.postMessage({ id, joined: this.paths.join('\0'), sizes }, [sizes.buffer]);
    this.paths = [];
    this.sizes = [];
  }

  /**
   * Waits for every queued check and stops the workers.
   * @returns true when every output queued is a regular file of its recorded size.
   */
  async intact(): Promise<boolean> {
    this.flush();
    try {
      return (await Promise.all(this.pending)).every(Boolean);
    } finally {
      await Promise.all(this.workers.map((w) => w.terminate()));
    }
  }
}

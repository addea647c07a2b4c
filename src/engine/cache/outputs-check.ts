/**
 * The outputs' check of many cache hits (`Store.lookup`: every output a regular file of its
 * recorded size), run beside the caller on worker threads, for planning a large sweep
 * (`explain/plan.ts`): on 10,000 cached runs, `status` makes some 170,000 `stat` calls, and none
 * of them decides a key, so they need not hold up the planning of the next run. The caller's
 * lookups (`indexed-lookup.ts`) hand each hit to `add` (a manifest read from its file) or
 * `addIndexed` (a line of the manifest index: its manifest's identity is checked too), and it
 * asks `intact()` at the end; when anything differs, it plans again with each lookup checked at
 * once, which then names the damaged file.
 *
 * The workers run inline JavaScript (`eval`) with no import beyond Node's own, so that the same
 * code runs from `dist/`, under tsx and under vitest.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Manifest } from './manifest.js';

/** Outputs handed to a worker at a time. */
const BATCH = 2048;

/** Index lines (a manifest and its outputs each) handed to a worker at a time. */
const INDEXED_BATCH = 1024;

/**
 * A worker's loop. First, optionally, the manifest index (`{ base, index }`: the store's root with
 * a trailing slash and the index's text). Then batches, each answered with whether it is intact:
 * paths (one string, NUL-separated: one string is copied to a worker far faster than an array of
 * them) and sizes, intact when every path is a file of its size; or the index's line numbers,
 * intact when each line's `manifest.json` has the identity the line records (`manifest-index.ts`)
 * and each of its outputs is a file of its size.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { statSync } = require('node:fs');
const { crc32 } = require('node:zlib');
const stat = (p) => { try { return statSync(p, { throwIfNoEntry: false }); } catch { return undefined; } };
const isFileOf = (p, size) => { const s = stat(p); return s !== undefined && s.isFile() && s.size === size; };
let base, lines, done;
function indexedIntact(n) {
  const line = lines[n] ?? '';
  const at = line.lastIndexOf('\\t');
  if (at < 0 || crc32(line.slice(0, at)).toString(16) !== line.slice(at + 1)) return false;
  const f = line.split('\\t');
  const dir = base + f[0] + '/' + f[1] + '/';
  const m = stat(dir + 'manifest.json');
  if (!m || !m.isFile() || m.size !== Number(f[3]) || m.mtimeMs !== Number(f[4]) || m.ctimeMs !== Number(f[5]) || m.ino !== Number(f[6])) return false;
  return JSON.parse(f[7]).every(([name, bytes]) => isFileOf(dir + name, bytes));
}
parentPort.on('message', (m) => {
  if (m.index !== undefined) {
    base = m.base;
    lines = m.index.split('\\n');
    done = m.done;
    return;
  }
  let intact = true;
  if (m.lines) {
    for (let i = 0; i < m.lines.length && intact; i++) intact = indexedIntact(m.lines[i]);
    Atomics.add(done, 0, m.lines.length);
  } else {
    const paths = m.joined.split('\\0');
    intact = paths.length === m.sizes.length;
    for (let i = 0; i < paths.length && intact; i++) intact = isFileOf(paths[i], m.sizes[i]);
  }
  parentPort.postMessage({ id: m.id, intact });
});
`;

/** Checks the outputs of cache hits on worker threads (see the module comment). */
export class OutputsCheck {
  private readonly workers: Worker[];
  private paths: string[] = [];
  private sizes: number[] = [];
  private lines: number[] = [];
  /** Index lines queued, and (shared with the workers) those checked. */
  private queued = 0;
  private readonly done = new Int32Array(new SharedArrayBuffer(4));
  private sent = 0;
  private readonly pending: Promise<boolean>[] = [];
  /** Batches sent and not answered yet, by id. */
  private readonly waiting = new Map<number, (intact: boolean) => void>();

  /** @param threads workers to start (at least 1); they start at once, before `useIndex`. */
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

  /**
   * Gives the workers the manifest index whose lines `addIndexed` refers to (its text), and the
   * store's root. Call before `addIndexed`.
   */
  useIndex(root: string, text: string): void {
    const base = root.endsWith('/') ? root : `${root}/`;
    for (const w of this.workers) w.postMessage({ base, index: text, done: this.done });
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

  /**
   * Index lines queued and not checked yet: a caller with more than a few batches behind does
   * better checking the next hits itself (the workers share its cores).
   */
  get backlog(): number {
    return this.queued - Atomics.load(this.done, 0);
  }

  /** Queues the hit at line `line` of the index given to the constructor. */
  addIndexed(line: number): void {
    this.queued++;
    this.lines.push(line);
    if (this.lines.length >= INDEXED_BATCH) this.flushIndexed();
  }

  /** Sends `message` to the next worker; its answer settles a new pending promise. */
  private send(message: object, transfer: ArrayBuffer[]): void {
    const worker = this.workers[this.sent % this.workers.length];
    const id = this.sent++;
    this.pending.push(new Promise<boolean>((resolve) => this.waiting.set(id, resolve)));
    worker.postMessage({ id, ...message }, transfer);
  }

  private flush(): void {
    if (this.paths.length === 0) return;
    const sizes = Float64Array.from(this.sizes);
    this.send({ joined: this.paths.join('\0'), sizes }, [sizes.buffer]);
    this.paths = [];
    this.sizes = [];
  }

  private flushIndexed(): void {
    if (this.lines.length === 0) return;
    const lines = Int32Array.from(this.lines);
    this.send({ lines }, [lines.buffer]);
    this.lines = [];
  }

  /**
   * Waits for every queued check and stops the workers.
   * @returns true when every output queued is a regular file of its recorded size.
   */
  async intact(): Promise<boolean> {
    this.flush();
    this.flushIndexed();
    try {
      return (await Promise.all(this.pending)).every(Boolean);
    } finally {
      await Promise.all(this.workers.map((w) => w.terminate()));
    }
  }
}

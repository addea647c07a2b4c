/**
 * The store's entries as `grokpipe ls` shows them: stage type, key, size on disk, time since last
 * use (the folder's time: written on commit, touched by every cache hit of `run`) and the pipeline
 * files that use each entry (the one that computed it, from its manifest, and those whose latest
 * run reused it, from the store's usage records).
 */
import { readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import prettyBytes from 'pretty-bytes';
import prettyMs from 'pretty-ms';
import { createColors } from 'picocolors';
import { diskUsage } from './du.js';
import { MANIFEST_FILE, parseManifest } from './manifest.js';
import type { Manifest } from './manifest.js';
import type { Store } from './store.js';
import { readUsage } from './usage.js';

/** One store entry. */
export interface InventoryEntry {
  readonly stage: string;
  readonly key: string;
  /** Absolute folder. */
  readonly dir: string;
  /** Its manifest; absent for a damaged entry. */
  readonly manifest?: Manifest;
  /** Size on disk (bytes). */
  readonly bytes: number;
  /** Last use (milliseconds since the epoch). */
  readonly lastUsed: number;
  /** Pipeline files that use it (relative to `cwd` when inside it), sorted. */
  readonly pipelines: readonly string[];
}

/**
 * Lists every entry of `store`, sorted by stage type, then most recently used first.
 * @param cwd folder that pipeline paths are shown relative to (default the current one).
 */
export async function listInventory(store: Store, cwd = process.cwd()): Promise<InventoryEntry[]> {
  const usage = await readUsage(store.root);
  const users = new Map<string, Set<string>>();
  for (const u of usage) {
    for (const e of u.entries) {
      const set = users.get(e) ?? new Set<string>();
      set.add(u.file);
      users.set(e, set);
    }
  }
  const show = (file: string) => {
    const rel = relative(cwd, file);
    return rel === '' || rel.startsWith('..') ? file : rel;
  };
  const out: InventoryEntry[] = [];
  for (const e of await store.entries()) {
    let manifest: Manifest | undefined;
    try {
      manifest = parseManifest(await readFile(join(e.dir, MANIFEST_FILE), 'utf8'));
    } catch {
      manifest = undefined;
    }
    const files = new Set(users.get(`${e.stage}/${e.key}`) ?? []);
    if (manifest?.pipeline?.file) {
      const recorded = resolve(manifest.pipeline.file);
      if (![...files].some((f) => f === recorded)) files.add(recorded);
    }
    let lastUsed = 0;
    try {
      lastUsed = (await stat(e.dir)).mtimeMs;
    } catch {
      // Removed meanwhile.
    }
    out.push({
      ...e,
      ...(manifest ? { manifest } : {}),
      bytes: await diskUsage(e.dir),
      lastUsed,
      pipelines: [...files].map(show).sort(),
    });
  }
  return out.sort((a, b) => (a.stage < b.stage ? -1 : a.stage > b.stage ? 1 : b.lastUsed - a.lastUsed));
}

/**
 * A table of entries: stage, key (12 characters), size, age, pipelines; then a total line.
 * Damaged entries show `damaged` in the pipelines column.
 */
export function formatInventory(entries: readonly InventoryEntry[], options: { color: boolean; now?: number }): string {
  const pc = createColors(options.color);
  const now = options.now ?? Date.now();
  if (entries.length === 0) return 'the store is empty\n';
  const header = ['stage', 'key', 'size', 'age', 'pipelines'];
  const rows = entries.map((e) => [
    e.stage,
    e.key.slice(0, 12),
    prettyBytes(e.bytes),
    prettyMs(Math.max(0, now - e.lastUsed), { compact: true }),
    e.manifest ? e.pipelines.join(', ') : pc.red('damaged'),
  ]);
  const widths = header.map((h, i) => rows.reduce((w, r) => Math.max(w, r[i].length), h.length));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : i === 2 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const total = entries.reduce((a, e) => a + e.bytes, 0);
  return (
    [
      pc.bold(line(header)),
      ...rows.map(line),
      `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${prettyBytes(total)}`,
    ].join('\n') + '\n'
  );
}

/**
 * The manifest index, `<store>/.index/manifests`: a summary of the store's manifests that planning
 * reads instead of every `manifest.json` (on a fully cached sweep of 10,000 runs, reading and
 * parsing 60,000 manifests was most of `grokpipe status`'s time). Like git's index, it is a
 * cache of what the files said, trusted only while the files are unchanged, and never needed:
 * a missing, unreadable, damaged or stale index costs time, never a wrong answer.
 *
 * One line per entry, tab-separated: stage, key, content hash, the identity of its
 * `manifest.json` when it was read (size in bytes, modification and change times in milliseconds,
 * inode), its outputs' names and sizes (JSON `[[name, bytes], ...]`), and a CRC-32 of all that
 * (hex), after a first line naming the format. An entry is used only while its manifest file has
 * that identity (one `stat`, `indexed-lookup.ts`): a manifest edited, replaced or removed since
 * has another change time (which no program can set back) or is gone, and is then read as
 * without index. A damaged line (wrong CRC, a crash cut it short) is skipped.
 *
 * **Racy entries** (git's word): a file changed twice within one tick of the file system's clock
 * keeps its times. So an entry is written only when its manifest was last changed at least
 * `RACY_MS` before it was read; a fresher one is read from its file until it has aged.
 *
 * **Writers**: planning (`explain/plan.ts`), after it read manifests the index lacked or that had
 * changed, rewrites the whole file: a temporary `.index/manifests.<pid>.<random>.tmp` renamed into
 * place, so that readers see the old index or the new one, never a mix. Commits do not write it
 * (a fresh manifest is racy anyway), so concurrent writers of the store never touch it; two
 * planners saving at once lose each other's new lines, which are read again next time. A store
 * that cannot be written gets no index. `gc` and `verify --repair` leave lines of entries they
 * remove; the next plan that looks one up finds its manifest gone and drops it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Manifest } from './manifest.js';

/** Version of the index file's format (its first line). */
export const INDEX_FORMAT = 1;

const HEADER = `grokpipe manifest index ${INDEX_FORMAT}`;

/** Path of the index file inside a store. */
export function indexPath(root: string): string {
  return join(root, '.index', 'manifests');
}

/**
 * Milliseconds a manifest must have been unchanged, when it is read, for its entry to be written:
 * above the coarsest file system clock in use (FAT's 2 s), so that no later change can keep its times.
 */
export const RACY_MS = 3000;

/**
 * Bytes of index worth reading per run planned: a line (some 260 bytes) costs about a tenth of
 * reading and checking its manifest (measured on 60,000 entries), so a plan of a few runs in a
 * store indexed for a large sweep reads its manifests instead (`worthReading`).
 */
export const INDEX_BYTES_PER_RUN = 4096;

/** Whether reading the index of the store at `root` pays off for a plan of `runs` runs. Never throws. */
export function worthReading(root: string, runs: number): boolean {
  try {
    return (statSync(indexPath(root), { throwIfNoEntry: false })?.size ?? 0) <= runs * INDEX_BYTES_PER_RUN;
  } catch {
    return false;
  }
}

/** What identifies one version of a file without reading it. */
export interface FileIdentity {
  /** Bytes. */
  readonly size: number;
  /** Modification and status change times (milliseconds since the epoch, as `fs.Stats`). */
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
}

/** The identity of a file from its `stat`. */
export function identityOf(s: Stats): FileIdentity {
  return { size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino };
}

/** Whether two identities are those of one version of a file. */
export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

/** One entry as the index holds it. */
export interface IndexedEntry {
  /** Its line's position in the index text, split at newlines (what `OutputsCheck` is sent). */
  readonly line: number;
  readonly contentHash: string;
  /** Identity of its `manifest.json` when it was read. */
  readonly identity: FileIdentity;
  /** Its outputs' names and sizes (bytes), as in the manifest. */
  readonly outputs: readonly { readonly name: string; readonly bytes: number }[];
}

const FIELDS = 9;

/** The line's fields when its CRC holds, else undefined. */
function checkedFields(line: string): string[] | undefined {
  const at = line.lastIndexOf('\t');
  if (at < 0 || crc32(line.slice(0, at)).toString(16) !== line.slice(at + 1)) return undefined;
  const f = line.split('\t');
  return f.length === FIELDS ? f : undefined;
}

/** Names that fit in a line (no tab, no newline). */
const PLAIN = /^[^\t\n\r]+$/;

/**
 * The index line of a valid manifest read with identity `id`, or undefined when it cannot be
 * written (`id` is racy at time `now`, or a name holds a tab or a newline).
 * @param racyMs see `RACY_MS`.
 */
export function indexLine(m: Manifest, id: FileIdentity, now: number, racyMs = RACY_MS): string | undefined {
  if (now - Math.max(id.mtimeMs, id.ctimeMs) < racyMs) return undefined;
  if (!PLAIN.test(m.stage) || !PLAIN.test(m.key) || !PLAIN.test(m.content_hash)) return undefined;
  const outputs = JSON.stringify(m.outputs.map((o) => [o.name, o.bytes]));
  const body = [m.stage, m.key, m.content_hash, id.size, id.mtimeMs, id.ctimeMs, id.ino, outputs].join('\t');
  return `${body}\t${crc32(body).toString(16)}`;
}

/** The lookup key of an entry: `<stage>\t<key>`. */
const entryId = (stage: string, key: string) => `${stage}\t${key}`;

/** The start of a line up to its second tab (its `entryId`), or undefined. */
function lineId(line: string): string | undefined {
  const second = line.indexOf('\t', line.indexOf('\t') + 1);
  return second > 0 ? line.slice(0, second) : undefined;
}

/** A store's manifest index as read from its file (see the module comment). */
export class ManifestIndex {
  /** The file's text (sent as is to `OutputsCheck`'s workers), and its lines. */
  readonly text: string;
  private readonly lines: readonly string[];
  /** Line position of each entry, by stage then key (a key string's hash is computed once). */
  private readonly at = new Map<string, Map<string, number>>();
  private entries = 0;

  private constructor(text: string) {
    this.text = text;
    this.lines = text.split('\n');
    for (let i = 1; i < this.lines.length; i++) {
      const line = this.lines[i];
      const first = line.indexOf('\t');
      const second = line.indexOf('\t', first + 1);
      if (first <= 0 || second < 0) continue;
      const stage = line.slice(0, first);
      let keys = this.at.get(stage);
      if (!keys) this.at.set(stage, (keys = new Map()));
      keys.set(line.slice(first + 1, second), i);
      this.entries++;
    }
  }

  /** An index holding nothing. */
  static empty(): ManifestIndex {
    return new ManifestIndex('');
  }

  /**
   * The index of the store at `root`; an empty one when its file is missing, unreadable or of
   * another format. Never throws.
   */
  static load(root: string): ManifestIndex {
    let text: string;
    try {
      text = readFileSync(indexPath(root), 'utf8');
    } catch {
      return new ManifestIndex('');
    }
    return new ManifestIndex(text.startsWith(`${HEADER}\n`) ? text : '');
  }

  /** Entries (lines) it holds, damaged ones included. */
  get size(): number {
    return this.entries;
  }

  /** Whether it has a line for `stage`/`key`, damaged or not. */
  has(stage: string, key: string): boolean {
    return this.at.get(stage)?.has(key) ?? false;
  }

  /**
   * The line of `stage`/`key` and the content hash it says, unchecked (its CRC is checked by
   * `entry`, or by `OutputsCheck`'s workers); undefined when absent.
   */
  find(stage: string, key: string): { readonly line: number; readonly contentHash: string } | undefined {
    const line = this.at.get(stage)?.get(key);
    if (line === undefined) return undefined;
    const text = this.lines[line];
    const start = text.indexOf('\t', text.indexOf('\t') + 1) + 1;
    return { line, contentHash: text.slice(start, text.indexOf('\t', start)) };
  }

  /** The entry at line `line`; undefined when its line is damaged. */
  entry(line: number): IndexedEntry | undefined {
    const f = checkedFields(this.lines[line] ?? '');
    if (!f) return undefined;
    try {
      const outputs = (JSON.parse(f[7]) as [string, number][]).map(([name, bytes]) => ({ name, bytes }));
      const identity = { size: Number(f[3]), mtimeMs: Number(f[4]), ctimeMs: Number(f[5]), ino: Number(f[6]) };
      return { line, contentHash: f[2], identity, outputs };
    } catch {
      return undefined;
    }
  }

  /**
   * Writes this index with `changes` applied (by entry: its new line, or null to drop it) to the
   * store at `root`, atomically (see the module comment); damaged lines are dropped.
   * @returns whether it was written; never throws (an index is never needed).
   */
  save(root: string, changes: ReadonlyMap<string, string | null>): boolean {
    const kept = this.lines.slice(1).filter((l) => !changes.has(lineId(l) ?? '') && checkedFields(l) !== undefined);
    const added = [...changes.values()].filter((l): l is string => l !== null);
    const file = indexPath(root);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      mkdirSync(join(root, '.index'), { recursive: true });
      writeFileSync(tmp, [HEADER, ...kept, ...added, ''].join('\n'));
      renameSync(tmp, file);
      return true;
    } catch {
      rmSync(tmp, { force: true });
      return false;
    }
  }
}

/**
 * What a plan learned that the index did not say: for each entry it read from its manifest, the
 * new line (null: drop the entry, it is missing, damaged or racy). `changed` tells whether saving
 * is worth it.
 */
export class IndexUpdate {
  readonly changes = new Map<string, string | null>();
  private effective = 0;

  /** @param index the index the plan started from. */
  constructor(private readonly index: ManifestIndex) {}

  /** Records what the manifest of `stage`/`key` says now (`line`, or null when it says nothing usable). */
  record(stage: string, key: string, line: string | null): void {
    const id = entryId(stage, key);
    if (this.changes.has(id)) return;
    this.changes.set(id, line);
    if (line !== null || this.index.has(stage, key)) this.effective++;
  }

  /** Whether the index would change. */
  get changed(): boolean {
    return this.effective > 0;
  }

  /** Saves the updated index when it changed (`ManifestIndex.save`). @returns whether it was written. */
  save(root: string): boolean {
    return this.changed && this.index.save(root, this.changes);
  }
}

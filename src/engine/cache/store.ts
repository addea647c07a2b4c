/**
 * **The cache wing** (`engine/cache/`): what makes a stage run's result reusable and trustworthy.
 * `hash.ts` and `keys.ts` turn a run into its key (stage type, code version, params, inputs'
 * content hashes) and its outputs into a content hash; `store.ts` (this module) keeps artifacts by
 * key, committed atomically; `lock.ts` keeps two processes from computing one key; `manifest.ts` is
 * the record written last into each artifact, `outputs.ts` lists and hashes what a stage wrote,
 * `environment.ts` and `version.ts` what else a manifest records; `integrity.ts` checks an
 * artifact's bytes again; `usage.ts`, `inventory.ts`, `du.ts` and `gc.ts` say what the store holds,
 * which pipelines use it, and what may go.
 *
 * The content-addressed artifact store: `<root>/<stage type>/<key>/` holds a stage run's outputs
 * and its `manifest.json`, written last.
 *
 * Commits are atomic: a stage writes into `<root>/.tmp/<key>.<pid>.<random>/`, the engine writes the
 * manifest, then renames the folder into place. A folder without a valid manifest, or whose files
 * do not have their recorded sizes, is never treated as complete. Temporaries left by dead
 * processes are removed by `cleanStale` (`temporaries.ts`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { manifestContradiction } from './integrity.js';
import { acquireLock } from './lock.js';
import type { LockOptions, Release } from './lock.js';
import { MANIFEST_FILE, parseManifest } from './manifest.js';
import type { Manifest } from './manifest.js';
import { assertStoreFolder } from './store-access.js';
import { parseTempName, removeStrayTemporaries } from './temporaries.js';
import type { Temporary } from './temporaries.js';

/**
 * Result of a store lookup. `reason` explains a miss that is not a plain absence. A hit's
 * `contentHash` is its manifest's `content_hash` (a lookup through the manifest index,
 * `indexed-lookup.ts`, knows it without reading the manifest, which it then reads when asked).
 */
export type Lookup =
  | { readonly hit: true; readonly manifest: Manifest; readonly dir: string; readonly contentHash: string }
  | { readonly hit: false; readonly reason?: string };

const KEY_NAME = /^[0-9a-f]{64}$/;

/**
 * The file beside a temporary output folder that holds the job an executor hands to a worker
 * process: `<tmp>.job.json`.
 */
export function jobFilePath(tmp: string): string {
  return `${tmp}.job.json`;
}

export { parseTempName } from './temporaries.js';
export type { Temporary } from './temporaries.js';

/**
 * The first output of `manifest` that is not a regular file of its recorded size in `dir`, or
 * undefined when all are (what `Store.lookup` checks).
 */
export function missingOutput(
  dir: string,
  manifest: { readonly outputs: readonly { readonly name: string; readonly bytes: number }[] },
): string | undefined {
  for (const out of manifest.outputs) {
    let s;
    try {
      s = statSync(`${dir}/${out.name}`, { throwIfNoEntry: false });
    } catch {
      s = undefined;
    }
    if (!s || !s.isFile() || s.size !== out.bytes) return out.name;
  }
  return undefined;
}

/** An artifact folder found by `Store.entries` (complete or not). */
export interface StoreEntry {
  readonly stage: string;
  readonly key: string;
  /** Absolute folder path. */
  readonly dir: string;
}

/** A content-addressed artifact store rooted at a folder. Nothing is created until written. */
export class Store {
  /** Absolute path of the store's root folder. */
  readonly root: string;
  private readonly manifestCache = new Map<string, Promise<Manifest[]>>();
  private readonly manifestIndex = new WeakMap<Manifest[], Map<string, Manifest>>();

  /** `root` with one trailing slash. */
  private readonly base: string;

  /** @throws InputError when `root` is a file, or lies under one (`store-access.ts`). */
  constructor(root: string) {
    this.root = resolve(root);
    assertStoreFolder(this.root, root);
    this.base = this.root.endsWith('/') ? this.root : `${this.root}/`;
  }

  /** Folder of a completed artifact (which may not exist). */
  artifactDir(stage: string, key: string): string {
    return join(this.root, stage, key);
  }

  /** Folder of temporaries. */
  get tmpDir(): string {
    return join(this.root, '.tmp');
  }

  /**
   * Folder for a key's resumable state (`<root>/.checkpoints/<key>`): survives an interrupted
   * run, removed once the key's artifact is committed. Not created here.
   */
  checkpointDir(key: string): string {
    return join(this.root, '.checkpoints', key);
  }

  /** Folder of per-key locks. */
  get locksDir(): string {
    return join(this.root, '.locks');
  }

  /**
   * Looks up a key. A hit needs a valid manifest for this key, consistent in itself
   * (`manifestContradiction`), and every output present with its recorded size (cheap: no hashing
   * of files; byte hashes are checked when a stage reads an artifact, see
   * `integrity.ts`). Writes nothing. Uses synchronous file calls: a few small reads and `stat`s
   * per key are much faster that way than through the thread pool (`status` on 600 cached runs).
   * Planning looks up through the manifest index instead (`indexed-lookup.ts`), with the same
   * answers.
   * @returns a hit, or a miss with `reason` `corrupt: <file>` when the folder exists but is damaged.
   */
  lookup(stage: string, key: string): Promise<Lookup> {
    const found = this.readManifest(stage, key);
    if (!found.hit) return Promise.resolve(found);
    const bad = missingOutput(found.dir, found.manifest);
    return Promise.resolve(bad === undefined ? found : { hit: false, reason: `corrupt: ${bad}` });
  }

  /** `lookup` without the outputs' check, synchronously. */
  readManifest(stage: string, key: string): Lookup {
    // Plain concatenation (as join, without its normalising): stage and key are plain names.
    const dir = `${this.base}${stage}/${key}`;
    let text: string;
    try {
      text = readFileSync(`${dir}/${MANIFEST_FILE}`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return existsSync(dir) ? { hit: false, reason: `corrupt: ${MANIFEST_FILE} missing` } : { hit: false };
      }
      return { hit: false, reason: `corrupt: ${MANIFEST_FILE} (${(err as Error).message})` };
    }
    let manifest: Manifest;
    try {
      manifest = parseManifest(text);
    } catch {
      return { hit: false, reason: `corrupt: ${MANIFEST_FILE}` };
    }
    if (manifest.key !== key || manifest.stage !== stage)
      return { hit: false, reason: `corrupt: ${MANIFEST_FILE} (key mismatch)` };
    const contradiction = manifestContradiction(manifest);
    if (contradiction) return { hit: false, reason: `corrupt: ${MANIFEST_FILE} (${contradiction})` };
    return { hit: true, manifest, dir, contentHash: manifest.content_hash };
  }

  /** Removes an artifact folder (e.g. a corrupt one before recomputing). Never throws on absence. */
  async remove(stage: string, key: string): Promise<void> {
    this.manifestCache.delete(stage);
    await rm(this.artifactDir(stage, key), { recursive: true, force: true });
  }

  /** Every readable manifest of a stage type (for explaining misses). Unreadable ones are skipped. */
  manifests(stage: string): Promise<Manifest[]> {
    let cached = this.manifestCache.get(stage);
    if (!cached) {
      cached = Promise.resolve(this.readManifests(stage));
      this.manifestCache.set(stage, cached);
    }
    return cached;
  }

  /** The readable manifest of `stage`/`key` among `manifests(stage)`, if any. */
  async findManifest(stage: string, key: string): Promise<Manifest | undefined> {
    const list = await this.manifests(stage);
    let index = this.manifestIndex.get(list);
    if (!index) {
      index = new Map(list.map((m) => [m.key, m]));
      this.manifestIndex.set(list, index);
    }
    return index.get(key);
  }

  /**
   * Every artifact folder `<root>/<stage>/<key>`, sorted by stage then key; complete or not (see
   * `lookup`). Only folders named like keys (64 hex digits) count: folders starting with `.` are
   * the store's own, and anything else in the store (reports, notes) is left alone.
   */
  async entries(): Promise<StoreEntry[]> {
    let stages: string[];
    try {
      stages = (await readdir(this.root, { withFileTypes: true }))
        .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
        .map((d) => d.name);
    } catch {
      return [];
    }
    const out: StoreEntry[] = [];
    for (const stage of stages.sort()) {
      let keys: string[];
      try {
        keys = (await readdir(join(this.root, stage), { withFileTypes: true }))
          .filter((d) => d.isDirectory() && KEY_NAME.test(d.name))
          .map((d) => d.name);
      } catch {
        continue;
      }
      for (const key of keys.sort()) out.push({ stage, key, dir: join(this.root, stage, key) });
    }
    return out;
  }

  /**
   * Marks an artifact as used now (its folder's modification time), so that `gc --older-than`
   * and `ls` see when it was last reused. Never throws (a read-only store stays as it is).
   */
  async touch(stage: string, key: string): Promise<void> {
    const now = new Date();
    await utimes(this.artifactDir(stage, key), now, now).catch(() => undefined);
  }

  /** Temporaries in `<root>/.tmp` with the process that owns each (none when absent). */
  async temporaries(): Promise<Temporary[]> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch {
      return [];
    }
    return names.map(parseTempName).filter((t): t is Temporary => t !== undefined);
  }

  private readManifests(stage: string): Manifest[] {
    let keys: string[];
    try {
      keys = readdirSync(join(this.root, stage));
    } catch {
      return [];
    }
    const out: Manifest[] = [];
    for (const key of keys.sort()) {
      try {
        out.push(parseManifest(readFileSync(join(this.root, stage, key, MANIFEST_FILE), 'utf8')));
      } catch {
        // Incomplete or damaged entries explain nothing.
      }
    }
    return out;
  }

  /** Creates a fresh temporary folder `<root>/.tmp/<key>.<pid>.<random>` and returns its path. */
  async createTemp(key: string): Promise<string> {
    const dir = join(this.tmpDir, `${key}.${process.pid}.${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Removes a temporary folder (and its job file, if any). Never throws. */
  async discard(tmp: string): Promise<void> {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await rm(jobFilePath(tmp), { force: true }).catch(() => undefined);
  }

  /**
   * Commits a temporary folder: flushes its files, writes `manifest.json` last, then renames the
   * folder to `<root>/<stage>/<key>`. When a complete artifact for the key is already there (another
   * process won a race), keeps that one and discards ours; a damaged one is replaced.
   * @returns the final folder and the manifest that is in it.
   * @throws Error on file system errors (the temporary is then left for the caller to discard).
   */
  async commit(tmp: string, manifest: Manifest): Promise<{ dir: string; manifest: Manifest }> {
    for (const out of manifest.outputs) await fsyncFile(join(tmp, out.name));
    const manifestPath = join(tmp, MANIFEST_FILE);
    await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    await fsyncFile(manifestPath);
    const dir = this.artifactDir(manifest.stage, manifest.key);
    await mkdir(join(this.root, manifest.stage), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(tmp, dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt > 0) throw err;
        const existing = await this.lookup(manifest.stage, manifest.key);
        if (existing.hit) {
          await this.discard(tmp);
          return { dir, manifest: existing.manifest };
        }
        await rm(dir, { recursive: true, force: true });
      }
    }
    await rm(jobFilePath(tmp), { force: true }).catch(() => undefined);
    await rm(this.checkpointDir(manifest.key), { recursive: true, force: true }).catch(() => undefined);
    const cached = this.manifestCache.get(manifest.stage);
    if (cached)
      this.manifestCache.set(
        manifest.stage,
        cached.then((list) => [...list, manifest]),
      );
    return { dir, manifest };
  }

  /**
   * Removes temporaries left by processes that no longer run on this machine (killed or crashed):
   * stage outputs in `.tmp`, half-written checkpoint and usage files (`temporaries.ts`).
   * @returns the names removed (file or folder names).
   */
  async cleanStale(): Promise<string[]> {
    return (await removeStrayTemporaries(this.root)).map((p) => basename(p));
  }

  /**
   * Takes the inter-process lock of a key (`<root>/.locks/<key>`), waiting while another live
   * process holds it. @throws as `acquireLock`.
   */
  lock(key: string, options: LockOptions = {}): Promise<Release> {
    return acquireLock(this.locksDir, key, options);
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

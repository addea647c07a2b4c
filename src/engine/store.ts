/**
 * The content-addressed artifact store: `<root>/<stage type>/<key>/` holds a stage run's outputs
 * and its `manifest.json`, written last.
 *
 * Commits are atomic: a stage writes into `<root>/.tmp/<key>.<pid>.<random>/`, the engine writes the
 * manifest, then renames the folder into place. A folder without a valid manifest, or whose files
 * do not have their recorded sizes, is never treated as complete. Temporaries left by dead
 * processes are removed by `cleanStale`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { acquireLock } from './lock.js';
import type { LockOptions, Release } from './lock.js';
import { MANIFEST_FILE, parseManifest } from './manifest.js';
import type { Manifest } from './manifest.js';
import { pidAlive } from './pid.js';

/** Result of a store lookup. `reason` explains a miss that is not a plain absence. */
export type Lookup =
  | { readonly hit: true; readonly manifest: Manifest; readonly dir: string }
  | { readonly hit: false; readonly reason?: string };

const TEMP_NAME = /^([0-9a-f]+)\.(\d+)\.([0-9a-f]+)(\.task\.json)?$/;

/** A content-addressed artifact store rooted at a folder. Nothing is created until written. */
export class Store {
  /** Absolute path of the store's root folder. */
  readonly root: string;
  private readonly manifestCache = new Map<string, Promise<Manifest[]>>();

  constructor(root: string) {
    this.root = resolve(root);
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
   * Looks up a key. A hit needs a valid manifest for this key and every output present with its
   * recorded size (cheap: no hashing). Writes nothing.
   * @returns a hit, or a miss with `reason` `corrupt: <file>` when the folder exists but is damaged.
   */
  async lookup(stage: string, key: string): Promise<Lookup> {
    const dir = this.artifactDir(stage, key);
    let text: string;
    try {
      text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
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
    if (manifest.key !== key || manifest.stage !== stage) return { hit: false, reason: `corrupt: ${MANIFEST_FILE} (key mismatch)` };
    for (const out of manifest.outputs) {
      try {
        const s = await stat(join(dir, out.name));
        if (!s.isFile() || s.size !== out.bytes) return { hit: false, reason: `corrupt: ${out.name}` };
      } catch {
        return { hit: false, reason: `corrupt: ${out.name}` };
      }
    }
    return { hit: true, manifest, dir };
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
      cached = this.readManifests(stage);
      this.manifestCache.set(stage, cached);
    }
    return cached;
  }

  private async readManifests(stage: string): Promise<Manifest[]> {
    let keys: string[];
    try {
      keys = await readdir(join(this.root, stage));
    } catch {
      return [];
    }
    const out: Manifest[] = [];
    for (const key of keys.sort()) {
      try {
        out.push(parseManifest(await readFile(join(this.root, stage, key, MANIFEST_FILE), 'utf8')));
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

  /** Removes a temporary folder (and its task file, if any). Never throws. */
  async discard(tmp: string): Promise<void> {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await rm(`${tmp}.task.json`, { force: true }).catch(() => undefined);
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
    await rm(`${tmp}.task.json`, { force: true }).catch(() => undefined);
    await rm(this.checkpointDir(manifest.key), { recursive: true, force: true }).catch(() => undefined);
    const cached = this.manifestCache.get(manifest.stage);
    if (cached) this.manifestCache.set(manifest.stage, cached.then((list) => [...list, manifest]));
    return { dir, manifest };
  }

  /**
   * Removes temporaries left by processes that no longer run on this machine (killed or crashed).
   * @returns the names removed.
   */
  async cleanStale(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      const m = TEMP_NAME.exec(name);
      if (!m) continue;
      const pid = Number(m[2]);
      if (pid === process.pid || pidAlive(pid)) continue;
      await rm(join(this.tmpDir, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
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

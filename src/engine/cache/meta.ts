/**
 * A store entry's metadata sidecar, `<store>/.meta/<stage>/<key>.json`: what people say about a
 * run and where it was used, kept outside the artifact folder so that no key, content hash or
 * manifest ever changes with it.
 *
 * - `name`: the run's name (`grokpipe run --name`, per combination with templates); the last name
 *   given wins.
 * - `tags`: labels added with `grokpipe tag` (sorted, each once).
 * - `uses`: every pipeline file that used the entry, with the run id it had there and the `--set`
 *   arguments of that invocation, so that `grokpipe runs <pipeline>` and `report --all-runs` find
 *   a pipeline's runs whatever `--set` produced them, and after the file was edited. (The store's
 *   usage records, `usage.ts`, keep only each pipeline's latest run.)
 *
 * Updates read, change and replace the file atomically under a proper-lockfile lock of that file,
 * so that two processes tagging or naming the same entry do not lose each other's change.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** One use of an entry by a pipeline run. */
export interface PipelineUse {
  /** Absolute path of the pipeline file. */
  readonly file: string;
  /** The pipeline's `name:` (or the file name). */
  readonly pipeline: string;
  /** The entry's run id in that pipeline (`model[weight_decay=0.1]`). */
  readonly id: string;
  /** The `--set` arguments of the invocation, in command-line order. */
  readonly sets: readonly string[];
}

/** What the sidecar of an entry holds. */
export interface EntryMeta {
  readonly name?: string;
  /** Sorted, without repeats. */
  readonly tags: readonly string[];
  readonly uses: readonly PipelineUse[];
}

/** The sidecar of an entry that has none. */
export const NO_META: EntryMeta = { tags: [], uses: [] };

/** Folder of the sidecars in a store. */
export function metaDir(storeRoot: string): string {
  return join(storeRoot, '.meta');
}

/** The sidecar file of an entry. */
export function metaPath(storeRoot: string, stage: string, key: string): string {
  return join(metaDir(storeRoot), stage, `${key}.json`);
}

function parseMeta(text: string): EntryMeta {
  const m = JSON.parse(text) as Partial<EntryMeta>;
  return {
    ...(typeof m.name === 'string' ? { name: m.name } : {}),
    tags: Array.isArray(m.tags) ? m.tags.filter((t): t is string => typeof t === 'string') : [],
    uses: Array.isArray(m.uses) ? m.uses.filter((u) => typeof u?.file === 'string' && typeof u.id === 'string') : [],
  };
}

/** An entry's sidecar; `NO_META` when it has none or it cannot be read. Never throws. */
export async function readMeta(storeRoot: string, stage: string, key: string): Promise<EntryMeta> {
  try {
    return parseMeta(await readFile(metaPath(storeRoot, stage, key), 'utf8'));
  } catch {
    return NO_META;
  }
}

/**
 * Every readable sidecar of a store, by `<stage>/<key>` (empty when there is none).
 */
export async function readAllMeta(storeRoot: string): Promise<Map<string, EntryMeta>> {
  const out = new Map<string, EntryMeta>();
  let stages: string[];
  try {
    stages = await readdir(metaDir(storeRoot));
  } catch {
    return out;
  }
  for (const stage of stages.sort()) {
    let names: string[];
    try {
      names = (await readdir(join(metaDir(storeRoot), stage))).filter((n) => /^[0-9a-f]{64}\.json$/.test(n));
    } catch {
      continue;
    }
    for (const name of names) {
      const key = name.slice(0, -'.json'.length);
      const meta = await readMeta(storeRoot, stage, key);
      if (meta !== NO_META) out.set(`${stage}/${key}`, meta);
    }
  }
  return out;
}

/**
 * Changes an entry's sidecar: `change` gets the current one and returns the new one, or undefined
 * to leave the file as it is. Runs under the file's lock; the file is replaced atomically.
 * @throws Error on file system errors, or when the lock cannot be had within about 10 s.
 */
export async function updateMeta(
  storeRoot: string,
  stage: string,
  key: string,
  change: (meta: EntryMeta) => EntryMeta | undefined,
): Promise<void> {
  const file = metaPath(storeRoot, stage, key);
  await mkdir(dirname(file), { recursive: true });
  const { default: lockfile } = await import('proper-lockfile');
  const release = await lockfile.lock(file, {
    realpath: false,
    stale: 10_000,
    retries: { retries: 100, minTimeout: 20, maxTimeout: 200 },
  });
  try {
    const next = change(await readMeta(storeRoot, stage, key));
    if (next === undefined) return;
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const ordered = {
      ...(next.name === undefined ? {} : { name: next.name }),
      tags: [...new Set(next.tags)].sort(),
      uses: next.uses,
    };
    await writeFile(tmp, `${JSON.stringify(ordered, null, 2)}\n`);
    await rename(tmp, file);
  } finally {
    await release();
  }
}

/** Whether two uses are the same pipeline file, run id and `--set` arguments. */
export function sameUse(a: PipelineUse, b: PipelineUse): boolean {
  return (
    a.file === b.file && a.id === b.id && a.sets.length === b.sets.length && a.sets.every((s, i) => s === b.sets[i])
  );
}

/**
 * Records what one `grokpipe run` did to an entry: its use by a pipeline, and its name when the
 * invocation gave one. Writes only when something is new (a fully cached rerun writes nothing).
 */
export async function recordRunMeta(
  storeRoot: string,
  entry: { readonly stage: string; readonly key: string; readonly use: PipelineUse; readonly name?: string },
): Promise<void> {
  const current = await readMeta(storeRoot, entry.stage, entry.key);
  const known = current.uses.some((u) => sameUse(u, entry.use));
  if (known && (entry.name === undefined || entry.name === current.name)) return;
  await updateMeta(storeRoot, entry.stage, entry.key, (m) => {
    const uses = m.uses.some((u) => sameUse(u, entry.use)) ? m.uses : [...m.uses, entry.use];
    return { ...m, ...(entry.name === undefined ? {} : { name: entry.name }), uses };
  });
}

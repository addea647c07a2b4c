/**
 * What a stored artifact really holds: every hash recomputed from the files themselves, never
 * taken from the manifest, then held against each figure the manifest states. A manifest edited by
 * hand or by a faulty tool (a changed `content_hash`, bytes replaced together with their `sha256`)
 * is found this way; a check of bytes against the manifest's `sha256` alone would pass it.
 *
 * Per output: its size, the SHA-256 of its bytes and its content hash (a table's logical hash from
 * its decoded values, `tableHash`, which must also equal the hash in its Parquet footer; a file's
 * byte SHA-256). Then the artifact: no file missing from the manifest or beyond it, its content hash
 * from the recomputed outputs (`contentHash`), and its key from the stage, version, params and
 * input hashes the manifest records (`stageKey`).
 */
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { contentHash, hashJson, stageKey } from './hash.js';
import { ByteCheckCache, storedFile } from './integrity.js';
import type { ByteProblem } from './integrity.js';
import { MANIFEST_FILE } from './manifest.js';
import type { Manifest, ManifestOutput } from './manifest.js';

/** What `recomputeStored` found. */
export interface StoredArtifact {
  /** The outputs as the files are (hashes recomputed); missing files are left out. */
  readonly outputs: readonly ManifestOutput[];
  /** Content hash of `outputs`. */
  readonly contentHash: string;
  /** Every figure of the manifest the files contradict; empty when the artifact is sound. */
  readonly problems: readonly ByteProblem[];
}

const short = (hash: string) => hash.slice(0, 12);

/**
 * Recomputes the hashes of the artifact in `dir` from its files and compares them with `manifest`
 * (see the module comment).
 * @param cache byte hashes already computed in this process.
 * @returns the recomputed outputs and content hash, and the problems. Never throws.
 */
export async function recomputeStored(
  dir: string,
  manifest: Manifest,
  cache = new ByteCheckCache(),
): Promise<StoredArtifact> {
  const problems: ByteProblem[] = [];
  const outputs: ManifestOutput[] = [];
  for (const out of manifest.outputs) {
    // One problem a file: the first found. (Manifests older than byte hashes have no `sha256`:
    // the content hash below still checks the file.)
    const found = await storedFile(dir, out, cache);
    if ('problem' in found) {
      problems.push(found.problem);
      continue;
    }
    const sha = found.sha256 as string;
    const hash = out.kind === 'table' ? await tableContentHash(join(dir, out.name)) : { hash: sha };
    if ('error' in hash) {
      problems.push({ file: out.name, message: hash.error });
      continue;
    }
    if (hash.hash !== out.content_hash) {
      problems.push({
        file: out.name,
        message: `content hash ${short(hash.hash)} from the file, manifest says ${short(out.content_hash)}`,
      });
    }
    outputs.push({ name: out.name, kind: out.kind, content_hash: hash.hash, bytes: found.bytes, sha256: sha });
  }
  const listed = new Set(manifest.outputs.map((o) => o.name));
  for (const name of await filesIn(dir)) {
    if (name !== MANIFEST_FILE && !listed.has(name)) problems.push({ file: name, message: 'not in the manifest' });
  }
  const hash = contentHash(outputs.map((o) => ({ name: o.name, hash: o.content_hash })));
  if (outputs.length === manifest.outputs.length && hash !== manifest.content_hash) {
    problems.push({
      file: MANIFEST_FILE,
      message: `content_hash ${short(manifest.content_hash)}, the files hash to ${short(hash)}`,
    });
  }
  const c = manifest.components;
  const key = stageKey({ stage: manifest.stage, version: c.version, params: manifest.params, inputs: c.inputs });
  if (key !== manifest.key || hashJson(manifest.params) !== c.params_hash) {
    problems.push({
      file: MANIFEST_FILE,
      message: `its stage, version, params and inputs give key ${short(key)}, not ${short(manifest.key)}`,
    });
  }
  return { outputs, contentHash: hash, problems };
}

/** A table's logical content hash from its decoded values, checked against its footer's. */
async function tableContentHash(path: string): Promise<{ hash: string } | { error: string }> {
  // Loaded on use: the Parquet libraries are not needed to plan.
  const { readContentHash, readTable } = await import('../../table/parquet.js');
  const { tableHash } = await import('../../table/table.js');
  try {
    const hash = tableHash(await readTable(path, { verify: false }));
    const footer = readContentHash(path);
    if (footer !== hash) return { error: `table values hash to ${short(hash)}, its footer says ${short(footer)}` };
    return { hash };
  } catch (err) {
    return { error: `unreadable table (${(err as Error).message})` };
  }
}

/** File names under `dir`, relative, `/`-separated (none when unreadable). */
async function filesIn(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'));
  } catch {
    return [];
  }
}

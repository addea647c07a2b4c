/**
 * The outputs of a finished job: every file in its temporary folder, with its size and hashes.
 * Files written through the context come with their hashes; others are hashed here (bytes, or a
 * Parquet footer's logical hash).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { readContentHash } from '../../table/parquet.js';
import { fileSha256 } from './hash.js';
import { MANIFEST_FILE } from './manifest.js';
import type { ManifestOutput } from './manifest.js';
import type { WrittenOutput } from '../exec/job.js';

/**
 * Lists the outputs in `dir` (recursively, sorted by name).
 * @throws Error when a file cannot be read.
 */
export async function collectOutputs(dir: string, written: readonly WrittenOutput[]): Promise<ManifestOutput[]> {
  const known = new Map(written.map((w) => [w.name, w]));
  const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .filter((name) => name !== MANIFEST_FILE)
    .sort();
  const outputs: ManifestOutput[] = [];
  for (const name of files) {
    const path = join(dir, name);
    const bytes = (await stat(path)).size;
    const w = known.get(name);
    if (w && w.bytes === bytes) {
      outputs.push({ name, kind: w.kind, content_hash: w.content_hash, bytes, sha256: w.sha256 });
      continue;
    }
    const sha = await fileSha256(path);
    let kind: 'table' | 'file' = 'file';
    let hash = sha;
    if (name.endsWith('.parquet')) {
      try {
        hash = readContentHash(path);
        kind = 'table';
      } catch {
        // A Parquet file not written by grokpipe: hash its bytes.
      }
    }
    outputs.push({ name, kind, content_hash: hash, bytes, sha256: sha });
  }
  return outputs;
}

/**
 * Byte integrity of artifacts: every output file's SHA-256 is in its manifest; these checks hash
 * the files again and compare. A store lookup only compares sizes (cheap, for `status`); the
 * runner checks an artifact's bytes before a stage reads it, and `grokpipe verify` checks them for
 * every entry it looks at. One flipped byte is found either way.
 *
 * A `ByteCheckCache` remembers files already hashed in this process (by path, size, mtime and
 * inode), so that an artifact read by many runs (a shared tokenizer, a model) is hashed once.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { contentHash, fileSha256 } from './hash.js';
import type { Manifest, ManifestOutput } from './manifest.js';

/** One problem with an artifact's files. */
export interface ByteProblem {
  /** Output file name (`weights.safetensors`). */
  readonly file: string;
  /** What is wrong: `missing`, `size 10 bytes, manifest says 812`, `bytes changed (sha256 ...)`. */
  readonly message: string;
}

/** Hashes of files already computed in this process, keyed by path and file identity. */
export class ByteCheckCache {
  private readonly hashes = new Map<string, Promise<string>>();

  /**
   * SHA-256 (hex) of the file at `path`, whose `stat` is given; hashed once per identity.
   * @throws Error when the file cannot be read.
   */
  sha256(path: string, s: { size: number; mtimeMs: number; ino: number }): Promise<string> {
    const id = `${path}\n${s.size}\n${s.mtimeMs}\n${s.ino}`;
    let h = this.hashes.get(id);
    if (!h) {
      h = fileSha256(path);
      this.hashes.set(id, h);
      h.catch(() => this.hashes.delete(id));
    }
    return h;
  }
}

/**
 * Checks every output of an artifact against its manifest: present, of the recorded size, and of
 * the recorded byte SHA-256 (outputs without a recorded `sha256` are checked by size only).
 * @param cache reuse hashes computed earlier in this process; omit to hash afresh.
 * @returns the problems found, empty when the artifact is intact. Never throws.
 */
export async function checkArtifactBytes(
  dir: string,
  manifest: Manifest,
  cache?: ByteCheckCache,
): Promise<ByteProblem[]> {
  const problems: ByteProblem[] = [];
  for (const out of manifest.outputs) {
    const found = await storedFile(dir, out, cache, false);
    if ('problem' in found) problems.push(found.problem);
  }
  return problems;
}

/**
 * One output file as stored, against its manifest entry: its byte SHA-256 and size, or the first
 * problem with it (missing, not of the recorded size, bytes other than the recorded `sha256`,
 * unreadable). Without a recorded `sha256`, the file is hashed only when `hash` is true.
 * @param cache reuse hashes computed earlier in this process; omit to hash afresh.
 * Never throws.
 */
export async function storedFile(
  dir: string,
  out: ManifestOutput,
  cache?: ByteCheckCache,
  hash = true,
): Promise<{ readonly sha256?: string; readonly bytes: number } | { readonly problem: ByteProblem }> {
  const path = join(dir, out.name);
  let s;
  try {
    s = await stat(path);
  } catch {
    return { problem: { file: out.name, message: 'missing' } };
  }
  if (!s.isFile() || s.size !== out.bytes)
    return { problem: { file: out.name, message: `size ${s.size} bytes, manifest says ${out.bytes}` } };
  if (typeof out.sha256 !== 'string' && !hash) return { bytes: s.size };
  try {
    const actual = cache ? await cache.sha256(path, s) : await fileSha256(path);
    if (typeof out.sha256 === 'string' && actual !== out.sha256) {
      return {
        problem: {
          file: out.name,
          message: `bytes changed (sha256 ${actual.slice(0, 12)}, manifest says ${out.sha256.slice(0, 12)})`,
        },
      };
    }
    return { sha256: actual, bytes: s.size };
  } catch (err) {
    return { problem: { file: out.name, message: `unreadable (${(err as Error).message})` } };
  }
}

/** `corrupt: <file> (<message>)` for the first problem, `and N more` after it. */
export function formatByteProblems(problems: readonly ByteProblem[]): string {
  if (problems.length === 0) return '';
  const first = `corrupt: ${problems[0].file} (${problems[0].message})`;
  return problems.length > 1 ? `${first} and ${problems.length - 1} more` : first;
}

/**
 * What a manifest contradicts in itself, without reading any file: its `content_hash` must be the
 * content hash of its outputs' hashes, and a plain file's content hash its byte SHA-256. A manifest
 * edited by hand fails this (`Store.lookup` then treats the entry as corrupt).
 * @returns the contradiction in words, or undefined when there is none.
 */
export function manifestContradiction(manifest: Manifest): string | undefined {
  const file = manifest.outputs.find(
    (o) => o.kind === 'file' && typeof o.sha256 === 'string' && o.content_hash !== o.sha256,
  );
  if (file) return `${file.name}: content hash is not its sha256`;
  if (contentHash(manifest.outputs.map((o) => ({ name: o.name, hash: o.content_hash }))) !== manifest.content_hash) {
    return 'content_hash does not match its outputs';
  }
  return undefined;
}

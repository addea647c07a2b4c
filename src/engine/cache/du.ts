/** Disk usage of files and folders (for `grokpipe gc` and `grokpipe ls`). */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Total size (bytes) of the regular files under `path` (or of `path` itself when it is a file);
 * links are not followed. Missing or unreadable paths count 0. Never throws.
 */
export async function diskUsage(path: string): Promise<number> {
  let s;
  try {
    s = await lstat(path);
  } catch {
    return 0;
  }
  if (s.isFile()) return s.size;
  if (!s.isDirectory()) return 0;
  let total = 0;
  try {
    for (const e of await readdir(path)) total += await diskUsage(join(path, e));
  } catch {
    // Vanished or unreadable while walking: count what was seen.
  }
  return total;
}

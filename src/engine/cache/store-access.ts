/**
 * Whether the folder given as the store (`--store`) can serve: a file where the store should be,
 * or in its path, is bad input for every command (else each would read it as an empty store); a
 * store that cannot be written (a read-only file system, no permission) serves the commands that
 * only read (`status`, `why`, `ls`, `show`, a fully cached `run`), while those that must write say
 * so up front (exit 2) instead of failing half-way: `run` with work to do, `gc` with something to
 * remove, `verify --repair`. `verify` itself then recomputes in the system's temporary folder.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';

/** How the store was named to the user (`--store <dir>`), for messages. */
const named = (given: string): string => `--store ${given}`;

/**
 * Checks that `root` is a folder or does not exist yet.
 * @param given the store as the user wrote it (named in the message).
 * @throws InputError when `root`, or a folder on its path, is a file.
 */
export function assertStoreFolder(root: string, given: string = root): void {
  try {
    if (!statSync(root).isDirectory())
      throw new InputError([
        { where: named(given), path: '', message: 'is a file, not a folder: give the folder of the artifact store' },
      ]);
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR')
      throw new InputError([
        {
          where: named(given),
          path: '',
          message: 'a part of this path is a file, not a folder: give the folder of the artifact store',
        },
      ]);
    // ENOENT: created when first written. Anything else shows when the store is read.
  }
}

/**
 * Why the store at `root` cannot be written (`EROFS`, `EACCES`...), or undefined when it can: the
 * folder, or the nearest existing folder above it when it does not exist yet. Writes nothing.
 */
export function storeReadOnly(root: string): string | undefined {
  let dir = root;
  for (;;) {
    try {
      accessSync(dir, constants.W_OK);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'ENOENT' || dirname(dir) === dir)
        return code === 'EROFS' ? 'read-only file system (EROFS)' : `not writable (${code})`;
      dir = dirname(dir);
    }
  }
}

/**
 * @param root the store's folder; @param given the store as the user wrote it.
 * @param purpose what needs to write, e.g. `gc would remove 3 items`.
 * @throws InputError naming `--store` when the store cannot be written.
 */
export function assertStoreWritable(root: string, purpose: string, given: string = root): void {
  const why = storeReadOnly(root);
  if (why)
    throw new InputError([{ where: named(given), path: '', message: `${why}: ${purpose}; give a writable --store` }]);
}

/**
 * A fresh scratch folder for recomputing `key`: the store's own temporary (`createTemp`) when the
 * store can be written, else one in the system's temporary folder.
 */
export async function scratchFolder(
  store: { root: string; createTemp(key: string): Promise<string> },
  key: string,
): Promise<string> {
  if (!storeReadOnly(store.root)) return store.createTemp(key);
  return mkdtemp(join(tmpdir(), `grokpipe-verify-${key.slice(0, 12)}-`));
}

/**
 * For `run` on a store that cannot be written: fine when every run is cached (results are read),
 * refused up front otherwise.
 * @param plan the pipeline's plan against the store (`planRuns`).
 * @throws InputError naming `--store` and the first run that would be computed.
 */
export function assertNothingToCompute(
  plan: readonly { readonly status: string; readonly run: { readonly id: string } }[],
  root: string,
  given: string = root,
): void {
  const todo = plan.filter((p) => p.status !== 'cached');
  if (todo.length === 0) return;
  const n = todo.length;
  assertStoreWritable(
    root,
    `${n} stage run${n === 1 ? '' : 's'} must be computed and stored (first: ${todo[0].run.id})`,
    given,
  );
}

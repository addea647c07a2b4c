/**
 * vitest's global setup: every test file's temporary folders (`os.tmpdir()`, `mkdtemp`) go under one
 * folder for the whole run, removed when the run ends, so a test run leaves nothing in the system's
 * temporary folder (the suite makes a few hundred stores and clones per run). The forked test
 * processes and the CLI processes they start inherit `TMPDIR`; set `GROKPIPE_KEEP_TEST_TMP=1` to
 * keep the folder for a post-mortem (its path is printed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'grokpipe-tests-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    if (process.env.GROKPIPE_KEEP_TEST_TMP) console.log(`test temporary files kept in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  };
}

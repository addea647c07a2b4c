/**
 * A store that cannot serve: a file where the store folder should be is bad input for every
 * command (exit 2, `--store` named); a read-only store serves the commands that read (`status`,
 * `verify`, which then recomputes outside it, a fully cached `run`) and the others say up front why
 * they cannot (exit 2), with no stack trace and nothing written. The read-only store is a
 * read-only bind mount (root), or a folder without write permission (other users); skipped where
 * neither blocks writes.
 */
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const PIPE = 'stages:\n  g: { uses: gen, with: { n: 4 } }\n  s: { uses: scale, needs: [g] }\n';

const undo: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const f of undo.reverse()) await f();
});

/** Every path under `dir` (relative), to show that nothing was written. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

/**
 * Makes `dir` unwritable: a read-only bind mount onto itself, else (not root) no write permission.
 * @returns false when writes still succeed (then the test is skipped).
 */
async function makeReadOnly(dir: string): Promise<boolean> {
  const bind = await execa('mount', ['--bind', dir, dir], { reject: false }).catch(() => ({ exitCode: 1 }));
  if (bind.exitCode === 0) {
    undo.push(() => execa('umount', [dir], { reject: false }));
    await execa('mount', ['-o', 'remount,bind,ro', dir], { reject: false });
  } else {
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      chmodSync(d, 0o555);
    };
    walk(dir);
  }
  try {
    writeFileSync(join(dir, '.probe'), 'x');
    return false;
  } catch {
    return true;
  }
}

describe('store access', () => {
  it('a file where the store should be: every command exits 2 naming --store', async () => {
    const dir = tempDir('gp-access-');
    const file = writeFileIn(dir, 'p.yaml', PIPE);
    const store = writeFileIn(dir, 'store', 'not a folder');
    for (const args of [['verify', file], ['status', file], ['run', file], ['report', file], ['gc'], ['ls']]) {
      const r = await cli([...args, '--store', store]);
      expect(r.code, args[0]).toBe(2);
      expect(r.stderr).toBe(`--store ${store}: is a file, not a folder: give the folder of the artifact store\n`);
    }
    const below = await cli(['status', file, '--store', join(store, 'sub')]);
    expect(below.code).toBe(2);
    expect(below.stderr).toContain('a part of this path is a file');
  });

  it('a read-only store: reading commands work, writing ones exit 2 up front; nothing is written', async (ctx) => {
    const dir = tempDir('gp-access-');
    const file = writeFileIn(dir, 'p.yaml', PIPE);
    const store = join(dir, 'store');
    expect((await cli(['run', file, '--store', store])).code).toBe(0);
    // A temporary of a dead process, for gc to want to remove.
    mkdirSync(join(store, '.tmp', `${'a'.repeat(64)}.999999999.0123abcd`), { recursive: true });
    if (!(await makeReadOnly(store))) {
      ctx.skip('cannot make a read-only folder here (root without mount rights)');
      return;
    }
    const before = tree(store);
    const ok = async (args: string[]) => {
      const r = await cli([...args, '--store', store]);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
    };
    const refused = async (args: string[], message: RegExp) => {
      const r = await cli([...args, '--store', store]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    };
    await ok(['status', file]);
    await ok(['run', file]);
    await ok(['verify', file, '--sample', '1']);
    await ok(['verify', file, '--all']);
    await ok(['gc', '--dry-run']);
    await ok(['report', file, '--out', join(dir, 'report.html')]);
    const why = '(read-only file system \\(EROFS\\)|not writable \\(EACCES\\))';
    await refused(
      ['run', file, '--set', 'g.with.n=5'],
      new RegExp(
        `^--store ${store}: ${why}: 2 stage runs must be computed and stored \\(first: g\\); give a writable --store\\n$`,
      ),
    );
    await refused(
      ['gc'],
      new RegExp(
        `^--store ${store}: ${why}: gc would remove 1 item \\(--dry-run lists them\\); give a writable --store\\n$`,
      ),
    );
    await refused(
      ['verify', file, '--repair'],
      new RegExp(`^--store ${store}: ${why}: verify --repair removes the entries it condemns`),
    );
    await refused(
      ['report', file],
      new RegExp(
        `^--store ${store}: cannot write the report ${join(store, 'reports', 'p.html')} \\(${why}\\); give --out FILE`,
      ),
    );
    expect(tree(store)).toEqual(before);
  });
});

/**
 * Forged manifests: `verify` recomputes every hash from the stored files and never takes the
 * manifest's figures as given; `run` does not reuse an entry whose manifest contradicts itself;
 * `verify --repair` removes what verify condemns so that the next run recomputes it; `gc` removes
 * entries no run can use.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeTable } from '../src/table/parquet.js';
import { cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const PIPE = `
stages:
  g: { uses: gen, with: { n: 6, seed: 2 } }
  s: { uses: scale, needs: [g] }
  t: { uses: sum, needs: [s] }
`;

interface VerifyJson {
  runs: { id: string; status: string; problems: { file: string; message: string }[] }[];
  repaired?: { id: string; stage: string; key: string }[];
}

async function stored(): Promise<{ file: string; store: string; dir: (id: string) => string }> {
  const dir = tempDir('gp-forged-');
  const file = writeFileIn(dir, 'p.yaml', PIPE);
  const store = join(dir, 'store');
  const r = await cli(['run', file, '--store', store, '--json']);
  expect(r.code).toBe(0);
  const stages: Record<string, string> = { g: 'gen', s: 'scale', t: 'sum' };
  return { file, store, dir: (id) => join(store, stages[id], r.run(id).key as string) };
}

/** Edits the manifest in `dir` with `edit`. */
function forge(
  dir: string,
  edit: (m: {
    content_hash: string;
    outputs: { name: string; bytes: number; sha256: string; content_hash: string }[];
  }) => void,
): void {
  const path = join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8')) as Parameters<typeof edit>[0];
  edit(m);
  writeFileSync(path, JSON.stringify(m, null, 2));
}

const verify = async (file: string, store: string, ...args: string[]) => {
  const r = await cli(['verify', file, '--store', store, '--json', ...args]);
  return { code: r.code, doc: JSON.parse(r.stdout) as VerifyJson };
};

describe('forged manifests', () => {
  it('an edited content_hash is corrupt for verify --bytes-only and --all, and run recomputes the entry', async () => {
    const { file, store, dir } = await stored();
    forge(dir('s'), (m) => (m.content_hash = 'f'.repeat(64)));
    for (const args of [['--bytes-only'], ['--all']]) {
      const { code, doc } = await verify(file, store, ...args);
      expect(code).toBe(1);
      expect(doc.runs.find((r) => r.id === 's')).toMatchObject({
        status: 'corrupt',
        problems: [{ file: 'manifest.json', message: 'content_hash does not match its outputs' }],
      });
    }
    const again = await cli(['run', file, '--store', store, '--json']);
    expect(statuses(again)).toEqual({ g: 'cached', s: 'ran', t: 'cached' });
    expect(again.run('s').reason).toBe('corrupt: manifest.json (content_hash does not match its outputs)');
    expect((await verify(file, store)).code).toBe(0);
  });

  it('bytes replaced with their sha256 are corrupt: their content hash is recomputed from the file; --repair removes the entry', async () => {
    const { file, store, dir } = await stored();
    // Another valid table in place of gen's, its size and sha256 written into the manifest.
    const { bytes } = encodeTable({
      columns: [{ name: 'v', type: 'INT32', data: Int32Array.from([9, 9, 9, 9, 9, 9]) }],
    });
    writeFileSync(join(dir('g'), 'values.parquet'), bytes);
    forge(dir('g'), (m) => {
      m.outputs[0].bytes = bytes.byteLength;
      m.outputs[0].sha256 = createHash('sha256').update(bytes).digest('hex');
    });
    const { code, doc } = await verify(file, store, '--all', '--repair');
    expect(code).toBe(1);
    const g = doc.runs.find((r) => r.id === 'g');
    expect(g?.status).toBe('corrupt');
    expect(g?.problems[0].file).toBe('values.parquet');
    expect(g?.problems[0].message).toMatch(/^content hash [0-9a-f]{12} from the file, manifest says [0-9a-f]{12}$/);
    expect(doc.repaired?.map((r) => r.id)).toEqual(['g']);
    const again = await cli(['run', file, '--store', store, '--json']);
    expect(statuses(again)).toEqual({ g: 'ran', s: 'cached', t: 'cached' });
    expect((await verify(file, store)).code).toBe(0);
  });

  it('gc removes an entry whose manifest contradicts itself', async () => {
    const { store, dir } = await stored();
    forge(dir('t'), (m) => (m.outputs[0].content_hash = '0'.repeat(64)));
    const gc = await cli(['gc', '--store', store, '--json']);
    const removed = (JSON.parse(gc.stdout) as { removed: { kind: string; stage?: string; why: string }[] }).removed;
    expect(removed).toEqual([
      expect.objectContaining({
        kind: 'damaged',
        stage: 'sum',
        why: 'corrupt: manifest.json (sum.json: content hash is not its sha256)',
      }),
    ]);
  });
});

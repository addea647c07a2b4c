/**
 * Python reads the store: every Parquet file of the smoke pipeline read with pandas (pyarrow),
 * polars and DuckDB, in the virtual environment `.venv/` (`python/requirements-test.txt`), agrees
 * with `grokpipe show --json` (rows, columns, types, first rows, the footer's content hash = the
 * manifest's); and every Python snippet of docs/python.md runs as written, from a folder holding
 * the smoke pipeline and its store, with `npx grokpipe` running this checkout's CLI (among them
 * the model exported with `grokpipe export --format hf`, loaded with transformers and
 * TransformerLens).
 *
 * Skipped, with the reason, where `.venv/` or its packages are missing; with
 * `GROKPIPE_REQUIRE_PYTHON=1` (as `.ci/run` sets) it fails instead.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinStages } from '../src/stages/index.js';
import { encodeTable } from '../src/table/parquet.js';
import type { TableHead } from '../src/engine/terminal/show.js';
import type { Manifest } from '../src/engine/cache/manifest.js';
import { cli, tempDir } from './fixtures/engine-harness.js';
import { sourceCliCommand } from './fixtures/source-cli.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const LIBRARIES = ['pandas', 'polars', 'duckdb'] as const;
const REQUIRE = process.env.GROKPIPE_REQUIRE_PYTHON === '1';

/** Why the Python tests cannot run here, or null when they can. */
function missingPython(): string | null {
  const setup = 'python3 -m venv .venv && .venv/bin/pip install -r python/requirements-test.txt';
  if (!existsSync(PYTHON)) return `${PYTHON} not found (${setup})`;
  const probe = spawnSync(
    PYTHON,
    ['-c', 'import pandas, pyarrow, polars, duckdb, torch, transformers, transformer_lens'],
    { encoding: 'utf8' },
  );
  if (probe.status !== 0)
    return `.venv cannot import pandas, pyarrow, polars, duckdb, torch, transformers and transformer_lens (${setup}): ${probe.stderr.trim()}`;
  return null;
}
const missing = missingPython();
if (missing && !REQUIRE)
  console.warn(`python-readers: skipped (set GROKPIPE_REQUIRE_PYTHON=1 to fail instead): ${missing}`);

/** The smoke pipeline's stage ids, in its order. */
const STAGE_IDS = ['kb', 'facts', 'tokens', 'model', 'scores', 'report'];
/** Rows of each table compared. */
const HEAD_ROWS = 3;

/** `grokpipe show --json`. */
interface Shown {
  dir: string;
  manifest: Manifest;
  tables: TableHead[];
}

/** What one library read of one file (test/fixtures/read_tables.py). */
interface Read {
  rows: number;
  columns: string[];
  types: string[];
  head: Record<string, unknown>[];
  content_hash: string;
  /** NULLs per column (pandas only). */
  nulls?: number[];
}

/** Each library's name for grokpipe's column types (docs/python.md, "Column types"). */
const TYPE_NAMES: Record<string, Record<(typeof LIBRARIES)[number], string>> = {
  INT32: { pandas: 'int32', polars: 'Int32', duckdb: 'INTEGER' },
  DOUBLE: { pandas: 'float64', polars: 'Float64', duckdb: 'DOUBLE' },
  FLOAT: { pandas: 'float32', polars: 'Float32', duckdb: 'FLOAT' },
  STRING: { pandas: 'str', polars: 'String', duckdb: 'VARCHAR' },
  BOOLEAN: { pandas: 'bool', polars: 'Boolean', duckdb: 'BOOLEAN' },
};

/** The ```python blocks of a Markdown text, in order. */
function pythonBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```python\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

describe.skipIf(missing !== null && !REQUIRE)('Python reads the store (pandas, polars, DuckDB)', () => {
  let dir: string;
  const shown: Record<string, Shown> = {};

  beforeAll(async () => {
    if (missing) throw new Error(`GROKPIPE_REQUIRE_PYTHON=1 but ${missing}`);
    // the smoke pipeline and its store, laid out as in a project: pipelines/ and artifacts/
    dir = tempDir('gp-python-');
    mkdirSync(join(dir, 'pipelines'));
    copyFileSync(join(ROOT, 'pipelines', 'smoke.yaml'), join(dir, 'pipelines', 'smoke.yaml'));
    const file = join(dir, 'pipelines', 'smoke.yaml');
    const store = join(dir, 'artifacts');
    const run = await cli(['run', file, '--store', store, '--jobs', '1', '--json'], { stages: builtinStages });
    expect(run.code, run.stderr).toBe(0);
    for (const id of STAGE_IDS) {
      const res = await cli(['show', id, '--file', file, '--store', store, '--json', '--rows', String(HEAD_ROWS)], {
        stages: builtinStages,
      });
      expect(res.code, res.stderr).toBe(0);
      shown[id] = JSON.parse(res.stdout) as Shown;
    }
  });

  it('every Parquet file of the smoke pipeline, read by each library, agrees with grokpipe show --json', async () => {
    const files = STAGE_IDS.flatMap((id) =>
      readdirSync(shown[id].dir)
        .filter((f) => f.endsWith('.parquet'))
        .sort()
        .map((name) => ({ id, name, path: join(shown[id].dir, name) })),
    );
    // every table show lists is a Parquet file in the folder, and the other way round
    for (const id of STAGE_IDS)
      expect(
        files.filter((f) => f.id === id).map((f) => f.name),
        id,
      ).toEqual(shown[id].tables.map((t) => t.name).sort());
    expect(files.length).toBe(13);

    const script = join(ROOT, 'test', 'fixtures', 'read_tables.py');
    const res = await execa(PYTHON, [script, String(HEAD_ROWS), ...files.map((f) => f.path)], { reject: false });
    expect(res.exitCode, res.stderr).toBe(0);
    const read = JSON.parse(res.stdout) as Record<string, Record<(typeof LIBRARIES)[number], Read>>;

    let compared = 0;
    for (const f of files) {
      const table = shown[f.id].tables.find((t) => t.name === f.name)!;
      const output = shown[f.id].manifest.outputs.find((o) => o.name === f.name)!;
      expect(table.error, f.path).toBeUndefined();
      expect(output.kind, f.path).toBe('table');
      for (const lib of LIBRARIES) {
        const got = read[f.path][lib];
        const where = `${f.id}/${f.name} (${lib})`;
        expect(got.rows, where).toBe(table.rows);
        expect(got.columns, where).toEqual(table.columns.map((c) => c.name));
        // pandas reads an INT32 column holding a NULL (a threshold never reached) as float64 with NaN
        const expected = table.columns.map((c, i) =>
          lib === 'pandas' && c.type === 'INT32' && (got.nulls?.[i] ?? 0) > 0 ? 'float64' : TYPE_NAMES[c.type][lib],
        );
        expect(got.types, where).toEqual(expected);
        // show writes NaN as null (JSON.stringify), as read_tables.py does
        expect(got.head, where).toEqual(JSON.parse(JSON.stringify(table.head)));
        expect(got.content_hash, where).toBe(output.content_hash);
        compared++;
      }
    }
    expect(compared).toBe(13 * LIBRARIES.length);
    // FLOAT appears in no smoke table: one file with every column type grokpipe writes
    const types = join(dir, 'types.parquet');
    writeFileSync(
      types,
      encodeTable({
        columns: [
          { name: 'i', type: 'INT32', data: Int32Array.from([-1, 7]) },
          { name: 'd', type: 'DOUBLE', data: Float64Array.from([0.1, Number.NaN]) },
          { name: 'f', type: 'FLOAT', data: Float32Array.from([1.5, -2]) },
          { name: 's', type: 'STRING', data: ['a', 'é'] },
          { name: 'b', type: 'BOOLEAN', data: [true, false] },
        ],
      }).bytes,
    );
    const typed = await execa(PYTHON, [script, '2', types], { reject: false });
    expect(typed.exitCode, typed.stderr).toBe(0);
    for (const lib of LIBRARIES) {
      const got = (JSON.parse(typed.stdout) as Record<string, Record<string, Read>>)[types][lib];
      expect(got.types, lib).toEqual(['INT32', 'DOUBLE', 'FLOAT', 'STRING', 'BOOLEAN'].map((t) => TYPE_NAMES[t][lib]));
      expect(got.head, lib).toEqual([
        { i: -1, d: 0.1, f: 1.5, s: 'a', b: true },
        { i: 7, d: null, f: -2, s: 'é', b: false },
      ]);
    }
    // a few values, spelled out: the smoke model trains 40 steps, evaluated every 10
    const curve = read[join(shown.model.dir, 'curve.parquet')];
    for (const lib of LIBRARIES) expect(curve[lib].head.map((r) => r.step)).toEqual([0, 0, 0]);
    expect(shown.model.manifest.params.max_steps).toBe(40);
  });

  it("docs/python.md: every Python snippet runs as written, on the smoke pipeline's store", async () => {
    const blocks = pythonBlocks(readFileSync(join(ROOT, 'docs', 'python.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    // `npx grokpipe ...` runs this checkout's CLI from source
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    writeFileSync(
      join(bin, 'npx'),
      `#!/bin/sh\n[ "$1" = grokpipe ] || { echo "test npx: only 'npx grokpipe' is supported" >&2; exit 127; }\nshift\nexec ${sourceCliCommand().map(quote).join(' ')} "$@"\n`,
    );
    chmodSync(join(bin, 'npx'), 0o755);
    const env = { PATH: `${bin}:${process.env.PATH ?? ''}` };
    const outputs: string[] = [];
    for (const [i, code] of blocks.entries()) {
      const res = await execa(PYTHON, ['-c', code], { cwd: dir, env, reject: false });
      expect(res.exitCode, `snippet ${i + 1}:\n${code}\n${res.stderr}`).toBe(0);
      outputs.push(res.stdout);
    }
    const all = outputs.join('\n');
    // what the snippets print matches show --json: the folders, a row count, the model's max_steps
    const rel = (id: string) => join('artifacts', shown[id].manifest.stage, shown[id].manifest.key);
    expect(outputs[0]).toContain(rel('model'));
    expect(outputs[0].split('\n')[1]).toBe('40');
    for (const id of STAGE_IDS) expect(all).toContain(rel(id));
    const predictions = shown.scores.tables.find((t) => t.name === 'predictions.parquet')!;
    expect(all).toContain(`'predictions.parquet': (${predictions.rows}, ${predictions.columns.length})`);
    // the exported model (the last three snippets): transformers predicts as evaluate did, and
    // TransformerLens' last logit-lens row and answer are the token transformers generated
    const [scored, agreement, lens] = outputs.slice(-3).map((o) => o.trim().split('\n'));
    expect(scored[0]).toMatch(/^exported train\/[0-9a-f]{12} \(gpt2\) to .*exported\/smoke-model: config.json, /);
    expect(scored[1]).toMatch(/^tensor\(\[\[\d+, +1, +\d+, +2, +\d+\]\]\)$/);
    expect(agreement[0]).toBe('1.0');
    const answer = scored.at(-1)!;
    expect(answer).toMatch(/^<attr_\d+_(lt|eq|gt)>$/);
    expect(lens.at(-1)).toBe(`['${answer}']`);
    expect(lens.at(-2)).toBe(`final_post ['${answer}']`);
  });
});

/**
 * A small stand-in for the engine, for the data stages' tests and benchmark: fills params from a
 * stage's schema (ajv, defaults), runs the stage with a `StageContext` writing into a folder, and
 * hands the result on as an `InputArtifact` to the next stage.
 *
 * Two storage modes: `parquet` encodes every table (`encodeTable`) and writes it to the folder,
 * reading it back with verification as the engine would; `memory` keeps tables as they are (to
 * time the stages without Parquet I/O).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import type { InputArtifact, Json, StageContext, StageDefinition } from '../src/engine/stage.js';
import { encodeTable, readTable } from '../src/table/parquet.js';
import type { Table } from '../src/table/table.js';
import { tableHash } from '../src/table/table.js';

/** Where tables go: Parquet files in the folder, or kept in memory. */
export type Storage = 'parquet' | 'memory';

/** A finished fake stage run. */
export interface FakeRun extends InputArtifact {
  /** Logical content hash of each table written, by file name. */
  readonly hashes: Readonly<Record<string, string>>;
  /** Tables as written (both storage modes). */
  readonly tables: Readonly<Record<string, Table>>;
  /** Values passed to `ctx.record`. */
  readonly records: Readonly<Record<string, Json>>;
}

/**
 * Validates `params` against `def.schema` with defaults filled in (as the engine does).
 * @throws Error listing the schema errors.
 */
export function fillParams<P>(def: StageDefinition<P>, params: Record<string, Json> = {}): P {
  const ajv = new Ajv({ useDefaults: true, strict: true });
  const validate = ajv.compile(def.schema);
  const copy = structuredClone(params);
  if (!validate(copy)) throw new Error(`${def.name}: ${ajv.errorsText(validate.errors)}`);
  return copy as P;
}

/**
 * Runs `def` with `params` (defaults filled) on `inputs`, writing into a fresh temporary folder.
 * @param extra context members to set or replace (`checkpointDir`, `signal`, `progress`...).
 * @throws whatever the stage throws, or Error on invalid params.
 */
export async function runFake<P>(
  def: StageDefinition<P>,
  params: Record<string, Json>,
  inputs: readonly InputArtifact[] = [],
  storage: Storage = 'parquet',
  extra: Partial<StageContext<P>> = {},
): Promise<FakeRun> {
  const { ctx, finish } = fakeContext(def, params, inputs, storage, extra);
  await def.run(ctx);
  return finish();
}

/**
 * The context `runFake` gives `def` (writing into a fresh temporary folder), without running it,
 * and `finish` to hand the outputs on once a run (or a group run) has written them.
 * @throws Error on invalid params.
 */
export function fakeContext<P>(
  def: StageDefinition<P>,
  params: Record<string, Json>,
  inputs: readonly InputArtifact[] = [],
  storage: Storage = 'parquet',
  extra: Partial<StageContext<P>> = {},
): { ctx: StageContext<P>; finish: () => FakeRun } {
  const filled = fillParams(def, params);
  const outDir = mkdtempSync(join(tmpdir(), `gp-${def.name}-`));
  mkdirSync(outDir, { recursive: true });
  const hashes: Record<string, string> = {};
  const tables: Record<string, Table> = {};
  const records: Record<string, Json> = {};
  const files: string[] = [];
  const controller = new AbortController();
  const ctx: StageContext<P> = {
    params: filled,
    inputs,
    input(stage) {
      const found = inputs.filter((i) => i.stage === stage);
      if (found.length !== 1) throw new Error(`expected one input of stage ${stage}, found ${found.length}`);
      return found[0];
    },
    outDir,
    async writeTable(name, table) {
      tables[name] = table;
      if (storage === 'parquet') {
        const { bytes, contentHash } = encodeTable(table);
        writeFileSync(join(outDir, name), bytes);
        hashes[name] = contentHash;
      } else {
        hashes[name] = tableHash(table);
      }
      files.push(name);
    },
    async writeFile(name, bytes) {
      mkdirSync(dirname(join(outDir, name)), { recursive: true });
      writeFileSync(join(outDir, name), bytes);
      files.push(name);
    },
    record(key, value) {
      records[key] = value;
    },
    progress() {},
    log() {},
    options: {},
    signal: controller.signal,
    ...extra,
  };
  const finish = (): FakeRun => ({
    stage: def.name,
    id: def.name,
    key: def.name,
    matrix: {},
    params: filled as Record<string, Json>,
    files,
    hashes,
    tables,
    records,
    path(file) {
      if (!files.includes(file)) throw new Error(`${file} is not an output of ${def.name}`);
      return join(outDir, file);
    },
    async readTable(file, columns) {
      if (!files.includes(file)) throw new Error(`${file} is not an output of ${def.name}`);
      if (storage === 'memory') {
        const t = tables[file];
        return columns ? { columns: columns.map((c) => t.columns.find((col) => col.name === c)!) } : t;
      }
      return readTable(join(outDir, file), { columns });
    },
  });
  return { ctx, finish };
}

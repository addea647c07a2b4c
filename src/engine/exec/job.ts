/**
 * A job: one stage run to execute, in a form that can be written to `job.json` and executed in
 * this process or in a worker process. `runJob` builds the `StageContext` and runs the stage.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { encodeTable, readTable } from '../../table/parquet.js';
import type { Table } from '../../table/table.js';
import { MANIFEST_FILE } from '../cache/manifest.js';
import type { InputArtifact, Json, ProgressUpdate, RunOptions, StageContext, StageDefinition } from '../stage.js';

/** An upstream artifact, as passed to a job. */
export interface JobInput {
  /** Run id of the producing run (`kb[entities=400]`). */
  readonly id: string;
  /** Stage type. */
  readonly stage: string;
  /** Its stage key. */
  readonly key: string;
  /** Its matrix values. */
  readonly matrix: Readonly<Record<string, Json>>;
  /** Its validated params. */
  readonly params: Readonly<Record<string, Json>>;
  /** Its output file names. */
  readonly files: readonly string[];
  /** Absolute path of its artifact folder. */
  readonly dir: string;
}

/** A stage run to execute (JSON-serializable). */
export interface JobSpec {
  /** Run id (`model[seed=1]`), for messages. */
  readonly runId: string;
  /** Stage type. */
  readonly stage: string;
  /** Stage code version the job was planned with. */
  readonly version: string;
  /** Validated params. */
  readonly params: Record<string, Json>;
  /** Inputs in `needs:` order. */
  readonly inputs: readonly JobInput[];
  /** Absolute temporary output folder. */
  readonly outDir: string;
  /** Invocation-wide options. */
  readonly options: RunOptions;
  /** Folder for resumable state that survives an interrupted run of this key (may not exist). */
  readonly checkpointDir?: string;
  /** A cached run of the same stage this run continues (`StageContext.continueFrom`), if any. */
  readonly continueFrom?: JobInput;
}

/** Where a running job reports progress and log lines. */
export interface JobEvents {
  progress(update: ProgressUpdate): void;
  log(message: string): void;
  /**
   * Called right before each output is written; may end the process (a worker whose driver is
   * gone exits there rather than write into a folder the next run may have cleaned).
   */
  beforeWrite?(): void;
}

/** An output written through the context, with its hashes. */
export interface WrittenOutput {
  readonly name: string;
  readonly kind: 'table' | 'file';
  /** Logical hash (table) or byte SHA-256 (file), hex. */
  readonly content_hash: string;
  /** Byte SHA-256, hex. */
  readonly sha256: string;
  /** Size (bytes). */
  readonly bytes: number;
}

/** What a finished job hands back to the engine. */
export interface JobOutcome {
  /** Values recorded with `ctx.record`. */
  readonly info: Record<string, Json>;
  /** Outputs written through `writeTable`/`writeFile` (files written otherwise are found later). */
  readonly written: readonly WrittenOutput[];
}

/**
 * Checks an output name: relative, inside the folder, not the manifest.
 * @throws Error naming the bad name.
 */
export function checkOutputName(name: string): string {
  const norm = normalize(name);
  if (
    name === '' ||
    isAbsolute(name) ||
    norm.startsWith('..') ||
    norm.split(sep).includes('..') ||
    name.includes('\\')
  ) {
    throw new Error(`invalid output name "${name}" (must be a relative path inside the output folder)`);
  }
  if (norm === MANIFEST_FILE) throw new Error(`"${MANIFEST_FILE}" is reserved for the engine`);
  return norm.split(sep).join('/');
}

/** Makes the `InputArtifact` view of a job input. */
export function inputArtifact(input: JobInput): InputArtifact {
  const path = (file: string): string => {
    if (!input.files.includes(file)) {
      throw new Error(`${input.id} has no output "${file}" (outputs: ${input.files.join(', ') || 'none'})`);
    }
    return join(input.dir, file);
  };
  return {
    stage: input.stage,
    id: input.id,
    key: input.key,
    matrix: input.matrix,
    params: input.params,
    files: input.files,
    path,
    readTable: (file: string, columns?: string[]): Promise<Table> => readTable(path(file), { columns }),
  };
}

/** A job's `StageContext`, with what the stage records and writes through it. */
export interface JobContext {
  readonly ctx: StageContext;
  /** The job's outcome so far: values recorded and outputs written through `ctx`. */
  outcome(): JobOutcome;
}

/**
 * Builds the `StageContext` of `job`: its params and inputs, writes into `job.outDir` (output
 * names checked, `events.beforeWrite` called first), `record` into the outcome's `info`.
 */
export function jobContext(job: JobSpec, events: JobEvents, signal: AbortSignal): JobContext {
  const info: Record<string, Json> = {};
  const written = new Map<string, WrittenOutput>();
  const inputs = job.inputs.map(inputArtifact);
  const put = async (name: string, bytes: Uint8Array, kind: 'table' | 'file', logical?: string): Promise<void> => {
    const rel = checkOutputName(name);
    events.beforeWrite?.();
    const file = join(job.outDir, rel);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, bytes);
    const sha = createHash('sha256').update(bytes).digest('hex');
    written.set(rel, { name: rel, kind, content_hash: logical ?? sha, sha256: sha, bytes: bytes.byteLength });
  };
  const ctx: StageContext = {
    params: job.params,
    inputs,
    input(stage: string): InputArtifact {
      const found = inputs.filter((i) => i.stage === stage);
      if (found.length !== 1) {
        throw new Error(`${job.runId}: expected exactly one input of stage ${stage}, found ${found.length}`);
      }
      return found[0];
    },
    outDir: job.outDir,
    async writeTable(name: string, table: Table): Promise<void> {
      const { bytes, contentHash } = encodeTable(table);
      await put(name, bytes, 'table', contentHash);
    },
    async writeFile(name: string, bytes: Uint8Array | string): Promise<void> {
      await put(name, typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes, 'file');
    },
    record(key: string, value: Json): void {
      info[key] = structuredClone(value);
    },
    progress: (update) => events.progress(update),
    log: (message) => events.log(message),
    options: job.options,
    signal,
    ...(job.checkpointDir !== undefined ? { checkpointDir: job.checkpointDir } : {}),
    ...(job.continueFrom !== undefined ? { continueFrom: inputArtifact(job.continueFrom) } : {}),
  };
  return { ctx, outcome: () => ({ info, written: [...written.values()] }) };
}

/**
 * Checks that `def` is at the code version `job` was planned for.
 * @throws Error naming both versions when they differ.
 */
export function checkVersion(def: { name: string; version: string }, job: { version: string }): void {
  if (def.version !== job.version) {
    throw new Error(`stage ${def.name} is at version ${def.version}, the job was planned for ${job.version}`);
  }
}

/**
 * Runs a stage for a job: builds its context, awaits `run`, and returns what it recorded.
 * @throws whatever the stage throws; Error when the stage's code version differs from the job's.
 */
export async function runJob(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  def: StageDefinition<any>,
  job: JobSpec,
  events: JobEvents,
  signal: AbortSignal,
): Promise<JobOutcome> {
  checkVersion(def, job);
  const { ctx, outcome } = jobContext(job, events, signal);
  await def.run(ctx);
  signal.throwIfAborted();
  return outcome();
}

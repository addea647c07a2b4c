/**
 * The contract between the engine and a stage.
 *
 * The engine knows nothing about grokking: a stage registers a name, a JSON Schema for its
 * `with:` params, a code version and a `run` function. A stage knows nothing about caching: it
 * reads its inputs and writes its outputs through the `StageContext` it is given (docs/design.md §1).
 */
import type { Table } from '../table/table.js';

/** A JSON value, as found in validated params. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Live progress reported by a long stage (train). All fields optional but `step`/`total`. */
export interface ProgressUpdate {
  /** Current optimizer step (steps). */
  step: number;
  /** Total optimizer steps planned (steps). */
  total: number;
  /** Named scalars to show beside the step, e.g. `{ loss: 0.41, id: 0.93, ood: 0.12 }`. */
  metrics?: Record<string, number>;
}

/** A completed upstream artifact, as a stage sees it. */
export interface InputArtifact {
  /** Stage type that produced it (`generate`, `split`, ...). */
  readonly stage: string;
  /** Stage id in the pipeline file (`kb`, `facts`, ...). */
  readonly id: string;
  /** Cache key of the producing stage run (hex). */
  readonly key: string;
  /** Matrix values of the run this artifact belongs to (empty outside a sweep). */
  readonly matrix: Readonly<Record<string, Json>>;
  /** Validated params of the producing stage run (defaults filled in). */
  readonly params: Readonly<Record<string, Json>>;
  /** Names of its output files (`kb.parquet`, `weights.safetensors`, ...). */
  readonly files: readonly string[];
  /** Absolute path of one of its output files. @throws Error when the file is not an output. */
  path(file: string): string;
  /**
   * Reads one of its Parquet outputs, verifying the content hash when all columns are read.
   * @throws CorruptTableError when the file is damaged.
   */
  readTable(file: string, columns?: string[]): Promise<Table>;
}

/** What a stage run gets from the engine. */
export interface StageContext<P = Record<string, Json>> {
  /** Validated params (the stage's `with:`, defaults filled in). */
  readonly params: P;
  /** Upstream artifacts, in `needs:` order (for `across: matrix`, one per run, in matrix order). */
  readonly inputs: readonly InputArtifact[];
  /** The single input of stage type `stage`. @throws Error when there is none or more than one. */
  input(stage: string): InputArtifact;
  /** Temporary output folder (absolute); renamed into the store only when `run` resolves. */
  readonly outDir: string;
  /** Writes a table as `<outDir>/<name>` (Parquet, content hash in the footer). */
  writeTable(name: string, table: Table): Promise<void>;
  /** Writes raw bytes (weights, plots, JSON) as `<outDir>/<name>`. */
  writeFile(name: string, bytes: Uint8Array | string): Promise<void>;
  /**
   * Records a value in the manifest's `info` (e.g. `backend`, `steps_per_second`). `warnings` (a list
   * of strings: something the user asked for that the stage could not give) are also printed after
   * the run's table.
   */
  record(key: string, value: Json): void;
  /** Reports live progress (drives the progress display; cheap to call every step). */
  progress(update: ProgressUpdate): void;
  /** Logs one line of human-readable status. */
  log(message: string): void;
  /** Options of the whole invocation that are not params (e.g. the requested TF.js backend). */
  readonly options: Readonly<RunOptions>;
  /** Aborted when the user interrupts the run; long stages should stop promptly. */
  readonly signal: AbortSignal;
  /**
   * A folder that survives an interrupted run of this same key (e.g. `<store>/.checkpoints/<key>`),
   * for resumable state such as training checkpoints; removed after success. It may not exist yet
   * (the stage creates it). Absent when the engine offers none: the stage then does not checkpoint.
   * A file being written there is named `<name>.tmp-<pid>` (the writing process): the engine
   * removes those of dead processes (`temporaries.ts`).
   */
  readonly checkpointDir?: string;
  /**
   * A cached run of this same stage, with the same inputs, that this run may continue instead of
   * starting over (prefix reuse): the engine hands it over only when the stage's `continues` said
   * so of its params, after checking its files' bytes. Absent otherwise. The outputs must come out
   * exactly as without it. Its `matrix` is empty (it may have been computed by any pipeline).
   */
  readonly continueFrom?: InputArtifact;
}

/** Invocation-wide options passed to every stage; they are not part of any key. */
export interface RunOptions {
  /**
   * Requested compute backend, by a name the stages that do numeric work understand (grokpipe's
   * stages: `auto` or a TF.js backend, as listed in `models/backend-names.ts`). Opaque to the
   * engine: it hands it to every stage unchanged and records it in each manifest's `environment`.
   * Whoever builds the options validates it (the CLI's `--backend`); a stage rejects a name it
   * does not know. Default `auto`.
   */
  backend?: string;
  /** Number of threads a stage may use for numeric work. */
  threads?: number;
}

/** Params of every transitive upstream stage run, nearest first, for `StageDefinition.check`. */
export interface UpstreamParams {
  readonly stage: string;
  readonly params: Readonly<Record<string, Json>>;
}

/** Where a run can continue a cached run of its stage (`StageDefinition.continues`). */
export interface Continuation {
  /** How far along the cached run is (e.g. its steps); the furthest candidate is chosen. */
  readonly progress: number;
  /** Where it stands, in words, after `continued from <key>` (e.g. `at step 3000`). */
  readonly point: string;
}

/** A stage type. `P` is the type of its validated params. */
export interface StageDefinition<P = Record<string, Json>> {
  /** Name used in `uses:`. */
  readonly name: string;
  /** Code version: bump when the stage's outputs for the same inputs and params change. */
  readonly version: string;
  /** One-line description for `grokpipe` help and docs. */
  readonly description: string;
  /** JSON Schema of `with:` (ajv, draft-07); `default`s are filled in before hashing. */
  readonly schema: object;
  /**
   * Semantic checks beyond the schema that need several fields, or the params of upstream stage
   * runs (e.g. `phi` against the pool that `generate`'s `entities` allows). Returns problems as
   * `{ path, message }` with `path` a JSON pointer into `with` (e.g. `/phi`). Runs before anything
   * is computed. Optional.
   */
  check?(params: P, upstream: readonly UpstreamParams[]): { path: string; message: string }[];
  /**
   * Optional: prefix reuse. Says whether a run with `params` can continue from a cached run of this
   * stage with the same code version and the same inputs whose params were `cached`, producing
   * exactly the outputs it would produce from scratch (e.g. a longer training run continuing a
   * shorter one). Returns how far along the cached run is, in the stage's own units (the engine
   * picks the candidate with the largest `progress`, the newest among equals), and where it stands
   * in words (`at step 3000`, printed as `continued from <key> at step 3000`); undefined when it
   * cannot. Pure; the engine then gives the chosen run as `ctx.continueFrom`.
   */
  continues?(params: P, cached: Readonly<Record<string, Json>>): Continuation | undefined;
  /** Computes the outputs from `ctx.inputs` and `ctx.params`. Throws to fail the stage. */
  run(ctx: StageContext<P>): Promise<void>;
  /** Optional: runs of this stage with equal group keys may execute together in one job. */
  readonly group?: {
    /** Equal strings may share a job; undefined: this run always runs alone. Pure function of
     *  the params and the inputs' params/keys; never part of any cache key. */
    key(params: P, inputs: readonly InputArtifact[]): string | undefined;
    /** Runs the members together; `ctxs[i]` is exactly the context `run` would get alone.
     *  Resolves to one entry per member: null (its outputs are written) or its Error (that
     *  member failed, the others commit). Rejects when the whole group failed. */
    run(ctxs: readonly StageContext<P>[]): Promise<(Error | null)[]>;
  };
}

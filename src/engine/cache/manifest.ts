/**
 * `manifest.json`: the record of a completed stage run, written last into its artifact folder.
 * A folder without a valid manifest is never treated as complete.
 */
import { hostname } from 'node:os';
import { currentEnvironment } from './environment.js';
import type { Environment } from './environment.js';
import type { GitRevision } from './git.js';
import { contentHash, hashJson } from './hash.js';
import type { KeyComponents, KeyInput } from './hash.js';
import { grokpipeVersion } from './version.js';
import type { Json, RunOptions } from '../stage.js';

/** Current manifest format. */
export const MANIFEST_FORMAT = 1;

/** File name of the manifest inside an artifact folder. */
export const MANIFEST_FILE = 'manifest.json';

/** One output file of an artifact. */
export interface ManifestOutput {
  /** File name relative to the artifact folder (`kb.parquet`, `plots/curve.svg`). */
  readonly name: string;
  /** `table` for Parquet tables (logical hash), `file` for anything else. */
  readonly kind: 'table' | 'file';
  /** Logical content hash of a table, byte SHA-256 of a file (hex). */
  readonly content_hash: string;
  /** Size (bytes). */
  readonly bytes: number;
  /** SHA-256 of the file's bytes (hex). */
  readonly sha256: string;
}

/** One input as recorded in a manifest. */
export interface ManifestInput {
  /** Run id of the producing stage run when it was recorded (`kb[entities=400]`). */
  readonly id: string;
  readonly stage: string;
  readonly key: string;
  readonly content_hash: string;
  readonly matrix: Readonly<Record<string, Json>>;
}

/** The manifest of a completed stage run. */
export interface Manifest {
  readonly format: number;
  /** Stage type. */
  readonly stage: string;
  /** Stage key (hex SHA-256); the folder's name. */
  readonly key: string;
  /** Content hash of the outputs (hex SHA-256). */
  readonly content_hash: string;
  /** The key's components, each separately. */
  readonly components: {
    readonly stage: string;
    readonly version: string;
    readonly params_hash: string;
    readonly inputs: readonly KeyInput[];
  };
  /** Validated params (defaults filled in). */
  readonly params: Record<string, Json>;
  readonly inputs: readonly ManifestInput[];
  readonly outputs: readonly ManifestOutput[];
  /** Values the stage recorded with `ctx.record` (e.g. `backend`, `summary`). */
  readonly info: Record<string, Json>;
  /** Versions: `grokpipe`, `node`, and any the stage recorded under `info.versions`. */
  readonly versions: Record<string, string>;
  /** ISO 8601 start and end, and duration (seconds). */
  readonly timings: { readonly started: string; readonly finished: string; readonly seconds: number };
  /** Host name of the machine that computed it. */
  readonly host: string;
  /**
   * Undeclared inputs that can change results (requested backend, threads, numeric environment
   * variables, platform); not part of the key. Absent in manifests written before it existed.
   */
  readonly environment?: Environment;
  /** The pipeline file and run id that first computed it. */
  readonly pipeline: { readonly file: string; readonly id: string };
  /**
   * The commit of the repository holding the pipeline file when it was computed, and whether the
   * work tree differed from it (`git.ts`); not part of the key. Absent outside a git repository
   * and in manifests written before it existed.
   */
  readonly git?: GitRevision;
}

/**
 * Parses manifest text, checking the fields the engine relies on.
 * @throws Error when the text is not a manifest of the current format.
 */
export function parseManifest(text: string): Manifest {
  const m = JSON.parse(text) as Partial<Manifest>;
  if (m === null || typeof m !== 'object') throw new Error('not an object');
  if (m.format !== MANIFEST_FORMAT) throw new Error(`unknown format ${String(m.format)}`);
  if (typeof m.key !== 'string' || typeof m.stage !== 'string' || typeof m.content_hash !== 'string') {
    throw new Error('missing key, stage or content_hash');
  }
  if (!Array.isArray(m.outputs) || !m.components || !Array.isArray(m.components.inputs)) {
    throw new Error('missing outputs or components');
  }
  for (const o of m.outputs) {
    if (typeof o?.name !== 'string' || typeof o.bytes !== 'number') throw new Error('malformed output entry');
  }
  return m as Manifest;
}

/** What the manifest of a stage run that just finished is made of. */
export interface FinishedRun {
  readonly key: string;
  /** Its key components (stage type, code version, params, inputs' content hashes). */
  readonly components: KeyComponents;
  /** Its inputs, in `needs:` order. */
  readonly inputs: readonly ManifestInput[];
  /** Its output files, with hashes. */
  readonly outputs: readonly ManifestOutput[];
  /** What the stage recorded with `ctx.record`. */
  readonly info: Record<string, Json>;
  /** When it started and finished, and the stage's time (seconds). */
  readonly timings: { readonly started: Date; readonly finished: Date; readonly seconds: number };
  /** The invocation's options (backend, threads), recorded in `environment`. */
  readonly options?: RunOptions;
  /** The pipeline file and run id that computed it. */
  readonly pipeline: { readonly file: string; readonly id: string };
  /** The git revision of the pipeline file's repository, when it is in one. */
  readonly git?: GitRevision;
}

/**
 * The manifest of a stage run that just finished on this host: its content hash (`hash.ts`), its
 * key components, the versions (`grokpipe`, `node`, and the string entries the stage recorded
 * under `info.versions`) and the environment (`environment.ts`).
 */
export function newManifest(r: FinishedRun): Manifest {
  const c = r.components;
  return {
    format: MANIFEST_FORMAT,
    stage: c.stage,
    key: r.key,
    content_hash: contentHash(r.outputs.map((o) => ({ name: o.name, hash: o.content_hash }))),
    components: { stage: c.stage, version: c.version, params_hash: hashJson(c.params), inputs: c.inputs },
    params: c.params,
    inputs: r.inputs,
    outputs: r.outputs,
    info: r.info,
    versions: { grokpipe: grokpipeVersion(), node: process.version, ...recordedVersions(r.info) },
    timings: {
      started: r.timings.started.toISOString(),
      finished: r.timings.finished.toISOString(),
      seconds: r.timings.seconds,
    },
    host: hostname(),
    environment: currentEnvironment(r.options),
    pipeline: r.pipeline,
    ...(r.git ? { git: { commit: r.git.commit, dirty: r.git.dirty } } : {}),
  };
}

/** String-valued entries of `info.versions`, if the stage recorded any. */
function recordedVersions(info: Record<string, Json>): Record<string, string> {
  const v = info.versions;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

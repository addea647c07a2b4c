/**
 * The runner's shared state and records: what one `runPipeline` call holds (`Invocation`), a run
 * that must be computed (`Pending`), the record of each run's outcome (`RunRecord`) and the small
 * functions that make and report records. `runner.ts` schedules, `runner-execute.ts` executes and
 * commits; both build on this module.
 */
import type { GitRevision } from './cache/git.js';
import { ByteCheckCache } from './cache/integrity.js';
import type { KeyComponents } from './cache/hash.js';
import type { Manifest } from './cache/manifest.js';
import type { Store } from './cache/store.js';
import type { Executor } from './exec/executor.js';
import { createLimiter } from './exec/limit.js';
import type { Limiter } from './exec/limit.js';
import type { Explanation, RootCause } from './explain/cause.js';
import type { GroupingOptions } from './gather.js';
import type { StageRun } from './pipeline/expand.js';
import type { RunOptions } from './stage.js';
import { silentReporter } from './terminal/progress.js';
import type { Reporter } from './terminal/progress.js';

/** Final state of a run. `skipped`: not run because an upstream run failed or the run was interrupted. */
export type RunStatus = 'cached' | 'ran' | 'failed' | 'skipped';

/** The outcome of one run. */
export interface RunRecord {
  readonly run: StageRun;
  /** Its key, or null when it never got one (skipped). */
  readonly key: string | null;
  readonly status: RunStatus;
  /** Wall time spent on it in this invocation (seconds): lookup for cached, stage time for ran. */
  readonly seconds: number;
  /** Why it ran, failed or was skipped (empty for cached). */
  readonly reason: string;
  /** Root causes of a run that ran (the run itself when it had reasons of its own). */
  readonly roots?: readonly RootCause[];
  /** Artifact folder (cached or ran). */
  readonly dir?: string;
  /** Manifest (cached or ran). */
  readonly manifest?: Manifest;
  /** Error message of a failed run. */
  readonly error?: string;
  /** Run id of the failed run at the root of a skip. */
  readonly failedRoot?: string;
  /** Members of the group job it ran (or failed) in, itself included; absent when it ran alone. */
  readonly group?: number;
}

/** Options of `runPipeline`. */
export interface RunnerOptions {
  readonly store: Store;
  readonly executor: Executor;
  /** Maximum stage runs executing at once (default 1); a group job counts as one. */
  readonly jobs?: number;
  /** Aborts the run (SIGINT). */
  readonly signal?: AbortSignal;
  readonly reporter?: Reporter;
  /** Invocation options given to every stage (backend, threads). */
  readonly options?: RunOptions;
  /** Pipeline file, recorded in manifests and in the store's usage records. */
  readonly pipelineFile: string;
  /** The pipeline file's git revision for manifests, asked for once a run commits (`cache/git.ts`). */
  readonly git?: () => Promise<GitRevision | undefined>;
  /** Staleness of inter-process locks (milliseconds, default 10,000). */
  readonly lockStaleMs?: number;
  /** Runs of stages with a `group` member execute in groups; absent: every run alone. */
  readonly grouping?: GroupingOptions;
}

/** What the steps of one `runPipeline` call share. */
export interface Invocation {
  readonly store: Store;
  readonly executor: Executor;
  readonly reporter: Reporter;
  readonly signal: AbortSignal;
  readonly opts: RunnerOptions;
  /** At most `jobs` stage runs (or group jobs) execute at once. */
  readonly limit: Limiter;
  /** Files whose bytes were already checked in this invocation. */
  readonly bytes: ByteCheckCache;
  /** The record of each run, settled when the run is done. */
  readonly results: Map<StageRun, Promise<RunRecord>>;
  /** Records that replace a cached run's record after its corrupt artifact was recomputed. */
  readonly repaired: Map<StageRun, Promise<RunRecord>>;
  /** Keys being computed in this invocation, so that a second run of a key waits and reuses. */
  readonly inflight: Map<string, Promise<unknown>>;
}

/** The state of a new `runPipeline` call. */
export function invocation(opts: RunnerOptions): Invocation {
  return {
    store: opts.store,
    executor: opts.executor,
    reporter: opts.reporter ?? silentReporter,
    signal: opts.signal ?? new AbortController().signal,
    opts,
    limit: createLimiter(opts.jobs ?? 1),
    bytes: new ByteCheckCache(),
    results: new Map(),
    repaired: new Map(),
    inflight: new Map(),
  };
}

/** A run whose artifact must be made to exist. */
export interface Pending {
  readonly run: StageRun;
  readonly key: string;
  readonly components: KeyComponents;
  /** Its inputs' records, checked sound, in `run.inputs` order. */
  readonly inputs: readonly RunRecord[];
  /** Why it must run. */
  readonly why: Explanation;
}

/** Reports a finished run's final event; returns the record. */
export function report(inv: Invocation, record: RunRecord): RunRecord {
  const id = record.run.id;
  if (record.status === 'cached') inv.reporter.event(id, { kind: 'cached' });
  else if (record.status === 'ran') inv.reporter.event(id, { kind: 'ran', seconds: record.seconds });
  else if (record.status === 'failed') inv.reporter.event(id, { kind: 'failed', error: record.error ?? record.reason });
  else inv.reporter.event(id, { kind: 'skipped', reason: record.reason });
  return record;
}

/** The record of a cached run; touches the entry (its folder time is its last use, for `gc`). */
export function cachedRecord(
  inv: Invocation,
  run: StageRun,
  hit: { key: string; dir: string; manifest: Manifest },
  seconds: number,
): RunRecord {
  void inv.store.touch(run.stage.name, hit.key);
  return { run, key: hit.key, status: 'cached', seconds, reason: '', dir: hit.dir, manifest: hit.manifest };
}

/** The record of a run skipped because its input `bad` failed or was skipped. */
export function skipFor(run: StageRun, bad: RunRecord): RunRecord {
  const root = bad.status === 'failed' ? bad.run.id : bad.failedRoot;
  const reason = root ? `upstream ${root} failed` : bad.reason;
  return { run, key: null, status: 'skipped', seconds: 0, reason, ...(root ? { failedRoot: root } : {}) };
}

/** The record of a run stopped by an interrupt before it executed. */
export function interrupted(run: StageRun, key: string | null): RunRecord {
  return { run, key, status: 'skipped', seconds: 0, reason: 'interrupted' };
}

/** The record of a run that failed outside its stage (a store or lock failure). */
export function failed(run: StageRun, err: unknown): RunRecord {
  const error = message(err);
  return { run, key: null, status: 'failed', seconds: 0, reason: error, error };
}

/** The message of anything thrown. */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Seconds since `t0` (a `performance.now()` reading). */
export function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}

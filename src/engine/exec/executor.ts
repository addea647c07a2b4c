/**
 * **The exec wing** (`engine/exec/`): where and how a stage run's computation happens, once the
 * runner has decided it must. A *job* (`job.ts`) is one stage run in a form that can be written to
 * `<tmp>.job.json`: stage, code version, params, input folders, output folder. An executor runs
 * jobs: in this process (`executor-inline.ts`), in worker processes (`executor-process.ts`, the
 * worker side in `worker.ts`, the CLI's hidden `exec-job` command), or as SLURM array tasks
 * (`executor-slurm.ts`, with `slurm.ts` for the SLURM commands and `slurm-script.ts` for the batch
 * script). `limit.ts` bounds how many run at once and `pid.ts` tells whether a process still runs.
 * The exec wing never decides what runs, and never writes the store.
 *
 * This module: the `Executor` interface, the messages a worker sends, and the few steps every
 * caller of an executor takes (build a job from finished inputs, execute it, list its outputs).
 */
import type { Manifest, ManifestOutput } from '../cache/manifest.js';
import type { StageRun } from '../pipeline/expand.js';
import type { ProgressUpdate, RunOptions } from '../stage.js';
import type { GroupJobSpec, MemberResult } from './group-job.js';
import type { JobEvents, JobInput, JobOutcome, JobSpec } from './job.js';

/** Runs one job at a time per call; calls may overlap (the runner bounds how many). */
export interface Executor {
  /** Short name for messages (`inline`, `process`). */
  readonly name: string;
  /**
   * Executes a job: the stage writes its outputs into `job.outDir`.
   * @throws the stage's error (failure), or `signal.reason` when aborted.
   */
  execute(job: JobSpec, events: JobEvents, signal: AbortSignal): Promise<JobOutcome>;
  /**
   * Executes a group job (`group-job.ts`) as one job: every member writes into its own `outDir`;
   * `events[i]` receives member `i`'s progress and log lines.
   * @returns one result per member, in order (a member's failure leaves the others' outcomes).
   * @throws Error when the whole group failed; `signal.reason` when aborted.
   */
  executeGroup(group: GroupJobSpec, events: readonly JobEvents[], signal: AbortSignal): Promise<MemberResult[]>;
}

/**
 * Messages a worker process sends to the engine over IPC. In a group job, `member` says whose
 * progress or log line it is (absent: every member's), and `group-done` ends it.
 */
export type WorkerMessage =
  | { readonly type: 'progress'; readonly update: ProgressUpdate; readonly member?: number }
  | { readonly type: 'log'; readonly message: string; readonly member?: number }
  | { readonly type: 'done'; readonly outcome: JobOutcome }
  | { readonly type: 'group-done'; readonly results: readonly MemberResult[] }
  | { readonly type: 'error'; readonly message: string; readonly stack?: string };

/** A finished upstream run, as the runner or a plan knows it: with its key, folder and manifest. */
export interface FinishedInput {
  readonly run: StageRun;
  readonly key: string | null;
  /** Artifact folder (present for a finished run). */
  readonly dir?: string;
  /** Manifest (present for a finished run). */
  readonly manifest?: Manifest;
}

/**
 * The job of `run`, reading `inputs` (its finished upstream runs, in `run.inputs` order) and
 * writing into `outDir`.
 * @param checkpointDir resumable state of the key (absent: the stage does not checkpoint).
 * @param continueFrom a cached run of the same stage to continue (`cache/continuation.ts`).
 */
export function jobOf(
  run: StageRun,
  inputs: readonly FinishedInput[],
  outDir: string,
  options: RunOptions,
  checkpointDir?: string,
  continueFrom?: JobInput,
): JobSpec {
  return {
    runId: run.id,
    stage: run.stage.name,
    version: run.stage.version,
    params: run.params,
    inputs: inputs.map(jobInput),
    outDir,
    options,
    ...(checkpointDir !== undefined ? { checkpointDir } : {}),
    ...(continueFrom !== undefined ? { continueFrom } : {}),
  };
}

/** A finished upstream run as a job reads it. */
function jobInput(r: FinishedInput): JobInput {
  const m = r.manifest as Manifest;
  return {
    id: r.run.id,
    stage: r.run.stage.name,
    key: r.key as string,
    matrix: r.run.matrix,
    params: m.params,
    files: m.outputs.map((o) => o.name),
    dir: r.dir as string,
  };
}

/**
 * Executes `job` on `executor`, then lists the outputs it left in `job.outDir` (sizes and hashes,
 * `cache/outputs.ts`).
 * @throws the executor's error; the signal's reason when aborted, even after the stage finished.
 */
export async function executeJob(
  executor: Executor,
  job: JobSpec,
  events: JobEvents,
  signal: AbortSignal,
): Promise<{ outcome: JobOutcome; outputs: ManifestOutput[] }> {
  const outcome = await executor.execute(job, events, signal);
  signal.throwIfAborted();
  // Loaded on first use (Parquet libraries): a fully cached run never needs them.
  const { collectOutputs } = await import('../cache/outputs.js');
  return { outcome, outputs: await collectOutputs(job.outDir, outcome.written) };
}

/** A member's result with its outputs listed, or why it failed. */
export type MemberOutputs =
  | { readonly ok: true; readonly outcome: JobOutcome; readonly outputs: ManifestOutput[] }
  | { readonly ok: false; readonly message: string };

/**
 * Executes a group job on `executor`, then lists each successful member's outputs (as
 * `executeJob` does; a member whose outputs cannot be listed fails alone).
 * @throws the executor's error (the whole group failed); the signal's reason when aborted.
 */
export async function executeGroupJob(
  executor: Executor,
  group: GroupJobSpec,
  events: readonly JobEvents[],
  signal: AbortSignal,
): Promise<MemberOutputs[]> {
  const results = await executor.executeGroup(group, events, signal);
  signal.throwIfAborted();
  const { collectOutputs } = await import('../cache/outputs.js');
  return Promise.all(
    results.map(async (r, i): Promise<MemberOutputs> => {
      if (!r.ok) return r;
      try {
        return { ...r, outputs: await collectOutputs(group.members[i].outDir, r.outcome.written) };
      } catch (err) {
        return { ok: false, message: (err as Error).message };
      }
    }),
  );
}

/**
 * Executors run jobs (stage runs) somewhere: in this process (`InlineExecutor`) or in worker
 * processes (`ProcessExecutor`). The runner decides what runs when; an executor only runs.
 */
import type { ProgressUpdate } from '../stage.js';
import type { JobEvents, JobOutcome, JobSpec } from './job.js';

/** Runs one job at a time per call; calls may overlap (the runner bounds how many). */
export interface Executor {
  /** Short name for messages (`inline`, `process`). */
  readonly name: string;
  /**
   * Executes a job: the stage writes its outputs into `job.outDir`.
   * @throws the stage's error (failure), or `signal.reason` when aborted.
   */
  execute(job: JobSpec, events: JobEvents, signal: AbortSignal): Promise<JobOutcome>;
}

/** Messages a worker process sends to the engine over IPC. */
export type WorkerMessage =
  | { readonly type: 'progress'; readonly update: ProgressUpdate }
  | { readonly type: 'log'; readonly message: string }
  | { readonly type: 'done'; readonly outcome: JobOutcome }
  | { readonly type: 'error'; readonly message: string; readonly stack?: string };

/**
 * The worker side of `ProcessExecutor`: `grokpipe exec-job <job.json>` runs one job and sends
 * progress, log lines and the outcome to the parent over IPC. SIGINT or SIGTERM abort the stage
 * (a training run saves a checkpoint); the process exits at most 5 s later. A lost parent (the
 * driver was killed) ends the worker at once: nothing it writes would be committed, and the next
 * run may already be cleaning up the driver's temporaries and resuming from its checkpoints.
 *
 * Without a parent (a SLURM array task, `executor-slurm.ts`), `outcomeFile` receives the outcome
 * (`WorkerResult`) and `progressFile` the latest progress update, both written atomically; log
 * lines go to stderr (the array task's log file).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { WorkerMessage } from './executor.js';
import type { StageRegistry } from '../registry.js';
import type { ProgressUpdate } from '../stage.js';
import type { JobOutcome, JobSpec } from './job.js';

/** Minimum interval between progress messages sent to the parent (milliseconds). */
const PROGRESS_INTERVAL_MS = 200;

/** Minimum interval between writes of the progress file (milliseconds). */
const PROGRESS_FILE_INTERVAL_MS = 1000;

/** What a worker without a parent writes to its outcome file. */
export type WorkerResult =
  | { readonly ok: true; readonly outcome: JobOutcome }
  | { readonly ok: false; readonly message: string; readonly stack?: string };

/** Where a worker without a parent process leaves its result. */
export interface WorkerFiles {
  /** Receives the `WorkerResult` (JSON), written atomically when the job ends. */
  readonly outcomeFile?: string;
  /** Receives the latest `ProgressUpdate` (JSON), written atomically at most once a second. */
  readonly progressFile?: string;
}

/** Writes `text` to `file` atomically (temporary file, then rename). Never throws. */
function writeAtomic(file: string, text: string): void {
  const part = `${file}.${process.pid}.part`;
  try {
    writeFileSync(part, text);
    renameSync(part, file);
  } catch (err) {
    console.error(`grokpipe: cannot write ${file}: ${(err as Error).message}`);
  }
}

/** The job in `file` and its stage type, or why there is none. */
function readJob(
  file: string,
  registry: StageRegistry,
): { job: JobSpec; def: NonNullable<ReturnType<StageRegistry['get']>> } | { error: string } {
  let job: JobSpec;
  try {
    job = JSON.parse(readFileSync(file, 'utf8')) as JobSpec;
  } catch (err) {
    return { error: `cannot read job ${file}: ${(err as Error).message}` };
  }
  const def = registry.get(job.stage);
  return def ? { job, def } : { error: `unknown stage type "${job.stage}"` };
}

/**
 * Ends this worker (exit 130) as soon as its driver is gone: at once when the IPC channel is
 * closed already (a driver killed while this worker was starting), on the channel's `disconnect`,
 * and whenever `exitIfOrphaned` finds another parent pid (a stage busy computing sees the
 * `disconnect` late; the parent's pid, read live, tells at once). Without IPC (a SLURM array task)
 * nothing is watched.
 * @returns `parentGone`, the `disconnect` listener (to remove when done), and `exitIfOrphaned`.
 */
function watchParent(): { parentGone: () => void; exitIfOrphaned: () => void } {
  const parentGone = (): void => process.exit(130);
  if (process.send !== undefined && !process.connected) parentGone();
  process.once('disconnect', parentGone);
  const parent = process.ppid;
  const exitIfOrphaned = (): void => {
    if (process.send !== undefined && process.ppid !== parent) parentGone();
  };
  return { parentGone, exitIfOrphaned };
}

/**
 * Executes the job in `file` with a stage from `registry`.
 * @returns the exit code: 0 when the stage succeeded, 1 when it failed, 130 when interrupted.
 */
export async function execJobFile(file: string, registry: StageRegistry, files: WorkerFiles = {}): Promise<number> {
  const { sendMessage } = await import('execa');
  let chain: Promise<void> = Promise.resolve();
  let lastProgressWrite = 0;
  const send = (m: WorkerMessage): Promise<void> => {
    if (files.outcomeFile && m.type === 'done')
      writeAtomic(files.outcomeFile, JSON.stringify({ ok: true, outcome: m.outcome } satisfies WorkerResult));
    if (files.outcomeFile && m.type === 'error')
      writeAtomic(
        files.outcomeFile,
        JSON.stringify({ ok: false, message: m.message, stack: m.stack } satisfies WorkerResult),
      );
    if (files.progressFile && m.type === 'progress') {
      const now = Date.now();
      if (now - lastProgressWrite >= PROGRESS_FILE_INTERVAL_MS || m.update.step >= m.update.total) {
        lastProgressWrite = now;
        writeAtomic(files.progressFile, JSON.stringify(m.update));
      }
    }
    if (!process.send) {
      if (m.type === 'log') console.error(m.message);
      if (m.type === 'error') console.error(m.stack ?? m.message);
      return chain;
    }
    chain = chain.then(() => sendMessage(m as never)).catch(() => undefined);
    return chain;
  };
  const controller = new AbortController();
  const stop = (): void => {
    if (controller.signal.aborted) return;
    controller.abort(new Error('interrupted'));
    setTimeout(() => process.exit(130), 5000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const { parentGone, exitIfOrphaned } = watchParent();
  const read = readJob(file, registry);
  if ('error' in read) {
    await send({ type: 'error', message: read.error });
    return 1;
  }
  const { job, def } = read;
  let lastProgress = 0;
  let pending: ProgressUpdate | undefined;
  const events = {
    progress(update: ProgressUpdate): void {
      exitIfOrphaned();
      const now = Date.now();
      if (now - lastProgress >= PROGRESS_INTERVAL_MS || update.step >= update.total) {
        lastProgress = now;
        pending = undefined;
        void send({ type: 'progress', update });
      } else {
        pending = update;
      }
    },
    log(message: string): void {
      void send({ type: 'log', message });
    },
    beforeWrite: exitIfOrphaned,
  };
  try {
    const { runJob } = await import('./job.js');
    const outcome = await runJob(def, job, events, controller.signal);
    if (pending) void send({ type: 'progress', update: pending });
    await send({ type: 'done', outcome });
    return 0;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    await send({ type: 'error', message: e.message, stack: e.stack });
    return controller.signal.aborted ? 130 : 1;
  } finally {
    process.off('disconnect', parentGone);
    if (process.connected) process.disconnect();
  }
}

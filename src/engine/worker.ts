/**
 * The worker side of `ProcessExecutor`: `grokpipe exec-task <task.json>` runs one task and sends
 * progress, log lines and the outcome to the parent over IPC. SIGINT or SIGTERM abort the stage
 * (a training run saves a checkpoint); the process exits at most 5 s later. A lost parent (the
 * driver was killed) ends the worker at once: nothing it writes would be committed, and the next
 * run may already be cleaning up the driver's temporaries and resuming from its checkpoints.
 *
 * Without a parent (a SLURM array task, `executor-slurm.ts`), `outcomeFile` receives the outcome
 * (`WorkerResult`) and `progressFile` the latest progress update, both written atomically; log
 * lines go to stderr (the task's log file).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { WorkerMessage } from './executor.js';
import type { StageRegistry } from './registry.js';
import type { ProgressUpdate } from './stage.js';
import type { TaskOutcome, TaskSpec } from './task.js';

/** Minimum interval between progress messages sent to the parent (milliseconds). */
const PROGRESS_INTERVAL_MS = 200;

/** Minimum interval between writes of the progress file (milliseconds). */
const PROGRESS_FILE_INTERVAL_MS = 1000;

/** What a worker without a parent writes to its outcome file. */
export type WorkerResult =
  | { readonly ok: true; readonly outcome: TaskOutcome }
  | { readonly ok: false; readonly message: string; readonly stack?: string };

/** Where a worker without a parent process leaves its result. */
export interface WorkerFiles {
  /** Receives the `WorkerResult` (JSON), written atomically when the task ends. */
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

/**
 * Executes the task in `file` with a stage from `registry`.
 * @returns the exit code: 0 when the stage succeeded, 1 when it failed, 130 when interrupted.
 */
export async function execTaskFile(file: string, registry: StageRegistry, files: WorkerFiles = {}): Promise<number> {
  const { sendMessage } = await import('execa');
  let chain: Promise<void> = Promise.resolve();
  let lastProgressWrite = 0;
  const send = (m: WorkerMessage): Promise<void> => {
    if (files.outcomeFile && m.type === 'done') writeAtomic(files.outcomeFile, JSON.stringify({ ok: true, outcome: m.outcome } satisfies WorkerResult));
    if (files.outcomeFile && m.type === 'error') writeAtomic(files.outcomeFile, JSON.stringify({ ok: false, message: m.message, stack: m.stack } satisfies WorkerResult));
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
  const parentGone = (): void => process.exit(130);
  // A driver killed while this worker was starting: the channel is closed already.
  if (process.send !== undefined && !process.connected) parentGone();
  process.once('disconnect', parentGone);
  // A stage busy computing sees the 'disconnect' late: the parent's pid, read live, tells at once.
  const parent = process.ppid;
  const orphaned = (): boolean => process.send !== undefined && process.ppid !== parent;
  let task: TaskSpec;
  try {
    task = JSON.parse(readFileSync(file, 'utf8')) as TaskSpec;
  } catch (err) {
    await send({ type: 'error', message: `cannot read task ${file}: ${(err as Error).message}` });
    return 1;
  }
  const def = registry.get(task.stage);
  if (!def) {
    await send({ type: 'error', message: `unknown stage type "${task.stage}"` });
    return 1;
  }
  let lastProgress = 0;
  let pending: ProgressUpdate | undefined;
  const events = {
    progress(update: ProgressUpdate): void {
      if (orphaned()) parentGone();
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
    beforeWrite(): void {
      if (orphaned()) parentGone();
    },
  };
  try {
    const { runTask } = await import('./task.js');
    const outcome = await runTask(def, task, events, controller.signal);
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

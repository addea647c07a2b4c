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
 *
 * A job file may hold a group job (`group-job.ts`): its members run together, their messages carry
 * the member's index, and the outcome is one result per member.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { WorkerMessage } from './executor.js';
import { isGroupJob } from './group-job.js';
import type { StageRegistry } from '../registry.js';
import type { ProgressUpdate } from '../stage.js';
import type { GroupJobSpec, MemberResult } from './group-job.js';
import type { JobEvents, JobOutcome, JobSpec } from './job.js';

/** Minimum interval between progress messages sent to the parent (milliseconds). */
const PROGRESS_INTERVAL_MS = 200;

/** Minimum interval between writes of the progress file (milliseconds). */
const PROGRESS_FILE_INTERVAL_MS = 1000;

/** What a worker without a parent writes to its outcome file. */
export type WorkerResult =
  | { readonly ok: true; readonly outcome: JobOutcome }
  | { readonly ok: true; readonly group: readonly MemberResult[] }
  | { readonly ok: false; readonly message: string; readonly stack?: string };

/** Where a worker without a parent process leaves its result. */
export interface WorkerFiles {
  /** Receives the `WorkerResult` (JSON), written atomically when the job ends. */
  readonly outcomeFile?: string;
  /**
   * Receives the latest `ProgressUpdate` (JSON), written atomically at most once a second; for a
   * group job, a list with each member's latest update (null before its first).
   */
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
): { job: JobSpec | GroupJobSpec; def: NonNullable<ReturnType<StageRegistry['get']>> } | { error: string } {
  let job: JobSpec | GroupJobSpec;
  try {
    job = JSON.parse(readFileSync(file, 'utf8')) as JobSpec | GroupJobSpec;
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
 * Sends a worker's messages: to the parent over IPC, or to the outcome and progress files (and
 * log lines to stderr). `ids`: the run ids of a group job's members (empty for one run's job),
 * which name the members' log lines on stderr.
 */
function messenger(files: WorkerFiles, ids: readonly string[]): (m: WorkerMessage) => Promise<void> {
  let chain: Promise<void> = Promise.resolve();
  let lastProgressWrite = 0;
  const latest: (ProgressUpdate | null)[] = ids.map(() => null);
  const sendMessage = import('execa').then((m) => m.sendMessage);
  const send = (m: WorkerMessage): Promise<void> => {
    const result: WorkerResult | undefined =
      m.type === 'done'
        ? { ok: true, outcome: m.outcome }
        : m.type === 'group-done'
          ? { ok: true, group: m.results }
          : m.type === 'error'
            ? { ok: false, message: m.message, stack: m.stack }
            : undefined;
    if (files.outcomeFile && result) writeAtomic(files.outcomeFile, JSON.stringify(result));
    if (files.progressFile && m.type === 'progress') {
      if (m.member !== undefined) latest[m.member] = m.update;
      const now = Date.now();
      if (now - lastProgressWrite >= PROGRESS_FILE_INTERVAL_MS || m.update.step >= m.update.total) {
        lastProgressWrite = now;
        writeAtomic(files.progressFile, JSON.stringify(m.member !== undefined ? latest : m.update));
      }
    }
    if (!process.send) {
      const who = m.type === 'log' && m.member !== undefined ? `[${ids[m.member]}] ` : '';
      if (m.type === 'log') console.error(`${who}${m.message}`);
      if (m.type === 'error') console.error(m.stack ?? m.message);
      return chain;
    }
    chain = chain.then(async () => (await sendMessage)(m as never)).catch(() => undefined);
    return chain;
  };
  return send;
}

/**
 * The events of one running job (member `member` of a group, or the job itself), sending progress
 * at most every `PROGRESS_INTERVAL_MS`; `flush` sends the last update held back.
 */
function throttledEvents(
  send: (m: WorkerMessage) => Promise<void>,
  exitIfOrphaned: () => void,
  member?: number,
): JobEvents & { flush(): void } {
  let lastProgress = 0;
  let pending: ProgressUpdate | undefined;
  const who = member !== undefined ? { member } : {};
  return {
    progress(update: ProgressUpdate): void {
      exitIfOrphaned();
      const now = Date.now();
      if (now - lastProgress >= PROGRESS_INTERVAL_MS || update.step >= update.total) {
        lastProgress = now;
        pending = undefined;
        void send({ type: 'progress', update, ...who });
      } else {
        pending = update;
      }
    },
    log(message: string): void {
      void send({ type: 'log', message, ...who });
    },
    beforeWrite: exitIfOrphaned,
    flush(): void {
      if (pending) void send({ type: 'progress', update: pending, ...who });
      pending = undefined;
    },
  };
}

/**
 * Executes the job (or group job) in `file` with a stage from `registry`.
 * @returns the exit code: 0 when the stage succeeded (for a group: every member), 1 when it failed
 *   (a member failed), 130 when interrupted.
 */
export async function execJobFile(file: string, registry: StageRegistry, files: WorkerFiles = {}): Promise<number> {
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
  const send = messenger(files, 'job' in read && isGroupJob(read.job) ? read.job.members.map((m) => m.runId) : []);
  try {
    if ('error' in read) {
      await send({ type: 'error', message: read.error });
      return 1;
    }
    const { job, def } = read;
    if (isGroupJob(job)) {
      const events = job.members.map((_, i) => throttledEvents(send, exitIfOrphaned, i));
      const { runGroupJob } = await import('./group-job.js');
      const results = await runGroupJob(def, job, events, controller.signal);
      for (const e of events) e.flush();
      // Without a parent (SLURM), the task's log says which members failed and why.
      if (!process.send)
        results.forEach((r, i) => r.ok || console.error(`[${job.members[i].runId}] failed: ${r.message}`));
      await send({ type: 'group-done', results });
      return results.every((r) => r.ok) ? 0 : 1;
    }
    const events = throttledEvents(send, exitIfOrphaned);
    const { runJob } = await import('./job.js');
    const outcome = await runJob(def, job, events, controller.signal);
    events.flush();
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

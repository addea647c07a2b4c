/**
 * Runs jobs as SLURM array tasks on a cluster that shares the artifact store. The runner hands
 * over ready stage runs one `execute` call at a time; the runs that arrive together (a *wave*: no
 * new one for `waveSeconds`) are submitted as one job array (`sbatch --parsable --array=0-N%K`)
 * whose array task `i` runs `grokpipe exec-job` on run `i`'s job file, writing its outputs into the
 * run's temporary folder in the store, its outcome and latest progress beside them
 * (`<store>/.slurm/`), and its log to `<store>/.slurm/<job>_<task>.log`. The runner then commits
 * the outputs atomically, exactly as with local worker processes. A group job (`group-job.ts`) is
 * one array task: its members run together on one node, each committed on its own.
 *
 * One loop polls `squeue` every `pollSeconds` for every submitted array. A task that left the
 * queue is finished: its outcome file says how; without one, `scontrol -o show job <job>_<task>`
 * gives the state for the error message. Aborting cancels the submitted tasks (`scancel`) and
 * waits (at most 15 s) for them to leave the queue.
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { jobFilePath } from '../cache/store.js';
import type { Executor } from './executor.js';
import { batchScript, sbatchArgs } from './slurm-script.js';
import { SlurmClient, isActiveState } from './slurm.js';
import type { ProgressUpdate } from '../stage.js';
import type { GroupJobSpec, MemberResult } from './group-job.js';
import type { JobEvents, JobOutcome, JobSpec } from './job.js';
import type { WorkerResult } from './worker.js';

/** Options of `SlurmExecutor`. */
export interface SlurmExecutorOptions {
  /** Worker command without arguments, e.g. `[node, '/path/bin/grokpipe.js', 'exec-job']`. */
  readonly command: readonly string[];
  /** Folder for batch scripts, outcomes and logs: `<store>/.slurm`. */
  readonly slurmDir: string;
  readonly partition?: string;
  /** Time limit per task, SLURM syntax (`4:00:00`). */
  readonly time?: string;
  /** GPUs per task. */
  readonly gpus?: number;
  /** CPUs per task. */
  readonly cpus?: number;
  /** Array tasks running at once per wave (`%K`); unlimited when absent. */
  readonly arrayLimit?: number;
  /** Interval between `squeue` polls (seconds, default 5). */
  readonly pollSeconds?: number;
  /** A wave is submitted once no new run arrived for this long (seconds, default 0.3). */
  readonly waveSeconds?: number;
  /** Job name (default `grokpipe`): `scancel --name grokpipe` cancels a dead driver's jobs. */
  readonly jobName?: string;
  /** The SLURM commands (tests pass one with another environment). */
  readonly client?: SlurmClient;
}

/** A successful worker's result. */
type Success = Extract<WorkerResult, { ok: true }>;

/** A job, or group job, waiting for, or in, SLURM. */
interface Item {
  /** Its events: the job's, or each member's of a group job (in member order). */
  readonly events: readonly JobEvents[];
  readonly signal: AbortSignal;
  readonly jobFile: string;
  readonly outcomeFile: string;
  readonly progressFile: string;
  readonly resolve: (o: Success) => void;
  readonly reject: (e: unknown) => void;
  /** `<job>_<index>` once submitted. */
  id?: string;
  /** SLURM job id of its array, once submitted. */
  slurmJob?: string;
  log?: string;
  state?: string;
  progress?: string;
  /** Polls that found the array task gone, COMPLETED, but its outcome file not (yet) visible. */
  missingPolls: number;
  cancelledAt?: number;
  settled: boolean;
}

/** Consecutive failed `squeue` calls after which every submitted array task fails. */
const MAX_QUEUE_FAILURES = 10;
/** Seconds to wait for cancelled array tasks to leave the queue. */
const CANCEL_WAIT_SECONDS = 15;

/** Executes jobs as SLURM job-array tasks. */
export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  private readonly client: SlurmClient;
  private wave: Item[] = [];
  private waveTimer?: NodeJS.Timeout;
  private waveStarted = 0;
  private readonly active = new Set<Item>();
  private polling = false;
  private queueFailures = 0;
  private waves = 0;
  private toCancel: string[] = [];
  /** Job ids submitted so far (for messages and tests). */
  readonly jobs: string[] = [];

  constructor(private readonly opts: SlurmExecutorOptions) {
    if (opts.command.length === 0) throw new Error('SlurmExecutor needs a command');
    this.client = opts.client ?? new SlurmClient();
  }

  /**
   * Queues the job for the next wave and waits until its array task has left the queue.
   * @throws Error with the stage's message and the log path when the stage failed, or with the
   *   SLURM state when it ended without an outcome (killed, timed out, cancelled by someone else);
   *   the signal's reason when aborted; SlurmError when sbatch or squeue keep failing.
   */
  async execute(job: JobSpec, events: JobEvents, signal: AbortSignal): Promise<JobOutcome> {
    const done = await this.submit(job, job.outDir, [events], signal);
    if (!('outcome' in done)) throw new Error(`array task of ${job.runId} answered a group's result`);
    return done.outcome;
  }

  /**
   * Queues the group job (written beside its first member's output folder) for the next wave, as
   * one array task, and waits until it has left the queue.
   * @returns one result per member; throws as `execute` does when the whole group failed.
   */
  async executeGroup(group: GroupJobSpec, events: readonly JobEvents[], signal: AbortSignal): Promise<MemberResult[]> {
    const done = await this.submit(group, group.members[0].outDir, events, signal);
    if (!('group' in done)) throw new Error(`array task of a group answered one run's result`);
    return [...done.group];
  }

  /** Writes `spec` to `jobFilePath(outDir)` and queues it for the next wave. */
  private async submit(
    spec: JobSpec | GroupJobSpec,
    outDir: string,
    events: readonly JobEvents[],
    signal: AbortSignal,
  ): Promise<Success> {
    signal.throwIfAborted();
    await mkdir(this.opts.slurmDir, { recursive: true });
    const name = basename(outDir);
    const jobFile = jobFilePath(outDir);
    await writeFile(jobFile, JSON.stringify(spec));
    return new Promise<Success>((resolve, reject) => {
      const item: Item = {
        events,
        signal,
        jobFile,
        outcomeFile: join(this.opts.slurmDir, `${name}.outcome.json`),
        progressFile: join(this.opts.slurmDir, `${name}.progress.json`),
        resolve,
        reject,
        missingPolls: 0,
        settled: false,
      };
      signal.addEventListener('abort', () => this.abort(item), { once: true });
      this.enqueue(item);
    });
  }

  private enqueue(item: Item): void {
    const now = Date.now();
    if (this.wave.length === 0) this.waveStarted = now;
    this.wave.push(item);
    clearTimeout(this.waveTimer);
    const quiet = (this.opts.waveSeconds ?? 0.3) * 1000;
    // Submit once no run arrived for `quiet`, and never later than 10 quiet periods after the first.
    const delay = Math.max(0, Math.min(quiet, this.waveStarted + 10 * quiet - now));
    this.waveTimer = setTimeout(() => void this.submitWave(), delay);
  }

  private settle(item: Item, result: { outcome: Success } | { error: unknown }): void {
    if (item.settled) return;
    item.settled = true;
    this.active.delete(item);
    rmSync(item.outcomeFile, { force: true });
    rmSync(item.progressFile, { force: true });
    if ('outcome' in result) item.resolve(result.outcome);
    else item.reject(result.error);
  }

  private async submitWave(): Promise<void> {
    const items = this.wave.filter((i) => !i.settled);
    this.wave = [];
    if (items.length === 0) return;
    const n = ++this.waves;
    const script = join(this.opts.slurmDir, `wave-${process.pid}-${n}.sh`);
    try {
      for (const i of items) rmSync(i.outcomeFile, { force: true });
      await writeFile(script, batchScript(this.opts.command, items), { mode: 0o755 });
      const job = await this.client.submit(
        script,
        sbatchArgs({
          count: items.length,
          arrayLimit: this.opts.arrayLimit,
          output: join(this.opts.slurmDir, '%A_%a.log'),
          jobName: this.opts.jobName,
          partition: this.opts.partition,
          time: this.opts.time,
          gpus: this.opts.gpus,
          cpus: this.opts.cpus,
        }),
      );
      this.jobs.push(job);
      items.forEach((item, index) => {
        item.slurmJob = job;
        item.id = `${job}_${index}`;
        item.log = join(this.opts.slurmDir, `${job}_${index}.log`);
        log(item, `submitted as SLURM job ${item.id} (log: ${item.log})`);
        this.active.add(item);
        // Aborted while sbatch ran: cancel it now.
        if (item.signal.aborted) this.abort(item);
      });
      void this.pollLoop();
    } catch (err) {
      for (const item of items) this.settle(item, { error: err });
    }
  }

  private abort(item: Item): void {
    if (item.settled) return;
    if (!item.id) {
      // Not submitted yet (or sbatch still running: then it is cancelled once submitted).
      if (this.wave.includes(item)) {
        this.wave = this.wave.filter((i) => i !== item);
        this.settle(item, { error: item.signal.reason });
      }
      return;
    }
    if (item.cancelledAt !== undefined) return;
    item.cancelledAt = Date.now();
    this.toCancel.push(item.id);
    if (this.toCancel.length === 1) {
      queueMicrotask(() => {
        const ids = this.toCancel;
        this.toCancel = [];
        this.client.cancel(ids).catch((err: unknown) => {
          for (const i of this.active)
            if (i.cancelledAt !== undefined) log(i, `scancel failed: ${(err as Error).message}`);
        });
      });
    }
  }

  private async pollLoop(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      while (this.active.size > 0) {
        const cancelling = [...this.active].some((i) => i.cancelledAt !== undefined);
        const seconds = this.opts.pollSeconds ?? 5;
        await sleep((cancelling ? Math.min(seconds, 0.5) : seconds) * 1000);
        await this.pollOnce();
      }
    } finally {
      this.polling = false;
    }
  }

  private async pollOnce(): Promise<void> {
    const items = [...this.active];
    if (items.length === 0) return;
    let queue;
    try {
      queue = await this.client.queue([...new Set(items.map((i) => i.slurmJob as string))]);
      this.queueFailures = 0;
    } catch (err) {
      this.queueFailures++;
      if (this.queueFailures >= MAX_QUEUE_FAILURES) {
        for (const item of items) this.settle(item, { error: err });
      } else if (this.queueFailures === 1) {
        for (const item of items) log(item, `squeue failed (retrying): ${(err as Error).message}`);
      }
      return;
    }
    for (const item of items) {
      const q = queue.get(item.id as string);
      if (q && isActiveState(q.state)) {
        if (item.state !== q.state) {
          item.state = q.state;
          log(item, `SLURM job ${item.id} ${q.state.toLowerCase()}${q.nodes ? ` on ${q.nodes}` : ''}`);
        }
        if (q.state === 'RUNNING') this.readProgress(item);
        if (item.cancelledAt !== undefined && Date.now() - item.cancelledAt > CANCEL_WAIT_SECONDS * 1000) {
          this.settle(item, { error: item.signal.reason });
        }
        continue;
      }
      await this.finish(item);
    }
  }

  private readProgress(item: Item): void {
    let text: string;
    try {
      text = readFileSync(item.progressFile, 'utf8');
    } catch {
      return;
    }
    if (text === item.progress) return;
    item.progress = text;
    try {
      const parsed = JSON.parse(text) as ProgressUpdate | (ProgressUpdate | null)[];
      // A group's progress file holds each member's latest update.
      const updates = Array.isArray(parsed) ? parsed : [parsed];
      updates.forEach((u, i) => {
        if (u) item.events[i]?.progress(u);
      });
    } catch {
      // A torn read cannot happen (atomic writes); ignore anything unreadable.
    }
  }

  /** The array task left the queue: read its outcome, else ask scontrol how it ended. */
  private async finish(item: Item): Promise<void> {
    if (item.signal.aborted) {
      this.settle(item, { error: item.signal.reason });
      return;
    }
    let result: WorkerResult | undefined;
    try {
      result = JSON.parse(readFileSync(item.outcomeFile, 'utf8')) as WorkerResult;
    } catch {
      result = undefined;
    }
    if (result?.ok) {
      this.readProgress(item);
      // A group member that failed: its error and the task's log, as for a failed task.
      const withLog = (r: MemberResult): MemberResult =>
        r.ok ? r : { ok: false, message: `${r.message} (log: ${item.log})` };
      this.settle(item, { outcome: 'group' in result ? { ok: true, group: result.group.map(withLog) } : result });
      return;
    }
    if (result) {
      this.settle(item, { error: new Error(`${result.message} (log: ${item.log})`) });
      return;
    }
    const state = await this.client.jobState(item.id as string).catch(() => undefined);
    // A shared file system may show the outcome file a little later than SLURM the job's end.
    if (state?.state === 'COMPLETED' && item.missingPolls < 3) {
      item.missingPolls++;
      return;
    }
    const how = state
      ? `${state.state} (exit code ${state.exitCode}, reason ${state.reason})`
      : 'with a state SLURM no longer knows';
    this.settle(item, { error: new Error(`SLURM job ${item.id} ended ${how} without a result; log: ${item.log}`) });
  }
}

/** A log line for every run of `item` (each member of a group). */
function log(item: Item, message: string): void {
  for (const e of item.events) e.log(message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

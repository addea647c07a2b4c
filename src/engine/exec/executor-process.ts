/**
 * Runs each job in its own worker process (`<command...> <job.json>`, e.g.
 * `node bin/grokpipe.js exec-job <job.json>`), so that CPU-heavy stages (training) really run
 * in parallel; a group job (`group-job.ts`) runs in one worker, all its members together.
 * Progress, log lines and the outcome come back over IPC (execa); the worker's stdout and stderr
 * become log lines (of every member of a group). Aborting sends SIGTERM (then SIGKILL after 5 s).
 */
import { rm, writeFile } from 'node:fs/promises';
import { jobFilePath } from '../cache/store.js';
import type { Executor, WorkerMessage } from './executor.js';
import type { GroupJobSpec, MemberResult } from './group-job.js';
import type { JobEvents, JobOutcome, JobSpec } from './job.js';

/** Executes each job, or group job, in a fresh worker process. */
export class ProcessExecutor implements Executor {
  readonly name = 'process';

  /**
   * @param command the worker command without the job file, e.g.
   *   `[process.execPath, '/path/bin/grokpipe.js', 'exec-job']`.
   */
  constructor(private readonly command: readonly string[]) {
    if (command.length === 0) throw new Error('ProcessExecutor needs a command');
  }

  /**
   * Writes `<outDir>.job.json`, runs the worker on it and waits for its outcome.
   * @throws Error with the stage's message when it failed, or when the worker died without an
   *   outcome; the signal's reason when aborted.
   */
  async execute(job: JobSpec, events: JobEvents, signal: AbortSignal): Promise<JobOutcome> {
    const done = await this.work(job, job.outDir, job.runId, [events], signal);
    if (done.type !== 'done') throw new Error(`worker process for ${job.runId} answered a group's result`);
    return done.outcome;
  }

  /**
   * Writes the group job beside its first member's output folder (`<outDir>.job.json`), runs one
   * worker on it and waits for the members' results.
   * @throws Error with the stage's message when the whole group failed, or when the worker died
   *   without a result; the signal's reason when aborted.
   */
  async executeGroup(group: GroupJobSpec, events: readonly JobEvents[], signal: AbortSignal): Promise<MemberResult[]> {
    const name = `group of ${group.members.map((m) => m.runId).join(', ')}`;
    const done = await this.work(group, group.members[0].outDir, name, events, signal);
    if (done.type !== 'group-done') throw new Error(`worker process for ${name} answered one run's result`);
    return [...done.results];
  }

  /**
   * Runs a worker on `spec` (written to `jobFilePath(outDir)`); messages of member `i` go to
   * `events[i]`, messages without a member and the worker's output lines to every member.
   * @returns its final message (`done` or `group-done`).
   */
  private async work(
    spec: JobSpec | GroupJobSpec,
    outDir: string,
    name: string,
    events: readonly JobEvents[],
    signal: AbortSignal,
  ): Promise<Extract<WorkerMessage, { type: 'done' | 'group-done' }>> {
    const { execa } = await import('execa');
    const jobFile = jobFilePath(outDir);
    await writeFile(jobFile, JSON.stringify(spec));
    const to = (member: number | undefined): readonly JobEvents[] => (member === undefined ? events : [events[member]]);
    let outcome: Extract<WorkerMessage, { type: 'done' | 'group-done' }> | undefined;
    let failure: { message: string; stack?: string } | undefined;
    try {
      const [cmd, ...args] = this.command;
      const sub = execa(cmd, [...args, jobFile], {
        ipc: true,
        serialization: 'advanced',
        cancelSignal: signal,
        forceKillAfterDelay: 5000,
        reject: false,
        stdin: 'ignore',
        all: true,
        buffer: false,
      });
      const messages = (async () => {
        for await (const raw of sub.getEachMessage()) {
          const m = raw as WorkerMessage;
          if (m.type === 'progress') for (const e of to(m.member)) e.progress(m.update);
          else if (m.type === 'log') for (const e of to(m.member)) e.log(m.message);
          else if (m.type === 'done' || m.type === 'group-done') {
            outcome = m;
            // A stage may leave handles open (thread pools); do not wait for them forever.
            setTimeout(() => sub.kill('SIGKILL'), 5000).unref();
          } else if (m.type === 'error') failure = { message: m.message, stack: m.stack };
        }
      })();
      const lines = (async () => {
        for await (const line of sub.iterable({ from: 'all' })) {
          const text = String(line);
          if (text.trim() !== '') for (const e of events) e.log(text);
        }
      })();
      const result = await sub;
      await Promise.allSettled([messages, lines]);
      signal.throwIfAborted();
      if (outcome) return outcome;
      if (failure) throw new Error(failure.message);
      const how = result.signal ? `signal ${result.signal}` : `exit code ${String(result.exitCode)}`;
      throw new Error(`worker process for ${name} ended with ${how} and no result`);
    } finally {
      await rm(jobFile, { force: true });
    }
  }
}

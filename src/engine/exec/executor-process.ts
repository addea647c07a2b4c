/**
 * Runs each job in its own worker process (`<command...> <job.json>`, e.g.
 * `node bin/grokpipe.js exec-job <job.json>`), so that CPU-heavy stages (training) really run
 * in parallel. Progress, log lines and the outcome come back over IPC (execa); the worker's stdout
 * and stderr become log lines. Aborting sends SIGTERM (then SIGKILL after 5 s).
 */
import { rm, writeFile } from 'node:fs/promises';
import { jobFilePath } from '../cache/store.js';
import type { Executor, WorkerMessage } from './executor.js';
import type { JobEvents, JobOutcome, JobSpec } from './job.js';

/** Executes each job in a fresh worker process. */
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
    const { execa } = await import('execa');
    const jobFile = jobFilePath(job.outDir);
    await writeFile(jobFile, JSON.stringify(job));
    let outcome: JobOutcome | undefined;
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
          if (m.type === 'progress') events.progress(m.update);
          else if (m.type === 'log') events.log(m.message);
          else if (m.type === 'done') {
            outcome = m.outcome;
            // A stage may leave handles open (thread pools); do not wait for them forever.
            setTimeout(() => sub.kill('SIGKILL'), 5000).unref();
          } else if (m.type === 'error') failure = { message: m.message, stack: m.stack };
        }
      })();
      const lines = (async () => {
        for await (const line of sub.iterable({ from: 'all' })) {
          const text = String(line);
          if (text.trim() !== '') events.log(text);
        }
      })();
      const result = await sub;
      await Promise.allSettled([messages, lines]);
      signal.throwIfAborted();
      if (outcome) return outcome;
      if (failure) throw new Error(failure.message);
      const how = result.signal ? `signal ${result.signal}` : `exit code ${String(result.exitCode)}`;
      throw new Error(`worker process for ${job.runId} ended with ${how} and no result`);
    } finally {
      await rm(jobFile, { force: true });
    }
  }
}

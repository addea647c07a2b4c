/**
 * Runs each task in its own worker process (`<command...> <task.json>`, e.g.
 * `node bin/grokpipe.js exec-task <task.json>`), so that CPU-heavy stages (training) really run
 * in parallel. Progress, log lines and the outcome come back over IPC (execa); the worker's stdout
 * and stderr become log lines. Aborting sends SIGTERM (then SIGKILL after 5 s).
 */
import { rm, writeFile } from 'node:fs/promises';
import type { Executor, WorkerMessage } from './executor.js';
import type { TaskEvents, TaskOutcome, TaskSpec } from './job.js';

/** Executes each task in a fresh worker process. */
export class ProcessExecutor implements Executor {
  readonly name = 'process';

  /**
   * @param command the worker command without the task file, e.g.
   *   `[process.execPath, '/path/bin/grokpipe.js', 'exec-task']`.
   */
  constructor(private readonly command: readonly string[]) {
    if (command.length === 0) throw new Error('ProcessExecutor needs a command');
  }

  /**
   * Writes `<outDir>.task.json`, runs the worker on it and waits for its outcome.
   * @throws Error with the stage's message when it failed, or when the worker died without an
   *   outcome; the signal's reason when aborted.
   */
  async execute(task: TaskSpec, events: TaskEvents, signal: AbortSignal): Promise<TaskOutcome> {
    const { execa } = await import('execa');
    const taskFile = `${task.outDir}.task.json`;
    await writeFile(taskFile, JSON.stringify(task));
    let outcome: TaskOutcome | undefined;
    let failure: { message: string; stack?: string } | undefined;
    try {
      const [cmd, ...args] = this.command;
      const sub = execa(cmd, [...args, taskFile], {
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
          }
          else if (m.type === 'error') failure = { message: m.message, stack: m.stack };
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
      throw new Error(`worker process for ${task.runId} ended with ${how} and no result`);
    } finally {
      await rm(taskFile, { force: true });
    }
  }
}

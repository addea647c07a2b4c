/**
 * What every command gets from `main` in `src/cli.ts`: the stage types, the output streams, the
 * worker command, an outside abort signal, and the way to set the exit code. The options commands
 * share are declared in `options.ts`.
 */
import type { TextSink } from '../engine/terminal/progress.js';
import type { StageRegistry } from '../engine/registry.js';

/** Everything a command needs from the CLI's `main`. */
export interface CommandContext {
  /** The stage types (built-in, or the test's). */
  readonly registry: () => StageRegistry;
  /** Where results go. */
  readonly stdout: TextSink;
  /** Where messages and progress go. */
  readonly stderr: TextSink;
  /** Whether stdout is a terminal (live progress view, colours). */
  readonly tty: boolean;
  /**
   * Worker command (without the job file) for `--jobs` > 1; null runs stages in this process
   * (`--executor slurm` then uses `defaultWorkerCommand()`).
   */
  readonly workerCommand: () => readonly string[] | null;
  /** Aborts long commands (`run`, `verify`) as SIGINT would. */
  readonly signal?: AbortSignal;
  /** Sets the process exit code of this invocation. */
  setExitCode(code: number): void;
  /** Tells `main` that this command prints JSON (so that errors are JSON too). */
  setJson(on: boolean): void;
}

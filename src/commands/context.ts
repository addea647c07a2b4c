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
  /** Whether stdout is a terminal (the live progress view). */
  readonly tty: boolean;
  /**
   * Whether to colour what is printed: `--color`/`--no-color`, else picocolors' detection
   * (NO_COLOR, FORCE_COLOR, a terminal on stdout, CI); see `MainDeps.color` in `cli.ts`.
   */
  readonly color: boolean;
  /**
   * Progress lines start with the time: `--log-timestamps`/`--no-log-timestamps` of the command,
   * else when stderr is not a terminal (piped to a log); see `timestampsOf` in `options.ts`.
   */
  readonly logTimestamps: boolean;
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

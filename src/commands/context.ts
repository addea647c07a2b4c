/**
 * What the cache commands (`why`, `dag`, `verify`, `gc`, `show`, `ls`) get from `main` in
 * `src/cli.ts`, and the options they share with `run` and `status`.
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import type { TextSink } from '../engine/progress.js';
import type { StageRegistry } from '../engine/registry.js';

/** Everything a command needs from the CLI's `main`. */
export interface CommandContext {
  /** The stage types (built-in, or the test's). */
  readonly registry: () => StageRegistry;
  /** Where results go. */
  readonly stdout: TextSink;
  /** Where messages and progress go. */
  readonly stderr: TextSink;
  /** Whether stdout is a terminal (colours). */
  readonly tty: boolean;
  /** Worker command for recomputing with `--jobs` > 1; null runs stages in this process. */
  readonly workerCommand: () => readonly string[] | null;
  /** Aborts long commands (`verify`) as SIGINT would. */
  readonly signal?: AbortSignal;
  /** Sets the process exit code of this invocation. */
  setExitCode(code: number): void;
  /** Tells `main` that this command prints JSON (so that errors are JSON too). */
  setJson(on: boolean): void;
}

/** Options every pipeline-reading command takes. */
export interface PipelineOptions {
  set: string[];
  store: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Parses an option's value as an integer >= 1. @throws InvalidArgumentError otherwise (exit 2). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** Adds `--set`, `--store` and `--json` (the same as `run` and `status`). */
export function pipelineOptions(cmd: Command): Command {
  return storeOptions(cmd).option(
    '--set <path=value>',
    'override a knob: <stage>.with.<path>=<value> or vars.<name>=<value> (repeatable)',
    collect,
    [],
  );
}

/** Adds `--store` and `--json`. */
export function storeOptions(cmd: Command): Command {
  return cmd
    .option('--store <dir>', 'artifact store folder', 'artifacts')
    .option('--json', 'print one JSON object on stdout');
}

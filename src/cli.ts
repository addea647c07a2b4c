/**
 * The `grokpipe` command line: wires the commands of `src/commands/` (one file each, the options
 * they share in `src/commands/options.ts`) into one commander program, and turns errors into exit
 * codes.
 *
 *   grokpipe run <file> [--set k=v]... [--store DIR] [--jobs N] [--dry-run] [--json] [--backend B]
 *     [--executor local|slurm] [--slurm-partition P] [--slurm-time T] [--slurm-gpus N]
 *     [--slurm-cpus N] [--slurm-array-limit K] [--slurm-poll SECONDS]   (docs/slurm.md)
 *   grokpipe status <file> [--set k=v]... [--store DIR] [--json]
 *   grokpipe why <file> [stage-run] | dag <file> [--format F] | verify <file> [--sample K | --all]
 *   grokpipe gc [--keep-pipelines F...] [--older-than D] [--dry-run] | show <target> | ls
 *   grokpipe runs [file] [--stage S] [--where k=v]... [--sort C] [--json|--csv] | tag <run> <tag...>
 *   grokpipe doctor [--bench] [--json]   (which backends work here; exit 1 when none does)
 *   grokpipe report <file> [--out FILE] [--open]   (the HTML report)
 *   grokpipe export <run> --format hf --out DIR [--file F]   (a train run for transformers; docs/python.md)
 *   grokpipe exec-job <job.json>   (hidden: the worker of `--jobs` > 1 and of SLURM array tasks)
 *
 * Global options: --color / --no-color (default: NO_COLOR, FORCE_COLOR, a terminal; picocolors).
 *
 * Exit codes: 0 success, 1 a stage failed, 2 bad input, 130 interrupted.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import picocolors from 'picocolors';
import { InputError, formatIssue } from './engine/errors.js';
import type { TextSink } from './engine/terminal/progress.js';
import { createRegistry } from './engine/registry.js';
import { jsonResult } from './engine/terminal/summary.js';
import type { StageDefinition } from './engine/stage.js';
import { grokpipeVersion } from './engine/cache/version.js';
import { builtinStages } from './stages/index.js';
import type { CommandContext } from './commands/context.js';
import { registerDag } from './commands/dag.js';
import { registerDoctor } from './commands/doctor.js';
import { defaultWorkerCommand, registerExecJob } from './commands/exec-job.js';
import { registerExport } from './commands/export.js';
import { registerGc } from './commands/gc.js';
import { registerLimitOptions } from './commands/limits.js';
import { registerLs } from './commands/ls.js';
import { registerReport } from './commands/report.js';
import { registerRun } from './commands/run.js';
import { registerRuns } from './commands/runs.js';
import { registerShow } from './commands/show.js';
import { registerStatus } from './commands/status.js';
import { registerTag } from './commands/tag.js';
import { registerVerify } from './commands/verify.js';
import { registerWhy } from './commands/why.js';

/** What `main` runs with; tests replace the stages, the output streams and the executor. */
export interface MainDeps {
  /** Stage types (default: the built-in ones). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly stages?: readonly StageDefinition<any>[];
  /** Where results go (default process.stdout). */
  readonly stdout?: TextSink;
  /** Where messages and plain progress go (default process.stderr). */
  readonly stderr?: TextSink;
  /** Whether stdout is a terminal (the live progress view); default `process.stdout.isTTY`. */
  readonly tty?: boolean;
  /**
   * Whether to colour output, unless `--color`/`--no-color` say. Default: picocolors' detection
   * for this process (`isColorSupported`: no when NO_COLOR is set or `--no-color` given; yes when
   * FORCE_COLOR is set, `--color` given, stdout is a terminal (TERM not `dumb`) or CI is set);
   * false when `stdout` is given (a test's buffer is no terminal).
   */
  readonly color?: boolean;
  /**
   * Whether progress lines start with the time, unless `--log-timestamps`/`--no-log-timestamps`
   * say. Default: when stderr is not a terminal (piped to a log); false when `stderr` is given.
   */
  readonly logTimestamps?: boolean;
  /**
   * Worker command for `--jobs` > 1, without the job file (default: this CLI's `exec-job`);
   * null runs every stage in this process. With `--executor slurm`, the command each array task
   * runs (null: this CLI's `exec-job`).
   */
  readonly workerCommand?: readonly string[] | null;
  /** Aborts a run as SIGINT would (tests); SIGINT is handled as well. */
  readonly signal?: AbortSignal;
}

/**
 * Runs the command line `argv` (without `node` and the script).
 * @returns the exit code: 0 success, 1 a stage failed (or an internal error), 2 bad input,
 *   130 interrupted. Never throws.
 */
export async function main(argv: readonly string[], deps: MainDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  let exitCode = 0;
  let json = false;
  let colorFlag: boolean | undefined;
  const detectedColor = deps.color ?? (deps.stdout === undefined ? picocolors.isColorSupported : false);
  const ctx: CommandContext = {
    registry: () => createRegistry(deps.stages ?? builtinStages),
    stdout,
    stderr,
    tty: deps.tty ?? Boolean(process.stdout.isTTY),
    get color() {
      return colorFlag ?? detectedColor;
    },
    logTimestamps: deps.logTimestamps ?? (deps.stderr === undefined ? !process.stderr.isTTY : false),
    signal: deps.signal,
    workerCommand: () => (deps.workerCommand === undefined ? defaultWorkerCommand() : deps.workerCommand),
    setExitCode: (code) => {
      exitCode = code;
    },
    setJson: (on) => {
      json = on;
    },
  };

  const program = new Command('grokpipe')
    .description('Declarative, content-cached pipelines for studying grokking')
    .version(grokpipeVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .showHelpAfterError()
    .option('--color', 'colour the output even when it is not a terminal (as FORCE_COLOR=1)')
    .option('--no-color', 'no colour (as NO_COLOR=1)');
  program.hook('preAction', () => {
    colorFlag = program.opts<{ color?: boolean }>().color;
  });
  // The order in which `grokpipe --help` lists them.
  for (const register of [
    registerRun,
    registerStatus,
    registerWhy,
    registerDag,
    registerVerify,
    registerGc,
    registerShow,
    registerExport,
    registerLs,
    registerRuns,
    registerTag,
    registerDoctor,
    registerReport,
    registerExecJob,
  ]) {
    register(program, ctx);
  }
  registerLimitOptions(program);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof InputError) {
      stderr.write(`${err.message}\n`);
      if (json) stdout.write(jsonResult([], err.issues.map(formatIssue)));
      return 2;
    }
    stderr.write(`grokpipe: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

// Running this file directly (`tsx src/cli.ts ...`); the installed command goes through bin/.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}

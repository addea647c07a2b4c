/**
 * The `grokpipe` command line.
 *
 *   grokpipe run <file> [--set k=v]... [--store DIR] [--jobs N] [--dry-run] [--json] [--backend B]
 *     [--executor local|slurm] [--slurm-partition P] [--slurm-time T] [--slurm-gpus N]
 *     [--slurm-cpus N] [--slurm-array-limit K] [--slurm-poll SECONDS]   (docs/slurm.md)
 *   grokpipe status <file> [--set k=v]... [--store DIR] [--json]
 *   grokpipe why <file> [stage-run] | dag <file> [--format F] | verify <file> [--sample K | --all]
 *   grokpipe gc [--keep-pipelines F...] [--older-than D] [--dry-run] | show <target> | ls
 *     (the cache commands, src/commands/)
 *   grokpipe doctor [--bench] [--json]   (which backends work here; exit 1 when none does)
 *
 * Exit codes: 0 success, 1 a stage failed, 2 bad input, 130 interrupted.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { InputError, formatIssue } from './engine/errors.js';
import type { Executor } from './engine/executor.js';
import { InlineExecutor } from './engine/executor-inline.js';
import { ProcessExecutor } from './engine/executor-process.js';
import { SlurmExecutor } from './engine/executor-slurm.js';
import { compilePipeline } from './engine/pipeline.js';
import type { Pipeline } from './engine/pipeline.js';
import { planRuns } from './engine/plan.js';
import { createReporter } from './engine/progress.js';
import type { TextSink } from './engine/progress.js';
import { createRegistry } from './engine/registry.js';
import type { StageRegistry } from './engine/registry.js';
import { formatLeaves, formatTable, formatWarnings, jsonResult, leafRuns } from './engine/report.js';
import type { ResultRow } from './engine/report.js';
import { runPipeline } from './engine/runner.js';
import { SlurmClient, SlurmError } from './engine/slurm.js';
import type { RunOptions, StageDefinition } from './engine/stage.js';
import { Store } from './engine/store.js';
import { assertNothingToCompute, storeReadOnly } from './engine/store-access.js';
import { grokpipeVersion } from './engine/version.js';
import { execTaskFile } from './engine/worker.js';
import { builtinStages } from './stages/index.js';
import { registerCacheCommands } from './commands/index.js';
import type { CommandContext } from './commands/index.js';
import { registerDoctor } from './commands/doctor.js';
import { registerLimitOptions } from './commands/limits.js';
import { BACKEND_REQUESTS } from './models/backend-names.js';
import type { BackendRequest } from './models/backend-names.js';

/** What `main` runs with; tests replace the stages, the output streams and the executor. */
export interface MainDeps {
  /** Stage types (default: the built-in ones). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly stages?: readonly StageDefinition<any>[];
  /** Where results go (default process.stdout). */
  readonly stdout?: TextSink;
  /** Where messages and plain progress go (default process.stderr). */
  readonly stderr?: TextSink;
  /** Whether stdout is a terminal (live view, colours); default `process.stdout.isTTY`. */
  readonly tty?: boolean;
  /**
   * Worker command for `--jobs` > 1, without the task file (default: this CLI's `exec-task`);
   * null runs every stage in this process. With `--executor slurm`, the command each array task
   * runs (null: this CLI's `exec-task`).
   */
  readonly workerCommand?: readonly string[] | null;
  /** Aborts a run as SIGINT would (tests); SIGINT is handled as well. */
  readonly signal?: AbortSignal;
}


interface CommonOptions {
  set: string[];
  store: string;
  json?: boolean;
}

interface RunCommandOptions extends CommonOptions {
  jobs: number;
  dryRun?: boolean;
  backend: BackendRequest;
  executor: 'local' | 'slurm';
  slurmPartition?: string;
  slurmTime?: string;
  slurmGpus?: number;
  slurmCpus: number;
  slurmArrayLimit?: number;
  slurmPoll: number;
}

/**
 * Runs the command line `argv` (without `node` and the script).
 * @returns the exit code: 0 success, 1 a stage failed (or an internal error), 2 bad input,
 *   130 interrupted. Never throws.
 */
export async function main(argv: readonly string[], deps: MainDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const tty = deps.tty ?? Boolean(process.stdout.isTTY);
  let exitCode = 0;
  let json = false;
  const registry = (): StageRegistry => createRegistry(deps.stages ?? builtinStages);

  const program = new Command('grokpipe')
    .description('Declarative, content-cached pipelines for studying grokking')
    .version(grokpipeVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .showHelpAfterError();

  const collect = (value: string, previous: string[]) => [...previous, value];
  const addCommon = (cmd: Command): Command =>
    cmd
      .option('--set <path=value>', 'override a knob: <stage>.with.<path>=<value> or vars.<name>=<value> (repeatable)', collect, [])
      .option('--store <dir>', 'artifact store folder', 'artifacts')
      .option('--json', 'print one JSON object {"runs": [...]} on stdout; progress as plain lines on stderr');

  addCommon(program.command('run').argument('<file>', 'pipeline YAML file').description('run a pipeline, reusing cached results'))
    .option('--jobs <n>', 'stage runs executing at once', parseJobs, availableParallelism())
    .option('--dry-run', 'show what would run and why, compute nothing')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend for training').choices(BACKEND_REQUESTS).default('auto'))
    .addOption(new Option('--executor <name>', 'where stage runs execute: this machine, or SLURM job arrays (docs/slurm.md)').choices(['local', 'slurm']).default('local'))
    .option('--slurm-partition <name>', 'SLURM partition (sbatch --partition)')
    .option('--slurm-time <time>', 'time limit per stage run (sbatch --time, e.g. 4:00:00)')
    .option('--slurm-gpus <n>', 'GPUs per stage run (sbatch --gres=gpu:N)', parseJobs)
    .option('--slurm-cpus <n>', 'CPUs per stage run (sbatch --cpus-per-task; also the training threads)', parseJobs, 1)
    .option('--slurm-array-limit <k>', 'stage runs of one wave running at once (--array=0-N%K)', parseJobs)
    .option('--slurm-poll <seconds>', 'interval between squeue polls (seconds)', parsePoll, 5)
    .action(async (file: string, opts: RunCommandOptions) => {
      json = Boolean(opts.json);
      const pipeline = compilePipeline(file, registry(), { sets: opts.set });
      const store = new Store(opts.store);
      if (opts.dryRun) {
        exitCode = await printStatus(pipeline, store, opts, stdout, tty);
        return;
      }
      if (storeReadOnly(store.root)) assertNothingToCompute(await planRuns(pipeline.runs, store), store.root, opts.store);
      exitCode = await runCommand(pipeline, store, opts, { ...deps, stdout, stderr, tty }, registry());
    });

  addCommon(program.command('status').argument('<file>', 'pipeline YAML file').description('show what would run and why; computes nothing'))
    .action(async (file: string, opts: CommonOptions) => {
      json = Boolean(opts.json);
      const pipeline = compilePipeline(file, registry(), { sets: opts.set });
      exitCode = await printStatus(pipeline, new Store(opts.store), opts, stdout, tty);
    });

  const ctx: CommandContext = {
    registry,
    stdout,
    stderr,
    tty,
    signal: deps.signal,
    workerCommand: () => (deps.workerCommand === undefined ? defaultWorkerCommand() : deps.workerCommand),
    setExitCode: (code) => {
      exitCode = code;
    },
    setJson: (on) => {
      json = on;
    },
  };
  registerCacheCommands(program, ctx);
  registerDoctor(program, ctx);
  registerLimitOptions(program);

  program
    .command('report')
    .argument('<file>', 'pipeline YAML file')
    .description('write a self-contained HTML report: DAG, runs with knobs and metrics, interactive plots, artifact links; computes nothing')
    .option('--set <path=value>', 'override a knob: <stage>.with.<path>=<value> or vars.<name>=<value> (repeatable)', collect, [])
    .option('--store <dir>', 'artifact store folder', 'artifacts')
    .option('--out <file>', 'HTML file to write (default: <store>/reports/<pipeline name>.html)')
    .option('--open', 'open the report with the platform opener (xdg-open, open, start) when there is one')
    .action(async (file: string, opts: { set: string[]; store: string; out?: string; open?: boolean }) => {
      const pipeline = compilePipeline(file, registry(), { sets: opts.set });
      const { writeReport } = await import('./report/build.js');
      const report = await writeReport(pipeline, new Store(opts.store), { out: opts.out });
      stdout.write(`${report.file}\n`);
      if (opts.open) {
        const { openFile } = await import('./report/open.js');
        const problem = await openFile(report.file);
        if (problem) stderr.write(`could not open the report (${problem}); open ${report.file} in a browser\n`);
      }
    });

  program
    .command('exec-task', { hidden: true })
    .argument('<task>', 'task.json written by the engine')
    .description('run one stage task (used by worker processes and SLURM array tasks)')
    .option('--outcome <file>', 'write the outcome (JSON) here (no parent process: SLURM)')
    .option('--progress <file>', 'write the latest progress update (JSON) here')
    .action(async (task: string, o: { outcome?: string; progress?: string }) => {
      exitCode = await execTaskFile(task, registry(), { outcomeFile: o.outcome, progressFile: o.progress });
    });

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

function parseJobs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function parsePoll(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1) throw new InvalidArgumentError('must be a number of seconds, at least 0.1');
  return n;
}

async function printStatus(pipeline: Pipeline, store: Store, opts: CommonOptions, stdout: TextSink, tty: boolean): Promise<number> {
  const plan = await planRuns(pipeline.runs, store);
  const rows: ResultRow[] = plan.map((p) => ({
    id: p.run.id,
    stage: p.run.stage.name,
    key: p.key,
    status: p.status,
    seconds: null,
    reason: p.reason,
  }));
  if (opts.json) stdout.write(jsonResult(rows));
  else stdout.write(formatTable(rows, { color: tty, withSeconds: false, withKeys: true }));
  return 0;
}

async function runCommand(
  pipeline: Pipeline,
  store: Store,
  opts: RunCommandOptions,
  deps: MainDeps & { stdout: TextSink; stderr: TextSink; tty: boolean },
  registry: StageRegistry,
): Promise<number> {
  const json = Boolean(opts.json);
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    deps.stderr.write('\ninterrupted: stopping stages (press Ctrl-C again to quit at once)\n');
    controller.abort(new Error('interrupted'));
  };
  const onExternal = (): void => controller.abort(deps.signal?.reason);
  deps.signal?.addEventListener('abort', onExternal, { once: true });
  process.on('SIGINT', onSigint);
  try {
    const workerCommand = deps.workerCommand === undefined ? defaultWorkerCommand() : deps.workerCommand;
    let executor: Executor;
    let jobs = opts.jobs;
    let threads = Math.max(1, Math.floor(availableParallelism() / opts.jobs));
    if (opts.executor === 'slurm') {
      const client = new SlurmClient();
      try {
        await client.check();
      } catch (err) {
        if (!(err instanceof SlurmError)) throw err;
        deps.stderr.write(`${err.message}\n`);
        return 2;
      }
      executor = new SlurmExecutor({
        command: workerCommand ?? defaultWorkerCommand(),
        slurmDir: join(store.root, '.slurm'),
        partition: opts.slurmPartition,
        time: opts.slurmTime,
        gpus: opts.slurmGpus,
        cpus: opts.slurmCpus,
        arrayLimit: opts.slurmArrayLimit,
        pollSeconds: opts.slurmPoll,
        client,
      });
      // SLURM decides how many run at once; every ready run goes into the wave.
      jobs = Math.max(1, pipeline.runs.length);
      threads = opts.slurmCpus;
    } else {
      executor = opts.jobs > 1 && workerCommand !== null ? new ProcessExecutor(workerCommand) : new InlineExecutor(registry);
    }
    const options: RunOptions = { backend: opts.backend, threads };
    const reporter = await createReporter({ tty: deps.tty, json, stderr: deps.stderr });
    const records = await runPipeline(pipeline.runs, {
      store,
      executor,
      jobs,
      signal: controller.signal,
      reporter,
      options,
      pipelineFile: pipeline.file,
    });
    const rows: ResultRow[] = records.map((r) => ({
      id: r.run.id,
      stage: r.run.stage.name,
      key: r.key,
      status: r.status,
      seconds: r.status === 'skipped' ? null : r.seconds,
      reason: r.status === 'failed' ? (r.error ?? r.reason) : r.reason,
    }));
    if (json) {
      deps.stdout.write(jsonResult(rows));
    } else {
      deps.stdout.write(formatTable(rows, { color: deps.tty, withSeconds: true }));
      deps.stdout.write(formatWarnings(records.filter((r) => r.status === 'ran').map((r) => ({ id: r.run.id, manifest: r.manifest }))));
      const leaves = new Set(leafRuns(pipeline.runs));
      const leafRecords = records.filter((r) => leaves.has(r.run)).map((r) => ({ id: r.run.id, dir: r.dir, manifest: r.manifest }));
      const text = formatLeaves(leafRecords, process.cwd());
      if (text) deps.stdout.write(`\n${text}`);
    }
    if (controller.signal.aborted) return 130;
    return records.some((r) => r.status === 'failed') ? 1 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    deps.signal?.removeEventListener('abort', onExternal);
  }
}

/**
 * The command that runs one task in a worker process: this CLI's hidden `exec-task` command, run
 * from the compiled `bin/grokpipe.js`, or from this source file through tsx when running from
 * source.
 */
export function defaultWorkerCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    return [process.execPath, '--import', tsx, self, 'exec-task'];
  }
  return [process.execPath, join(dirname(self), '..', 'bin', 'grokpipe.js'), 'exec-task'];
}

// Running this file directly (`tsx src/cli.ts ...`); the installed command goes through bin/.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}

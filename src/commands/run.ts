/**
 * `grokpipe run <file> [--set k=v]... [--store DIR] [--jobs N] [--dry-run] [--json] [--backend B]
 * [--executor local|slurm] [--slurm-*]`: runs a pipeline, reusing cached results. Stage runs
 * execute in this process (`--jobs 1`), in worker processes, or as SLURM job arrays
 * (`docs/slurm.md`); progress goes to stderr (a live view on a terminal), the run summary table
 * and the leaves' outputs to stdout (`{"runs": [...]}` with `--json`).
 *
 * Exit codes: 0 success, 1 a stage failed, 2 bad input (or no SLURM client), 130 interrupted.
 */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import type { Pipeline } from '../engine/pipeline/pipeline.js';
import { createReporter } from '../engine/terminal/reporter.js';
import { formatLeaves, formatTable, jsonResult, leafRuns } from '../engine/terminal/summary.js';
import type { ResultRow } from '../engine/terminal/summary.js';
import { runPipeline } from '../engine/runner.js';
import type { RunRecord } from '../engine/runner.js';
import { SlurmError } from '../engine/exec/slurm.js';
import { Store } from '../engine/cache/store.js';
import type { BackendRequest } from '../models/backend-names.js';
import type { CommandContext } from './context.js';
import { chooseExecutor, listenForInterrupt } from './execution.js';
import type { ExecutorChoice } from './execution.js';
import type { ExecutorOptions, PipelineOptions } from './options.js';
import {
  RUNS_JSON_HELP,
  backendOption,
  executorOptions,
  jobsOption,
  jsonOption,
  setOption,
  storeOption,
} from './options.js';
import { printStatus } from './status.js';

/** The options of `run` as parsed. */
interface RunOptions extends PipelineOptions, ExecutorOptions {
  jobs: number;
  dryRun?: boolean;
  backend: BackendRequest;
}

/** Examples under `run --help`: knobs, vars and sweep axes from the command line. */
const RUN_EXAMPLES = `
Examples:
  grokpipe run pipelines/quickstart.yaml --set model.with.max_steps=4000
  grokpipe run pipelines/study/values.yaml --set 'matrix.values=[2, 3, 4]' --set 'matrix.seed=[0]'
  grokpipe run pipelines/study/phi.yaml --set 'matrix.exclude=[{phi: 1}]'
A matrix axis that no stage uses is an error (exit 2), whether in the file or from --set.`;

/** Registers `run` on `program`. */
export function registerRun(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('run')
    .argument('<file>', 'pipeline YAML file')
    .description('run a pipeline, reusing cached results')
    .addOption(setOption())
    .addOption(storeOption())
    .addOption(jsonOption(RUNS_JSON_HELP))
    .addOption(jobsOption('stage runs executing at once', availableParallelism()))
    .option('--dry-run', 'show what would run and why, compute nothing')
    .addOption(backendOption('TensorFlow.js backend for training'));
  for (const option of executorOptions()) cmd.addOption(option);
  cmd.addHelpText('after', RUN_EXAMPLES);
  cmd.action(async (file: string, opts: RunOptions) => {
    ctx.setJson(Boolean(opts.json));
    const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set });
    const store = new Store(opts.store);
    if (opts.dryRun) ctx.setExitCode(await printStatus(pipeline, store, Boolean(opts.json), ctx.stdout, ctx.tty));
    else ctx.setExitCode(await runCommand(pipeline, store, opts, ctx));
  });
}

/**
 * Runs the pipeline with the executor the options ask for and prints the result. SIGINT aborts
 * the stages (a second SIGINT exits at once, 130).
 * @returns the exit code: 0, 1 when a run failed, 2 when SLURM's client cannot run, 130 when
 *   interrupted.
 */
async function runCommand(pipeline: Pipeline, store: Store, opts: RunOptions, ctx: CommandContext): Promise<number> {
  const interrupt = listenForInterrupt(ctx, (controller) => {
    if (controller.signal.aborted) process.exit(130);
    ctx.stderr.write('\ninterrupted: stopping stages (press Ctrl-C again to quit at once)\n');
    controller.abort(new Error('interrupted'));
  });
  try {
    let choice: ExecutorChoice;
    try {
      choice = await chooseExecutor(opts, ctx, store, pipeline.runs.length);
    } catch (err) {
      if (!(err instanceof SlurmError)) throw err;
      ctx.stderr.write(`${err.message}\n`);
      return 2;
    }
    const records = await runPipeline(pipeline.runs, {
      store,
      executor: choice.executor,
      jobs: choice.jobs,
      signal: interrupt.signal,
      reporter: await createReporter({ tty: ctx.tty, json: Boolean(opts.json), stderr: ctx.stderr }),
      options: { backend: opts.backend, threads: choice.threads },
      pipelineFile: pipeline.file,
    });
    printRecords(pipeline, records, Boolean(opts.json), ctx);
    if (interrupt.signal.aborted) return 130;
    return records.some((r) => r.status === 'failed') ? 1 : 0;
  } finally {
    interrupt.dispose();
  }
}

/**
 * Prints what a run did: `{"runs": [...]}` with `json`, else the run summary table with seconds,
 * then where the leaves' outputs are.
 */
function printRecords(pipeline: Pipeline, records: readonly RunRecord[], json: boolean, ctx: CommandContext): void {
  const rows: ResultRow[] = records.map((r) => ({
    id: r.run.id,
    stage: r.run.stage.name,
    key: r.key,
    status: r.status,
    seconds: r.status === 'skipped' ? null : r.seconds,
    reason: r.status === 'failed' ? (r.error ?? r.reason) : r.reason,
  }));
  if (json) {
    ctx.stdout.write(jsonResult(rows));
    return;
  }
  ctx.stdout.write(formatTable(rows, { color: ctx.tty, withSeconds: true }));
  const leaves = new Set(leafRuns(pipeline.runs));
  const leafRecords = records
    .filter((r) => leaves.has(r.run))
    .map((r) => ({ id: r.run.id, dir: r.dir, manifest: r.manifest }));
  const text = formatLeaves(leafRecords, process.cwd());
  if (text) ctx.stdout.write(`\n${text}`);
}

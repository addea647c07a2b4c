/**
 * `grokpipe run <file> [--set k=v]... [--store DIR] [--jobs N] [--dry-run] [--json] [--backend B]
 * [--ensemble auto|off] [--ensemble-max N] [--executor local|slurm] [--slurm-*]`: runs a pipeline,
 * reusing cached results. Stage runs execute in this process (`--jobs 1`), in worker processes, or
 * as SLURM job arrays (`docs/slurm.md`), runs that can share a job in groups (`--ensemble`); progress goes to stderr (a live view on a terminal), the run summary table
 * and the leaves' outputs to stdout (`{"runs": [...]}` with `--json`).
 *
 * Exit codes: 0 success, 1 a stage failed, 2 bad input (or no SLURM client), 130 interrupted.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import type { Pipeline } from '../engine/pipeline/pipeline.js';
import { createReporter } from '../engine/terminal/reporter.js';
import { formatLeaves, formatTable, formatWarnings, jsonResult, leafRuns } from '../engine/terminal/summary.js';
import type { ResultRow } from '../engine/terminal/summary.js';
import { runPipeline } from '../engine/runner.js';
import type { RunRecord } from '../engine/runner.js';
import { SlurmError } from '../engine/exec/slurm.js';
import { Store } from '../engine/cache/store.js';
import { assertNothingToCompute, storeReadOnly } from '../engine/cache/store-access.js';
import { planRuns } from '../engine/explain/plan.js';
import { gitRevision } from '../engine/cache/git.js';
import { recordRunMeta } from '../engine/cache/meta.js';
import type { BackendRequest } from '../models/backend-names.js';
import type { CommandContext } from './context.js';
import { chooseExecutor, listenForInterrupt } from './execution.js';
import type { ExecutorChoice } from './execution.js';
import type { EnsembleOptions, ExecutorOptions, PipelineOptions } from './options.js';
import {
  RUNS_JSON_HELP,
  SET_HELP,
  backendOption,
  ensembleOptions,
  executorOptions,
  groupingOf,
  jobsOption,
  jsonOption,
  logTimestampsOptions,
  setOption,
  storeOption,
  timestampsOf,
} from './options.js';
import type { TimestampOptions } from './options.js';
import { printStatus } from './status.js';

/** The options of `run` as parsed. */
interface RunOptions extends PipelineOptions, ExecutorOptions, EnsembleOptions, TimestampOptions {
  name?: string;
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
  grokpipe run pipelines/quickstart.yaml --set 'model.with.optimizer.weight_decay=0.1,1.0' --dry-run`;

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
    .option(
      '--name <name>',
      "name the runs; ${{ matrix.<axis> }} in it names each combination (else the run's matrix values follow); see grokpipe runs",
    )
    .addOption(backendOption('TensorFlow.js backend for training'));
  for (const option of [...ensembleOptions(), ...executorOptions(), ...logTimestampsOptions()]) cmd.addOption(option);
  cmd.addHelpText('after', SET_HELP + RUN_EXAMPLES);
  cmd.action(async (file: string, opts: RunOptions) => {
    ctx.setJson(Boolean(opts.json));
    const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set, runName: opts.name });
    const store = new Store(opts.store);
    if (opts.dryRun) {
      ctx.setExitCode(await printStatus(pipeline, store, Boolean(opts.json), ctx.stdout, ctx.color));
      return;
    }
    if (storeReadOnly(store.root)) assertNothingToCompute(await planRuns(pipeline.runs, store), store.root, opts.store);
    ctx.setExitCode(await runCommand(pipeline, store, opts, ctx));
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
      reporter: await createReporter({
        tty: ctx.tty,
        json: Boolean(opts.json),
        timestamps: timestampsOf(opts, ctx),
        stderr: ctx.stderr,
      }),
      options: { backend: opts.backend, threads: choice.threads },
      grouping: groupingOf(opts, opts.executor === 'slurm' ? 1 : choice.jobs),
      pipelineFile: pipeline.file,
      git: once(() => gitRevision(pipeline.file)),
    });
    await recordRuns(store, pipeline, records, opts.set).catch((err: unknown) => {
      ctx.stderr.write(`could not record the run names and uses in ${store.root}/.meta: ${(err as Error).message}\n`);
    });
    printRecords(pipeline, records, Boolean(opts.json), ctx);
    if (interrupt.signal.aborted) return 130;
    return records.some((r) => r.status === 'failed') ? 1 : 0;
  } finally {
    interrupt.dispose();
  }
}

/** `f` called at most once; later calls share its promise. */
function once<T>(f: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= f());
}

/**
 * Records in each used entry's sidecar (`engine/cache/meta.ts`) that this pipeline used it, with
 * its run id and the `--set` arguments, and the run's name when the invocation named it.
 */
async function recordRuns(
  store: Store,
  pipeline: Pipeline,
  records: readonly RunRecord[],
  sets: readonly string[],
): Promise<void> {
  const file = resolve(pipeline.file);
  for (const r of records) {
    if ((r.status !== 'cached' && r.status !== 'ran') || r.key === null) continue;
    const use = { file, pipeline: pipeline.name, id: r.run.id, sets: [...sets] };
    await recordRunMeta(store.root, { stage: r.run.stage.name, key: r.key, use, name: pipeline.runNames.get(r.run) });
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
    ...(r.group ? { group: r.group } : {}),
  }));
  if (json) {
    ctx.stdout.write(jsonResult(rows));
    return;
  }
  ctx.stdout.write(formatTable(rows, { color: ctx.color, withSeconds: true }));
  ctx.stdout.write(
    formatWarnings(records.filter((r) => r.status === 'ran').map((r) => ({ id: r.run.id, manifest: r.manifest }))),
  );
  const leaves = new Set(leafRuns(pipeline.runs));
  const leafRecords = records
    .filter((r) => leaves.has(r.run))
    .map((r) => ({ id: r.run.id, dir: r.dir, manifest: r.manifest }));
  const text = formatLeaves(leafRecords, process.cwd());
  if (text) ctx.stdout.write(`\n${text}`);
}

/**
 * How the commands that compute (`run`, `verify`) execute stage runs: the executor (this process,
 * worker processes, or SLURM job arrays, chosen from `--jobs` and `--executor`), the numeric
 * threads each run may use, and Ctrl-C (SIGINT) turned into an abort signal.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Executor } from '../engine/exec/executor.js';
import { InlineExecutor } from '../engine/exec/executor-inline.js';
import { ProcessExecutor } from '../engine/exec/executor-process.js';
import { SlurmExecutor } from '../engine/exec/executor-slurm.js';
import { SlurmClient } from '../engine/exec/slurm.js';
import type { Store } from '../engine/cache/store.js';
import type { CommandContext } from './context.js';
import { defaultWorkerCommand } from './exec-job.js';
import type { ExecutorOptions } from './options.js';

/** Threads a stage run may use when `jobs` run at once on this machine: the cores shared out, at least 1. */
export function threadsPerRun(jobs: number): number {
  return Math.max(1, Math.floor(availableParallelism() / jobs));
}

/**
 * The executor for `jobs` runs at once on this machine: worker processes (the context's worker
 * command) when `jobs` > 1 and there is a worker command, else this process.
 */
export function localExecutor(jobs: number, ctx: CommandContext): Executor {
  const workerCommand = ctx.workerCommand();
  return jobs > 1 && workerCommand !== null ? new ProcessExecutor(workerCommand) : new InlineExecutor(ctx.registry());
}

/** What `chooseExecutor` picked: the executor, how many runs the runner starts at once, threads per run. */
export interface ExecutorChoice {
  readonly executor: Executor;
  readonly jobs: number;
  readonly threads: number;
}

/**
 * The executor `run` asks for. `--executor local`: `localExecutor(jobs)`, the cores shared out
 * among the `jobs` runs. `--executor slurm`: job arrays submitted from `<store>/.slurm`, every ready
 * run handed over at once (SLURM decides how many run; `runCount` bounds the runner), and
 * `--slurm-cpus` threads per run.
 * @throws SlurmError when `sbatch --version` cannot run (`missing` when it is not on PATH).
 */
export async function chooseExecutor(
  opts: ExecutorOptions & { jobs: number },
  ctx: CommandContext,
  store: Store,
  runCount: number,
): Promise<ExecutorChoice> {
  if (opts.executor !== 'slurm') {
    return { executor: localExecutor(opts.jobs, ctx), jobs: opts.jobs, threads: threadsPerRun(opts.jobs) };
  }
  const client = new SlurmClient();
  await client.check();
  const executor = new SlurmExecutor({
    command: ctx.workerCommand() ?? defaultWorkerCommand(),
    slurmDir: join(store.root, '.slurm'),
    partition: opts.slurmPartition,
    time: opts.slurmTime,
    gpus: opts.slurmGpus,
    cpus: opts.slurmCpus,
    arrayLimit: opts.slurmArrayLimit,
    pollSeconds: opts.slurmPoll,
    client,
  });
  return { executor, jobs: Math.max(1, runCount), threads: opts.slurmCpus };
}

/** An abort signal fed by SIGINT and by the context's signal; `dispose` removes both listeners. */
export interface Interrupt {
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * Listens for SIGINT (calling `onSigint` with the controller, which decides what a first and a
 * second Ctrl-C do) and for the context's abort signal (which aborts with its reason).
 */
export function listenForInterrupt(ctx: CommandContext, onSigint: (controller: AbortController) => void): Interrupt {
  const controller = new AbortController();
  const sigint = (): void => onSigint(controller);
  const external = (): void => controller.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener('abort', external, { once: true });
  process.on('SIGINT', sigint);
  return {
    signal: controller.signal,
    dispose(): void {
      process.off('SIGINT', sigint);
      ctx.signal?.removeEventListener('abort', external);
    },
  };
}

/**
 * `grokpipe exec-job <job.json> [--outcome FILE] [--progress FILE]` (hidden): runs one stage run
 * that the engine wrote to a job file. Worker processes of `--jobs` > 1 run it with the parent on
 * IPC; SLURM array tasks run it without a parent, writing the outcome and the latest progress to
 * the files given (see `docs/slurm.md`). Exit 0 when the stage succeeded, 1 when it failed, 130
 * when interrupted.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { execJobFile } from '../engine/exec/worker.js';
import type { CommandContext } from './context.js';

/** The name of the worker command, as the engine's worker processes and SLURM scripts call it. */
export const EXEC_JOB = 'exec-job';

/** Registers the hidden `exec-job` command on `program`. */
export function registerExecJob(program: Command, ctx: CommandContext): void {
  program
    .command(EXEC_JOB, { hidden: true })
    .argument('<job>', 'job file (JSON) written by the engine')
    .description('run one stage run (used by worker processes and SLURM array tasks)')
    .option('--outcome <file>', 'write the outcome (JSON) here (no parent process: SLURM)')
    .option('--progress <file>', 'write the latest progress update (JSON) here')
    .action(async (job: string, o: { outcome?: string; progress?: string }) => {
      ctx.setExitCode(await execJobFile(job, ctx.registry(), { outcomeFile: o.outcome, progressFile: o.progress }));
    });
}

/**
 * The command that runs one job in a worker process, without the job file: this CLI's hidden
 * `exec-job` command, run from the compiled `bin/grokpipe.js`, or from `src/cli.ts` through tsx
 * when running from source.
 */
export function defaultWorkerCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    return [process.execPath, '--import', tsx, join(dirname(self), '..', 'cli.ts'), EXEC_JOB];
  }
  return [process.execPath, join(dirname(self), '..', '..', 'bin', 'grokpipe.js'), EXEC_JOB];
}

/**
 * `grokpipe status <file> [--set k=v]... [--store DIR] [--json]`: what `run` would do, computing
 * nothing: each stage run with its key and `cached` or `planned` and why (the run summary table,
 * or `{"runs": [...]}` with `--json`). `run --dry-run` prints the same.
 */
import type { Command } from 'commander';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import type { Pipeline } from '../engine/pipeline/pipeline.js';
import { planRuns } from '../engine/explain/plan.js';
import type { TextSink } from '../engine/terminal/progress.js';
import { formatTable, jsonResult } from '../engine/terminal/summary.js';
import type { ResultRow } from '../engine/terminal/summary.js';
import { Store } from '../engine/cache/store.js';
import type { CommandContext } from './context.js';
import type { PipelineOptions } from './options.js';
import { RUNS_JSON_HELP, jsonOption, setOption, storeOption } from './options.js';

/** Registers `status` on `program`. */
export function registerStatus(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .argument('<file>', 'pipeline YAML file')
    .description('show what would run and why; computes nothing')
    .addOption(setOption())
    .addOption(storeOption())
    .addOption(jsonOption(RUNS_JSON_HELP))
    .action(async (file: string, opts: PipelineOptions) => {
      ctx.setJson(Boolean(opts.json));
      const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set });
      ctx.setExitCode(await printStatus(pipeline, new Store(opts.store), Boolean(opts.json), ctx.stdout, ctx.color));
    });
}

/**
 * Plans `pipeline` against `store` and prints each run's key, status and reason: the run summary
 * table (coloured when `color`), or with `json` the `{"runs": [...]}` document.
 * @returns the exit code, 0.
 */
export async function printStatus(
  pipeline: Pipeline,
  store: Store,
  json: boolean,
  stdout: TextSink,
  color: boolean,
): Promise<number> {
  const plan = await planRuns(pipeline.runs, store);
  const rows: ResultRow[] = plan.map((p) => ({
    id: p.run.id,
    stage: p.run.stage.name,
    key: p.key,
    status: p.status,
    seconds: null,
    reason: p.reason,
  }));
  if (json) stdout.write(jsonResult(rows));
  else stdout.write(formatTable(rows, { color, withSeconds: false, withKeys: true }));
  return 0;
}

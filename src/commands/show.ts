/**
 * `grokpipe show <stage-run | key | key-prefix> [--rows N] [--file pipeline.yaml]`: an entry's
 * manifest and the first rows of each of its tables. A stage-run id needs `--file` (the pipeline
 * is planned against the store to find its key). Exit 2 when the target names no entry (or
 * several), or the run is not cached.
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import { planRuns } from '../engine/explain/plan.js';
import { Store } from '../engine/cache/store.js';
import type { CommandContext } from './context.js';
import type { PipelineOptions } from './options.js';
import { jsonOption, setOption, storeOption } from './options.js';

interface ShowOptions extends PipelineOptions {
  rows: number;
  file?: string;
}

function rowCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be an integer >= 0');
  return n;
}

/** Registers `show` on `program`. */
export function registerShow(program: Command, ctx: CommandContext): void {
  program
    .command('show')
    .argument('<target>', 'stage-run id (with --file), key, or key prefix (4+ hex digits)')
    .description("show an entry's manifest and the head of each table")
    .addOption(storeOption())
    .addOption(jsonOption())
    .addOption(setOption())
    .option('--rows <n>', 'rows of each table to show', rowCount, 5)
    .option('--file <pipeline>', 'pipeline YAML file that the stage-run id belongs to')
    .action(async (target: string, opts: ShowOptions) => {
      ctx.setJson(Boolean(opts.json));
      const store = new Store(opts.store);
      const plan = opts.file
        ? await planRuns(compilePipeline(opts.file, ctx.registry(), { sets: opts.set }).runs, store)
        : undefined;
      // Loaded here, not with the CLI: it brings the Parquet libraries.
      const { formatShow, resolveEntry, tableHeads } = await import('../engine/terminal/show.js');
      const entry = await resolveEntry(store, target, plan);
      const heads = await tableHeads(entry, opts.rows);
      if (opts.json) {
        ctx.stdout.write(`${JSON.stringify({ dir: entry.dir, manifest: entry.manifest, tables: heads })}\n`);
      } else {
        ctx.stdout.write(formatShow(entry, heads, { color: ctx.color }));
      }
      ctx.setExitCode(0);
    });
}

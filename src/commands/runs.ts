/**
 * `grokpipe runs [pipeline.yaml] [--stage train] [--where k=v]... [--sort col] [--json|--csv]`:
 * one row per stored run, as `dvc exp show` or MLflow's runs table: its name and tags, its run id,
 * the knobs that differ between the rows, its grokking metrics, the backend that trained it, when
 * it finished and the git commit of the project that ran it. With a pipeline file, the runs that
 * pipeline used, whatever `--set` produced them; without, every run of the store.
 * (The rows: `runs/collect.ts`; metrics: `runs/metrics.ts`; queries: `runs/query.ts`.)
 *
 * Exit codes: 0 (also when no run matches), 2 for an unknown column or a malformed `--where`.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { Store } from '../engine/cache/store.js';
import type { CommandContext } from './context.js';
import { jsonOption, storeOption } from './options.js';

interface RunsOptions {
  store: string;
  stage: string;
  where: string[];
  sort?: string;
  json?: boolean;
  csv?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Registers `runs` on `program`. */
export function registerRuns(program: Command, ctx: CommandContext): void {
  program
    .command('runs')
    .argument('[file]', 'pipeline YAML file: only its runs (any --set); default every run of the store')
    .description(
      'compare runs: one row per stored run, the knobs that differ, grokking metrics, backend, date, commit, name, tags',
    )
    .option('--stage <type>', 'stage type of the rows', 'train')
    .addOption(
      new Option(
        '--where <column=value>',
        'keep rows where a column (a knob such as max_steps or generate.entities, a metric, name, backend, commit, tag) compares so; ops = != < <= > >= (repeatable)',
      )
        .argParser(collect)
        .default([]),
    )
    .option(
      '--sort <column>',
      'sort by a column, ascending; -<column> (as --sort=-<column>) descending; default newest first',
    )
    .addOption(storeOption())
    .addOption(jsonOption('print one JSON object {"knobs": [...], "runs": [...]} on stdout').conflicts('csv'))
    .addOption(new Option('--csv', 'print CSV on stdout (every metric column)').conflicts('json'))
    .action(async (file: string | undefined, opts: RunsOptions) => {
      ctx.setJson(Boolean(opts.json));
      // Loaded here, not with the CLI: they bring the Parquet and table libraries.
      const [{ collectRuns }, { runMetrics }, { filterRows, sortRows }, { differingKnobs }, format] = await Promise.all(
        [
          import('../runs/collect.js'),
          import('../runs/metrics.js'),
          import('../runs/query.js'),
          import('../runs/knobs.js'),
          import('../runs/format.js'),
        ],
      );
      const runs = await collectRuns(new Store(opts.store), { stage: opts.stage, pipelineFile: file });
      const all = await Promise.all(runs.map(async (run) => ({ run, metrics: await runMetrics(run) })));
      let rows = filterRows(all, opts.where);
      if (opts.sort !== undefined) rows = sortRows(rows, opts.sort);
      const knobs = differingKnobs(rows.map((r) => r.run));
      if (opts.json) ctx.stdout.write(format.runsJson(rows, knobs));
      else if (opts.csv) ctx.stdout.write(format.runsCsv(rows, knobs));
      else ctx.stdout.write(format.formatRuns(rows, knobs, { color: ctx.color }));
      ctx.setExitCode(0);
    });
}

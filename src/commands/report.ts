/**
 * `grokpipe report <file> [--set k=v]... [--store DIR] [--out FILE] [--open] [--all-runs]`: writes the
 * pipeline's HTML report (`src/report/`): the DAG, the runs with their knobs and metrics,
 * interactive plots and links to the artifacts, from what the store holds. Computes nothing;
 * prints the file's path. The report code (Vega, the page's scripts) is loaded when the command
 * runs, not with the CLI.
 */
import type { Command } from 'commander';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import { Store } from '../engine/cache/store.js';
import type { CommandContext } from './context.js';
import { setOption, storeOption } from './options.js';

interface ReportOptions {
  set: string[];
  store: string;
  out?: string;
  open?: boolean;
  allRuns?: boolean;
}

/** Registers `report` on `program`. */
export function registerReport(program: Command, ctx: CommandContext): void {
  program
    .command('report')
    .argument('<file>', 'pipeline YAML file')
    .description(
      'write a self-contained HTML report: DAG, runs with knobs and metrics, interactive plots, artifact links; computes nothing',
    )
    .addOption(setOption())
    .addOption(storeOption())
    .option('--out <file>', 'HTML file to write (default: <store>/reports/<pipeline name>.html)')
    .option('--open', 'open the report with the platform opener (xdg-open, open, start) when there is one')
    .option(
      '--all-runs',
      'add a section of every training run of this pipeline in the store, whatever --set produced it (as grokpipe runs <file>)',
    )
    .action(async (file: string, opts: ReportOptions) => {
      const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set });
      const { writeReport } = await import('../report/build.js');
      const report = await writeReport(pipeline, new Store(opts.store), {
        out: opts.out,
        allRuns: Boolean(opts.allRuns),
      });
      ctx.stdout.write(`${report.file}\n`);
      if (opts.open) {
        const { openFile } = await import('../report/open.js');
        const problem = await openFile(report.file);
        if (problem) ctx.stderr.write(`could not open the report (${problem}); open ${report.file} in a browser\n`);
      }
    });
}

/**
 * `grokpipe dag <file> [--format mermaid|dot|text]`: the expanded stage-run graph, each run once
 * (a stage shared by a sweep is one node). `--json` prints `{nodes: [{id, stage, matrix}],
 * edges: [[from, to]]}` instead. Reads no store.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { DAG_FORMATS, formatDag } from '../engine/terminal/dag-format.js';
import type { DagFormat } from '../engine/terminal/dag-format.js';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import type { CommandContext } from './context.js';
import { jsonOption, setOption } from './options.js';

interface DagOptions {
  set: string[];
  format: DagFormat;
  json?: boolean;
}

/** Registers `dag` on `program`. */
export function registerDag(program: Command, ctx: CommandContext): void {
  program
    .command('dag')
    .argument('<file>', 'pipeline YAML file')
    .description('print the expanded DAG of stage runs (shared stages once)')
    .addOption(new Option('--format <format>', 'output format').choices(DAG_FORMATS).default('text'))
    .addOption(setOption('override a knob (repeatable), as for run'))
    .addOption(jsonOption('print {nodes, edges} as JSON'))
    .action((file: string, opts: DagOptions) => {
      ctx.setJson(Boolean(opts.json));
      const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set });
      if (opts.json) {
        const nodes = pipeline.runs.map((r) => ({
          id: r.id,
          stage: r.stage.name,
          stage_id: r.stageId,
          matrix: r.matrix,
        }));
        const edges = pipeline.runs.flatMap((r) => r.inputs.map((i) => [i.id, r.id]));
        ctx.stdout.write(`${JSON.stringify({ nodes, edges })}\n`);
      } else {
        ctx.stdout.write(formatDag(pipeline.runs, opts.format));
      }
      ctx.setExitCode(0);
    });
}

/**
 * `grokpipe why <file> [stage-run]`: for each run that would recompute, one line naming its root
 * cause against the nearest cached entry of the same stage type (`engine/explain/cause.ts`), e.g.
 * `scores[seed=1]: upstream model[seed=1] changed (with.max_steps 500 -> 800)`. Computes nothing,
 * writes nothing.
 *
 * Undeclared inputs are reported beside: when the nearest entry (or a cached entry) was computed
 * with another backend or numeric environment than this invocation asks for, the line says so
 * (`[not in key: backend wasm -> tensorflow]`); those differences never cause a recompute.
 */
import type { Command } from 'commander';
import { currentEnvironment, environmentChanges } from '../engine/cache/environment.js';
import { InputError } from '../engine/errors.js';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import { planRuns } from '../engine/explain/plan.js';
import type { PlannedRun } from '../engine/explain/plan.js';
import type { RunOptions } from '../engine/stage.js';
import { Store } from '../engine/cache/store.js';
import { formatList } from '../engine/explain/why.js';
import type { BackendRequest } from '../models/backend-names.js';
import type { CommandContext } from './context.js';
import type { PipelineOptions } from './options.js';
import { backendOption, jsonOption, setOption, storeOption } from './options.js';

interface WhyOptions extends PipelineOptions {
  backend: BackendRequest;
}

/** One line of `why`, as in `--json`. */
export interface WhyLine {
  readonly id: string;
  readonly stage: string;
  readonly key: string | null;
  readonly status: 'planned' | 'cached';
  /** Why it would run (empty for cached). */
  readonly reason: string;
  /** Root causes: `{id, reason}` of each run at the root. */
  readonly roots: readonly { readonly id: string; readonly reason: string }[];
  /** Undeclared inputs that differ from the nearest (or cached) entry. */
  readonly environment: readonly string[];
}

/** Registers `why` on `program`. */
export function registerWhy(program: Command, ctx: CommandContext): void {
  program
    .command('why')
    .argument('<file>', 'pipeline YAML file')
    .argument('[stage-run]', 'only this run (`model[seed=1]`) or stage (`model`)')
    .description('say why each run would recompute, naming the root cause; computes nothing')
    .addOption(storeOption())
    .addOption(jsonOption())
    .addOption(setOption())
    .addOption(backendOption('TensorFlow.js backend the runs would ask for'))
    .action(async (file: string, target: string | undefined, opts: WhyOptions) => {
      ctx.setJson(Boolean(opts.json));
      const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set });
      const plan = await planRuns(pipeline.runs, new Store(opts.store));
      const lines = whyLines(plan, target, { backend: opts.backend });
      if (opts.json) {
        ctx.stdout.write(`${JSON.stringify({ runs: lines })}\n`);
      } else {
        ctx.stdout.write(formatWhy(lines, plan.length, target));
      }
      ctx.setExitCode(0);
    });
}

/**
 * The lines of `why`: every planned run (or the runs `target` names, cached ones included), and
 * cached runs whose entry was computed in another environment.
 * @throws InputError when `target` names no run.
 */
export function whyLines(plan: readonly PlannedRun[], target: string | undefined, options: RunOptions): WhyLine[] {
  let chosen = plan;
  if (target !== undefined) {
    chosen = plan.filter((p) => p.run.id === target);
    if (chosen.length === 0) chosen = plan.filter((p) => p.run.stageId === target);
    if (chosen.length === 0) {
      throw new InputError([
        {
          where: target,
          path: '',
          message: `no stage run or stage "${target}" in the pipeline (runs: ${formatList(
            plan.map((p) => p.run.id),
            5,
          )})`,
        },
      ]);
    }
  }
  const env = currentEnvironment({ backend: options.backend ?? 'auto' });
  const out: WhyLine[] = [];
  for (const p of chosen) {
    const entry = p.status === 'cached' ? p.manifest : p.nearest;
    const environment = entry ? environmentChanges(entry, env) : [];
    if (p.status === 'cached' && target === undefined && environment.length === 0) continue;
    out.push({
      id: p.run.id,
      stage: p.run.stage.name,
      key: p.key,
      status: p.status,
      reason: p.reason,
      roots: p.roots ?? [],
      environment,
    });
  }
  return out;
}

/** The text form: `id: reason [not in key: ...]`, one line each, or a line saying all is cached. */
export function formatWhy(lines: readonly WhyLine[], total: number, target?: string): string {
  const planned = lines.filter((l) => l.status === 'planned');
  const out: string[] = [];
  for (const l of lines) {
    const note = l.environment.length > 0 ? ` [not in key: ${l.environment.join(', ')}]` : '';
    if (l.status === 'planned') out.push(`${l.id}: ${l.reason}${note}`);
    else out.push(`${l.id}: cached (${(l.key ?? '').slice(0, 12)})${note}`);
  }
  if (planned.length === 0 && target === undefined)
    out.unshift(`nothing would recompute: all ${total} runs are cached`);
  return `${out.join('\n')}\n`;
}

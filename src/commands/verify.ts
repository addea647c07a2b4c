/**
 * `grokpipe verify <file> [--sample K | --all] [--bytes-only] [--repair] [--ensemble auto|off]`:
 * the reproducibility check. Checks the byte hashes of the selected cached runs (all by default, or K at random), recomputes each
 * into a scratch folder from the store's cached inputs and compares content hashes output by
 * output, tables column by column (`engine/explain/verify.ts`). Runs that are not cached are listed as not
 * verifiable and do not fail the check.
 *
 * `--repair` then removes the entries found corrupt or mismatching (`engine/cache/repair.ts`), so
 * that the next `run` recomputes them.
 *
 * Exit codes: 0 all verified runs match, 1 a mismatch, a corrupt file or a failed recomputation
 * (with `--repair` too: the store was wrong), 2 bad input, 130 interrupted.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { createColors } from 'picocolors';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import { planRuns } from '../engine/explain/plan.js';
import { PlainReporter } from '../engine/terminal/progress.js';
import { removeCondemned } from '../engine/cache/repair.js';
import type { RemovedEntry } from '../engine/cache/repair.js';
import { Store } from '../engine/cache/store.js';
import { assertStoreWritable } from '../engine/cache/store-access.js';
import { isFailure, sampleCached, verifyRuns } from '../engine/explain/verify.js';
import type { VerifyResult } from '../engine/explain/verify.js';
import type { BackendRequest } from '../models/backend-names.js';
import type { CommandContext } from './context.js';
import { listenForInterrupt, localExecutor, threadsPerRun } from './execution.js';
import type { EnsembleOptions, PipelineOptions, TimestampOptions } from './options.js';
import {
  backendOption,
  ensembleOptions,
  groupingOf,
  jobsOption,
  jsonOption,
  logTimestampsOptions,
  positiveInteger,
  setOption,
  storeOption,
  timestampsOf,
} from './options.js';

interface VerifyCommandOptions extends PipelineOptions, EnsembleOptions, TimestampOptions {
  sample?: number;
  all?: boolean;
  bytesOnly?: boolean;
  repair?: boolean;
  jobs: number;
  backend: BackendRequest;
}

/** Registers `verify` on `program`. */
export function registerVerify(program: Command, ctx: CommandContext): void {
  const timestamps = logTimestampsOptions();
  const ensemble = ensembleOptions();
  program
    .command('verify')
    .argument('<file>', 'pipeline YAML file')
    .description(
      'recompute cached stage runs into a scratch folder and compare with the store; exit 1 on any difference',
    )
    .addOption(storeOption())
    .addOption(jsonOption())
    .addOption(setOption())
    .addOption(
      new Option('--sample <k>', 'verify k cached runs picked at random').argParser(positiveInteger).conflicts('all'),
    )
    .addOption(new Option('--all', 'verify every cached run (the default)').conflicts('sample'))
    .option('--bytes-only', 'only check stored files against their byte hashes; recompute nothing')
    .option(
      '--repair',
      'remove the entries found corrupt or different from their recomputation, so that the next run recomputes them',
    )
    .addOption(jobsOption('recomputations at once', 1))
    .addOption(backendOption('TensorFlow.js backend for recomputed training'))
    .addOption(ensemble[0])
    .addOption(ensemble[1])
    .addOption(timestamps[0])
    .addOption(timestamps[1])
    .action(async (file: string, opts: VerifyCommandOptions) => {
      ctx.setJson(Boolean(opts.json));
      const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set });
      const store = new Store(opts.store);
      if (opts.repair) assertStoreWritable(store.root, 'verify --repair removes the entries it condemns', opts.store);
      const plan = await planRuns(pipeline.runs, store);
      const selected = opts.sample !== undefined ? sampleCached(plan, opts.sample) : new Set(plan.map((p) => p.run));
      const executor = localExecutor(opts.jobs, ctx);
      const interrupt = listenForInterrupt(ctx, (controller) => controller.abort(new Error('interrupted')));
      let results: VerifyResult[];
      try {
        results = await verifyRuns(plan, selected, {
          store,
          executor,
          jobs: opts.jobs,
          options: { backend: opts.backend, threads: threadsPerRun(opts.jobs) },
          signal: interrupt.signal,
          bytesOnly: Boolean(opts.bytesOnly),
          grouping: groupingOf(opts, opts.jobs),
          reporter: new PlainReporter(ctx.stderr, undefined, { timestamps: timestampsOf(opts, ctx).on }),
        });
      } catch (err) {
        if (!interrupt.signal.aborted) throw err;
        ctx.stderr.write('verify interrupted\n');
        ctx.setExitCode(130);
        return;
      } finally {
        interrupt.dispose();
      }
      const repaired = opts.repair ? await removeCondemned(store, results) : undefined;
      if (opts.json)
        ctx.stdout.write(`${JSON.stringify({ ...verifyJson(results), ...(repaired ? { repaired } : {}) })}\n`);
      else ctx.stdout.write(formatVerify(results, ctx.color) + (repaired ? formatRepaired(repaired) : ''));
      ctx.setExitCode(results.some((r) => isFailure(r.status)) ? 1 : 0);
    });
}

/** The `--json` document: `{runs: [{id, stage, key, status, seconds, problems, reason?}], summary}`. */
export function verifyJson(results: readonly VerifyResult[]): object {
  return {
    runs: results.map((r) => ({
      id: r.run.id,
      stage: r.run.stage.name,
      key: r.key,
      status: r.status,
      seconds: Math.round(r.seconds * 1000) / 1000,
      problems: r.problems,
      ...(r.reason ? { reason: r.reason } : {}),
    })),
    summary: summary(results),
  };
}

function summary(results: readonly VerifyResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
}

/** One line per run (`match`, `MISMATCH file: column ...`, `not cached`), then a summary line. */
export function formatVerify(results: readonly VerifyResult[], color: boolean): string {
  const pc = createColors(color);
  const width = results.reduce((w, r) => Math.max(w, r.run.id.length), 0);
  const lines: string[] = [];
  for (const r of results) {
    const id = r.run.id.padEnd(width);
    switch (r.status) {
      case 'match':
        lines.push(`${pc.green('match    ')} ${id}  ${r.seconds.toFixed(2)} s`);
        break;
      case 'intact':
        lines.push(`${pc.green('intact   ')} ${id}  bytes match the manifest`);
        break;
      case 'uncached':
        lines.push(`${pc.yellow('uncached ')} ${id}  not verifiable: ${r.reason ?? 'not cached'}`);
        break;
      case 'failed':
        lines.push(`${pc.red('FAILED   ')} ${id}  recomputation failed: ${r.reason ?? ''}`);
        break;
      default: {
        const label = r.status === 'mismatch' ? 'MISMATCH ' : 'CORRUPT  ';
        lines.push(`${pc.red(label)} ${id}${r.reason ? `  (${r.reason})` : ''}`);
        for (const p of r.problems) lines.push(`          ${p.file}: ${p.message}`);
      }
    }
  }
  const s = summary(results);
  const parts = Object.entries(s).map(([k, v]) => `${v} ${k}`);
  const failed = results.filter((r) => isFailure(r.status)).length;
  lines.push(
    `${failed > 0 ? pc.red('verify failed') : pc.green('verify passed')}: ${results.length} runs checked (${parts.join(', ') || 'none'})`,
  );
  return `${lines.join('\n')}\n`;
}

/** One line per entry `--repair` removed, or that nothing needed it. */
export function formatRepaired(removed: readonly RemovedEntry[]): string {
  if (removed.length === 0) return 'repair: nothing to remove\n';
  const lines = removed.map((r) => `repair: removed ${r.stage}/${r.key.slice(0, 12)} (${r.id})`);
  return `${[...lines, `the next run recomputes ${removed.length === 1 ? 'it' : 'them'}`].join('\n')}\n`;
}

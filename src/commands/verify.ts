/**
 * `grokpipe verify <file> [--sample K | --all] [--bytes-only] [--repair]`: the reproducibility
 * check. Checks the byte hashes of the selected cached runs (all by default, or K at random), recomputes each
 * into a scratch folder from the store's cached inputs and compares content hashes output by
 * output, tables column by column (`engine/verify.ts`). Runs that are not cached are listed as not
 * verifiable and do not fail the check.
 *
 * `--repair` then removes the entries found corrupt or mismatching (`engine/repair.ts`), so that
 * the next `run` recomputes them.
 *
 * Exit codes: 0 all verified runs match, 1 a mismatch, a corrupt file or a failed recomputation
 * (with `--repair` too: the store was wrong), 2 bad input, 130 interrupted.
 */
import { availableParallelism } from 'node:os';
import { Option } from 'commander';
import type { Command } from 'commander';
import { createColors } from 'picocolors';
import type { Executor } from '../engine/executor.js';
import { InlineExecutor } from '../engine/executor-inline.js';
import { ProcessExecutor } from '../engine/executor-process.js';
import { compilePipeline } from '../engine/pipeline.js';
import { planRuns } from '../engine/plan.js';
import { PlainReporter } from '../engine/progress.js';
import { removeCondemned } from '../engine/repair.js';
import type { RemovedEntry } from '../engine/repair.js';
import { Store } from '../engine/store.js';
import { assertStoreWritable } from '../engine/store-access.js';
import { isFailure, sampleCached, verifyRuns } from '../engine/verify.js';
import type { VerifyResult } from '../engine/verify.js';
import type { CommandContext, PipelineOptions } from './context.js';
import { pipelineOptions, positiveInt } from './context.js';
import { BACKEND_REQUESTS } from '../models/backend-names.js';
import type { BackendRequest } from '../models/backend-names.js';


interface VerifyCommandOptions extends PipelineOptions {
  sample?: number;
  all?: boolean;
  bytesOnly?: boolean;
  repair?: boolean;
  jobs: number;
  backend: BackendRequest;
}

/** Registers `verify` on `program`. */
export function registerVerify(program: Command, ctx: CommandContext): void {
  pipelineOptions(
    program
      .command('verify')
      .argument('<file>', 'pipeline YAML file')
      .description('recompute cached stage runs into a scratch folder and compare with the store; exit 1 on any difference'),
  )
    .addOption(new Option('--sample <k>', 'verify k cached runs picked at random').argParser(positiveInt).conflicts('all'))
    .addOption(new Option('--all', 'verify every cached run (the default)').conflicts('sample'))
    .option('--bytes-only', 'only check stored files against their byte hashes; recompute nothing')
    .option('--repair', 'remove the entries found corrupt or different from their recomputation, so that the next run recomputes them')
    .option('--jobs <n>', 'recomputations at once', positiveInt, 1)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend for recomputed training').choices(BACKEND_REQUESTS).default('auto'))
    .action(async (file: string, opts: VerifyCommandOptions) => {
      ctx.setJson(Boolean(opts.json));
      const pipeline = compilePipeline(file, ctx.registry(), { sets: opts.set });
      const store = new Store(opts.store);
      if (opts.repair) assertStoreWritable(store.root, 'verify --repair removes the entries it condemns', opts.store);
      const plan = await planRuns(pipeline.runs, store);
      const selected = opts.sample !== undefined ? sampleCached(plan, opts.sample) : new Set(plan.map((p) => p.run));
      const workerCommand = ctx.workerCommand();
      const executor: Executor =
        opts.jobs > 1 && workerCommand !== null ? new ProcessExecutor(workerCommand) : new InlineExecutor(ctx.registry());
      const controller = new AbortController();
      const onSigint = (): void => controller.abort(new Error('interrupted'));
      const onExternal = (): void => controller.abort(ctx.signal?.reason);
      ctx.signal?.addEventListener('abort', onExternal, { once: true });
      process.on('SIGINT', onSigint);
      let results: VerifyResult[];
      try {
        results = await verifyRuns(plan, selected, {
          store,
          executor,
          jobs: opts.jobs,
          options: { backend: opts.backend, threads: Math.max(1, Math.floor(availableParallelism() / opts.jobs)) },
          signal: controller.signal,
          bytesOnly: Boolean(opts.bytesOnly),
          reporter: new PlainReporter(ctx.stderr),
        });
      } catch (err) {
        if (!controller.signal.aborted) throw err;
        ctx.stderr.write('verify interrupted\n');
        ctx.setExitCode(130);
        return;
      } finally {
        process.off('SIGINT', onSigint);
        ctx.signal?.removeEventListener('abort', onExternal);
      }
      const repaired = opts.repair ? await removeCondemned(store, results) : undefined;
      if (opts.json) ctx.stdout.write(`${JSON.stringify({ ...verifyJson(results), ...(repaired ? { repaired } : {}) })}\n`);
      else ctx.stdout.write(formatVerify(results, ctx.tty) + (repaired ? formatRepaired(repaired) : ''));
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
  lines.push(`${failed > 0 ? pc.red('verify failed') : pc.green('verify passed')}: ${results.length} runs checked (${parts.join(', ') || 'none'})`);
  return `${lines.join('\n')}\n`;
}

/** One line per entry `--repair` removed, or that nothing needed it. */
export function formatRepaired(removed: readonly RemovedEntry[]): string {
  if (removed.length === 0) return 'repair: nothing to remove\n';
  const lines = removed.map((r) => `repair: removed ${r.stage}/${r.key.slice(0, 12)} (${r.id})`);
  return `${[...lines, `the next run recomputes ${removed.length === 1 ? 'it' : 'them'}`].join('\n')}\n`;
}

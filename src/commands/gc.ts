/**
 * `grokpipe gc [--keep-pipelines FILE...] [--older-than DAYS] [--dry-run]`: removes artifacts no
 * kept pipeline would reuse (and/or unused for DAYS), damaged entries, and what dead processes
 * left (temporaries, locks, checkpoints of finished keys); prints each item and what it frees.
 * Without `--keep-pipelines` or `--older-than` no complete artifact is removed (see
 * `engine/cache/gc.ts` for the exact rules).
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { relative } from 'node:path';
import prettyBytes from 'pretty-bytes';
import { collectGarbage } from '../engine/cache/gc.js';
import type { GcResult } from '../engine/cache/gc.js';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import { planRuns } from '../engine/explain/plan.js';
import { Store } from '../engine/cache/store.js';
import { assertStoreWritable, storeReadOnly } from '../engine/cache/store-access.js';
import type { CommandContext } from './context.js';
import { jsonOption, storeOption } from './options.js';

interface GcCommandOptions {
  store: string;
  json?: boolean;
  keepPipelines?: string[];
  olderThan?: number;
  dryRun?: boolean;
}

const DAY_MS = 86_400_000;

function days(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of days >= 0');
  return n;
}

/** Registers `gc` on `program`. */
export function registerGc(program: Command, ctx: CommandContext): void {
  program
    .command('gc')
    .description('remove artifacts the kept pipelines would not reuse, and leftovers of dead processes')
    .addOption(storeOption())
    .addOption(jsonOption())
    .option('--keep-pipelines <files...>', 'pipeline files whose reusable artifacts are kept; the rest may go')
    .option('--older-than <days>', 'remove only what was last used more than this many days ago', days)
    .option('--dry-run', 'list what would be removed; remove nothing')
    .action(async (opts: GcCommandOptions) => {
      ctx.setJson(Boolean(opts.json));
      const store = new Store(opts.store);
      const keep = opts.keepPipelines
        ? await Promise.all(opts.keepPipelines.map((f) => planRuns(compilePipeline(f, ctx.registry()).runs, store)))
        : undefined;
      // A store that cannot be written: list what would go, and refuse when that is anything.
      const readOnly = !opts.dryRun && storeReadOnly(store.root) !== undefined;
      const listed = await collectGarbage(store, {
        ...(keep ? { keep } : {}),
        ...(opts.olderThan !== undefined ? { olderThanMs: opts.olderThan * DAY_MS } : {}),
        dryRun: Boolean(opts.dryRun) || readOnly,
      });
      const n = listed.removed.length;
      if (readOnly && n > 0) {
        assertStoreWritable(
          store.root,
          `gc would remove ${n} item${n === 1 ? '' : 's'} (--dry-run lists them)`,
          opts.store,
        );
      }
      const result = readOnly ? { ...listed, dryRun: false } : listed;
      if (opts.json) ctx.stdout.write(`${JSON.stringify(gcJson(result, store.root))}\n`);
      else ctx.stdout.write(formatGc(result, store.root, keep === undefined && opts.olderThan === undefined));
      ctx.setExitCode(0);
    });
}

/** `{dry_run, bytes, kept_artifacts, removed: [{kind, path, stage?, key?, bytes, why}]}`. */
export function gcJson(result: GcResult, root: string): object {
  return {
    dry_run: result.dryRun,
    bytes: result.bytes,
    kept_artifacts: result.keptArtifacts,
    removed: result.removed.map((r) => ({ ...r, path: relative(root, r.path) })),
  };
}

/** One line per item (`removed artifact gen/3fa2c1d0e9ab  1.2 kB  why`), then the total. */
export function formatGc(result: GcResult, root: string, leftoversOnly: boolean): string {
  const verb = result.dryRun ? 'would remove' : 'removed';
  const lines = result.removed.map((r) => {
    const what = r.stage && r.key ? `${r.stage}/${r.key.slice(0, 12)}` : relative(root, r.path);
    return `${verb} ${r.kind} ${what}  ${prettyBytes(r.bytes)}  (${r.why})`;
  });
  const counts = new Map<string, number>();
  for (const r of result.removed) counts.set(r.kind, (counts.get(r.kind) ?? 0) + 1);
  const detail = [...counts].map(([k, n]) => `${n} ${k}${n === 1 ? '' : 's'}`).join(', ');
  lines.push(
    `${result.dryRun ? 'would free' : 'freed'} ${prettyBytes(result.bytes)}${detail ? ` (${detail})` : ''}; ${result.keptArtifacts} artifact${result.keptArtifacts === 1 ? '' : 's'} kept`,
  );
  if (leftoversOnly)
    lines.push('no --keep-pipelines or --older-than given: only leftovers were considered, no complete artifact');
  return `${lines.join('\n')}\n`;
}

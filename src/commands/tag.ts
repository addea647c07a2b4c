/**
 * `grokpipe tag <run | key> <tag...> [--remove] [--file pipeline.yaml]`: adds tags to a run (or
 * removes them), as MLflow's and W&B's run tags. A run is named by its name (`run --name`), its
 * key or a unique key prefix, or with `--file` its stage-run id in that pipeline. Tags live in the
 * entry's sidecar (`engine/cache/meta.ts`), outside the artifact: no key or content hash changes.
 * `grokpipe runs` shows them and filters on them (`--where tag=<tag>`).
 *
 * Exit codes: 0 done, 2 when the run is not found (or several match) or a tag is malformed.
 */
import type { Command } from 'commander';
import { InputError } from '../engine/errors.js';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import { planRuns } from '../engine/explain/plan.js';
import { readAllMeta, readMeta, updateMeta } from '../engine/cache/meta.js';
import { Store } from '../engine/cache/store.js';
import type { CommandContext } from './context.js';
import type { PipelineOptions } from './options.js';
import { jsonOption, setOption, storeOption } from './options.js';

interface TagOptions extends PipelineOptions {
  remove?: boolean;
  file?: string;
  stage: string;
}

/** A tag: no spaces and no commas (so that `--where tag=a` and CSV cells stay unambiguous). */
const TAG = /^[^\s,]+$/;

/**
 * The entry a target names: a run name (when several entries of different stage types have it,
 * the one of `stage`), else a key or key prefix, or with `file` a stage-run id of that pipeline.
 * @throws InputError when nothing or several entries match.
 */
async function resolveTarget(
  store: Store,
  target: string,
  plan: Awaited<ReturnType<typeof planRuns>> | undefined,
  stage: string,
): Promise<{ stage: string; key: string }> {
  const { resolveEntry } = await import('../engine/terminal/show.js');
  if (plan) return resolveEntry(store, target, plan);
  // Sidecars outlive entries that gc removed: only names of entries still in the store count.
  const present = async (id: string) => (await store.lookup(...(id.split('/') as [string, string]))).hit;
  const candidates = [...(await readAllMeta(store.root))].filter(([, m]) => m.name === target).map(([id]) => id);
  let named = (await Promise.all(candidates.map(async (id) => ((await present(id)) ? [id] : [])))).flat();
  const ofStage = named.filter((id) => id.startsWith(`${stage}/`));
  if (named.length > 1 && ofStage.length > 0) named = ofStage;
  if (named.length > 1) {
    throw new InputError([
      { where: target, path: '', message: `names ${named.length} runs (${named.join(', ')}); give a key` },
    ]);
  }
  if (named.length === 1) {
    const [stage, key] = named[0].split('/');
    return { stage, key };
  }
  return resolveEntry(store, target, undefined);
}

/** Registers `tag` on `program`. */
export function registerTag(program: Command, ctx: CommandContext): void {
  program
    .command('tag')
    .argument('<run>', 'run name, key or key prefix (4+ hex digits), or stage-run id with --file')
    .argument('<tags...>', 'tags to add (no spaces or commas)')
    .description('add tags to a run (or --remove them); grokpipe runs shows them')
    .option('--remove', 'remove these tags instead')
    .option('--file <pipeline>', 'pipeline YAML file that the stage-run id belongs to')
    .option('--stage <type>', 'stage type of the run a name means, when runs of several types have it', 'train')
    .addOption(setOption('override a knob of --file (repeatable), as for run'))
    .addOption(storeOption())
    .addOption(jsonOption('print {"stage", "key", "name", "tags"} on stdout'))
    .action(async (target: string, tags: string[], opts: TagOptions) => {
      ctx.setJson(Boolean(opts.json));
      const bad = tags.filter((t) => !TAG.test(t));
      if (bad.length > 0) {
        throw new InputError(
          bad.map((t) => ({ where: `tag "${t}"`, path: '', message: 'a tag has no spaces or commas' })),
        );
      }
      const store = new Store(opts.store);
      const plan = opts.file
        ? await planRuns(compilePipeline(opts.file, ctx.registry(), { sets: opts.set }).runs, store)
        : undefined;
      const { stage, key } = await resolveTarget(store, target, plan, opts.stage);
      await updateMeta(store.root, stage, key, (m) => ({
        ...m,
        tags: opts.remove ? m.tags.filter((t) => !tags.includes(t)) : [...m.tags, ...tags],
      }));
      const meta = await readMeta(store.root, stage, key);
      if (opts.json) {
        ctx.stdout.write(`${JSON.stringify({ stage, key, name: meta.name ?? null, tags: meta.tags })}\n`);
      } else {
        const name = meta.name ? ` (${meta.name})` : '';
        ctx.stdout.write(
          `${stage} ${key.slice(0, 12)}${name}: ${meta.tags.length > 0 ? meta.tags.join(', ') : 'no tags'}\n`,
        );
      }
      ctx.setExitCode(0);
    });
}

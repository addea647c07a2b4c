/**
 * `grokpipe export <stage-run | key | key-prefix> --format hf --out DIR [--step N] [--file pipeline.yaml]`:
 * a train run's model (its final weights, or with `--step` the checkpoint it kept at that step,
 * `checkpoints/step-<7 digits>.safetensors`) as a folder that Hugging Face `transformers` loads
 * with `from_pretrained` (docs/python.md): `config.json` and `model.safetensors` (`models/arch/hf.ts`), and the
 * vocabulary of the run's tokenize input as a tokenizer (`tokenizer.json`, `tokenizer_config.json`,
 * `special_tokens_map.json`; `task/hf-tokenizer.ts`). The run is named as `show` names it: a
 * stage-run id with `--file`, a key, or a unique key prefix.
 *
 * Exit 2, with nothing written, when the target names no cached run or a run of another stage,
 * the run kept no checkpoint at `--step`, the run's files or its tokenize input are missing or damaged, or `--out` is a file or a
 * non-empty folder. The folder is written beside `--out` under a temporary name and renamed into
 * place when complete, so an interrupted export leaves no half folder at `--out`.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { InputError } from '../engine/errors.js';
import { compilePipeline } from '../engine/pipeline/pipeline.js';
import { planRuns } from '../engine/explain/plan.js';
import { Store } from '../engine/cache/store.js';
import { checkArtifactBytes, formatByteProblems } from '../engine/cache/integrity.js';
import { inputArtifact } from '../engine/exec/job.js';
import type { ShownEntry } from '../engine/terminal/show.js';
import { readVocab } from '../stages/examples.js';
import { keptCheckpointFile, keptCheckpointStep, WEIGHTS_FILE } from '../stages/files.js';
import { hfTokenizerFiles } from '../task/hf-tokenizer.js';
import { END_ID, PAD_ID } from '../task/vocab.js';
import type { CommandContext } from './context.js';
import type { PipelineOptions } from './options.js';
import { jsonOption, setOption, storeOption } from './options.js';

/** Export formats (`--format`). */
export const EXPORT_FORMATS = ['hf'] as const;

interface ExportOptions extends PipelineOptions {
  format: (typeof EXPORT_FORMATS)[number];
  out: string;
  step?: number;
  file?: string;
}

/** Parses `--step`: a training step, an integer ≥ 0. @throws InvalidArgumentError for anything else. */
function stepNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('must be a step, an integer >= 0');
  return n;
}

/** Registers `export` on `program`. */
export function registerExport(program: Command, ctx: CommandContext): void {
  program
    .command('export')
    .argument('<target>', 'train run: stage-run id (with --file), key, or key prefix (4+ hex digits)')
    .description("write a train run's model as a Hugging Face transformers folder")
    .addOption(
      new Option('--format <format>', 'hf: config.json, model.safetensors and tokenizer files')
        .choices(EXPORT_FORMATS)
        .default('hf'),
    )
    .requiredOption('--out <dir>', 'folder to write (must not exist, or be empty)')
    .option('--step <n>', 'the checkpoint the run kept at step n (keep_checkpoints), not its final weights', stepNumber)
    .option('--file <pipeline>', 'pipeline YAML file that the stage-run id belongs to')
    .addOption(storeOption())
    .addOption(setOption())
    .addOption(jsonOption())
    .action(async (target: string, opts: ExportOptions) => {
      ctx.setJson(Boolean(opts.json));
      const out = resolve(opts.out);
      await checkOut(out);
      const store = new Store(opts.store);
      const plan = opts.file
        ? await planRuns(compilePipeline(opts.file, ctx.registry(), { sets: opts.set }).runs, store)
        : undefined;
      const { resolveEntry } = await import('../engine/terminal/show.js');
      const entry = await resolveEntry(store, target, plan);
      const files = await hfFolder(store, entry, target, opts.step);
      await writeFolder(out, files.files);
      const names = [...files.files.keys()];
      if (opts.json) {
        ctx.stdout.write(
          `${JSON.stringify({ dir: out, stage: entry.stage, key: entry.key, step: opts.step ?? null, arch: files.arch, files: names })}\n`,
        );
      } else {
        ctx.stdout.write(
          `exported ${entry.stage}/${entry.key.slice(0, 12)} (${files.arch}${opts.step === undefined ? '' : `, step ${opts.step}`}) to ${out}: ${names.join(', ')}\n`,
        );
      }
      ctx.setExitCode(0);
    });
}

/** An exit-2 error about `where`. */
function fail(where: string, message: string): never {
  throw new InputError([{ where, path: '', message }]);
}

/** @throws InputError when `out` is a file or a folder with anything in it. */
async function checkOut(out: string): Promise<void> {
  const s = await stat(out).catch(() => undefined);
  if (!s) return;
  if (!s.isDirectory()) fail('--out', `${out} exists and is not a folder`);
  const inside = await readdir(out);
  if (inside.length > 0) fail('--out', `${out} is not empty (${inside.length} entries); give a new or empty folder`);
}

/** The files of the exported folder, by name, and the architecture. */
interface HfFolder {
  readonly arch: string;
  readonly files: Map<string, Uint8Array>;
}

/**
 * Builds the folder's files from a train run (its final weights, or the checkpoint kept at `step`)
 * and its tokenize input, checking both artifacts' bytes against their manifests first.
 * @throws InputError (exit 2) for a run of another stage, no checkpoint kept at `step`, a missing
 *   or damaged artifact, or weights that no transformers class runs.
 */
async function hfFolder(store: Store, entry: ShownEntry, target: string, step?: number): Promise<HfFolder> {
  if (entry.stage !== 'train')
    fail(target, `names a run of stage ${entry.stage} (${entry.key.slice(0, 12)}); export takes a train run`);
  const weightsFile = step === undefined ? WEIGHTS_FILE : keptCheckpointFile(step);
  if (!entry.manifest.outputs.some((o) => o.name === weightsFile)) {
    const kept = entry.manifest.outputs.flatMap((o) => keptCheckpointStep(o.name) ?? []).sort((a, b) => a - b);
    fail(
      '--step',
      kept.length === 0
        ? `${target} kept no checkpoints (train's keep_checkpoints); export its final weights without --step`
        : `${target} kept no checkpoint at step ${step} (kept: ${kept.join(', ')})`,
    );
  }
  await checkBytes(entry.dir, entry, target);
  const vocabInput = entry.manifest.inputs.find((i) => i.stage === 'tokenize');
  if (!vocabInput) fail(target, 'the train run has no tokenize input to take the vocabulary from');
  const found = await store.lookup('tokenize', vocabInput.key);
  if (!found.hit)
    fail(
      target,
      `its vocabulary, tokenize run ${vocabInput.id} (${vocabInput.key.slice(0, 12)}), is not in the store ` +
        `(${found.reason}); run the pipeline again to recompute it`,
    );
  await checkBytes(found.dir, { stage: 'tokenize', key: vocabInput.key, manifest: found.manifest }, vocabInput.id);
  // Loaded here, not with the CLI: the architectures' mappings bring TF.js.
  const { toHuggingFace, HfExportError } = await import('../models/arch/hf.js');
  const tokens = await readVocab(
    inputArtifact({
      ...vocabInput,
      params: found.manifest.params,
      files: found.manifest.outputs.map((o) => o.name),
      dir: found.dir,
    }),
  );
  let model;
  try {
    model = toHuggingFace(await readFile(join(entry.dir, weightsFile)), { pad: PAD_ID, bos: null, eos: END_ID });
  } catch (err) {
    if (err instanceof HfExportError) fail(target, `cannot be exported to transformers: ${err.message}`);
    throw err;
  }
  const { vocab_size: vocabSize, seq_len: seqLen } = model.source;
  if (tokens.length !== vocabSize)
    fail(target, `the model has ${vocabSize} token ids but ${vocabInput.id}'s vocabulary ${tokens.length}`);
  const json = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
  const files = new Map<string, Uint8Array>([
    ['config.json', json(model.config)],
    ['model.safetensors', model.weights],
  ]);
  for (const [name, value] of Object.entries(hfTokenizerFiles(tokens, seqLen))) files.set(name, json(value));
  return { arch: model.source.arch, files };
}

/** @throws InputError when an output of the entry is missing or its bytes differ from the manifest's. */
async function checkBytes(dir: string, entry: Pick<ShownEntry, 'stage' | 'key' | 'manifest'>, where: string) {
  const problems = await checkArtifactBytes(dir, entry.manifest);
  if (problems.length > 0)
    fail(
      where,
      `${entry.stage}/${entry.key.slice(0, 12)} is damaged (${formatByteProblems(problems)}); ` +
        '`grokpipe gc` removes it, and a run recomputes it',
    );
}

/**
 * Writes `files` into a temporary folder beside `out`, then renames it to `out` (which must not
 * exist or be empty). On any failure the temporary folder is removed and `out` is left as it was.
 */
async function writeFolder(out: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  const tmp = await mkdtemp(join(dirname(out), `.${basename(out)}.tmp-`));
  try {
    for (const [name, bytes] of files) await writeFile(join(tmp, name), bytes);
    await chmod(tmp, 0o777 & ~process.umask()); // mkdtemp's 0700 → as mkdir would make it
    await rmdir(out).catch(() => undefined); // an empty folder (checked before), so that rename may take its place
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

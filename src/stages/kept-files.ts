/**
 * The train stage's kept checkpoints and final state (docs/design.md §4 "train"): each kept
 * checkpoint written as an output (`checkpoints/step-<7 digits>.safetensors`) and mirrored into the
 * checkpoint folder, the final training state into `state/`, and what a run that continues a
 * cached one takes from it. Shared by the stage's `run` and its group (`train.ts`).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { StageContext } from '../engine/stage.js';
import type { LanguageModel } from '../models/model.js';
import type { TrainOptions } from '../models/train/trainer.js';
import { FINAL_STATE_DIR, WEIGHTS_FILE, keptCheckpointFile } from './files.js';

/**
 * The kept checkpoints and the final state (see `train.ts`'s module comment). `options` are the trainer's:
 * each kept checkpoint is written as an output (and mirrored into `ctx.checkpointDir`), the final
 * state into `state/`, and with `ctx.continueFrom` training continues from that run's `state/`.
 * `prepare()` mirrors what a continued run takes from `ctx.continueFrom`; `finish()` then writes the kept checkpoints training did not hand over (the steps up to where it
 * resumed or continued): from the mirror, else from `ctx.continueFrom` (its kept checkpoints, and
 * its final weights for its last step).
 * @throws Error from `finish` when such a checkpoint is found nowhere.
 */
export function keptFiles<P>(
  ctx: StageContext<P>,
  steps: readonly number[],
  encode: (model: LanguageModel) => Promise<Uint8Array>,
): {
  options: Pick<TrainOptions, 'keep' | 'onFinalState' | 'continueFrom'>;
  prepare(): Promise<void>;
  finish(): Promise<void>;
} {
  const mirror = (step: number) =>
    ctx.checkpointDir && join(ctx.checkpointDir, `kept-${keptCheckpointFile(step).split('/')[1]}`);
  const written = new Set<number>();
  const from = ctx.continueFrom;
  const state = from?.files.find((f) => f.startsWith(`${FINAL_STATE_DIR}/`));
  const sources = (step: number) => [
    mirror(step),
    from?.files.includes(keptCheckpointFile(step)) ? from.path(keptCheckpointFile(step)) : undefined,
    from && step === from.params.max_steps ? from.path(WEIGHTS_FILE) : undefined,
  ];
  return {
    options: {
      keep: {
        steps,
        save: async (step, model) => {
          const bytes = await encode(model);
          await ctx.writeFile(keptCheckpointFile(step), bytes);
          written.add(step);
          const copy = mirror(step);
          if (copy) await writeAtomic(copy, bytes);
        },
      },
      onFinalState: async (files) => {
        for (const [name, bytes] of files) await ctx.writeFile(`${FINAL_STATE_DIR}/${name}`, bytes);
      },
      ...(from && state ? { continueFrom: dirname(from.path(state)) } : {}),
    },
    async prepare() {
      // A continued run interrupted later resumes from its own folder: keep what it took from `from` there.
      if (!from || !ctx.checkpointDir) return;
      for (const step of steps.filter((s) => s <= (from.params.max_steps as number))) {
        const bytes = await firstReadable(sources(step).slice(1));
        if (bytes) await writeAtomic(mirror(step) as string, bytes);
      }
    },
    async finish() {
      for (const step of steps.filter((s) => !written.has(s))) {
        const found = await firstReadable(sources(step));
        if (!found)
          throw new Error(
            `train: the checkpoint kept at step ${step} is lost: remove ${ctx.checkpointDir} to start over`,
          );
        await ctx.writeFile(keptCheckpointFile(step), found);
      }
    },
  };
}

/** The bytes of the first of `paths` that can be read, or undefined. */
async function firstReadable(paths: readonly (string | undefined)[]): Promise<Uint8Array | undefined> {
  for (const path of paths) {
    const bytes = path === undefined ? undefined : await readFile(path).catch(() => undefined);
    if (bytes) return bytes;
  }
  return undefined;
}

/**
 * Writes `bytes` to `path` (its folder created) through `<path>.tmp-<pid>` and a rename, the
 * checkpoint folder's naming for a file being written (the engine removes those of dead processes).
 */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

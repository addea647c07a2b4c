/**
 * Resumable training checkpoints: their format, the fingerprint that ties one to its run, their
 * atomic saving and their schedule.
 *
 * A checkpoint at step s is two files in the checkpoint folder: `checkpoint-<s, 9 digits>.safetensors`
 * (float32 tensors: `param.<name>`, `adam.m.<name>`, `adam.v.<name>` for every parameter, then
 * `train.loss_sum` and `train.accuracy_sum`, then with a gradient filter `grad_filter.ema.<name>`
 * for every parameter) and `checkpoint-<s>.json` (`CheckpointState`),
 * written last, so that its presence marks a complete checkpoint. Saving one removes the older
 * ones. A checkpoint is resumed only by a run of the same trajectory: same config (but the knobs
 * that do not change the state at a step, `maxSteps` among them) and same training data, by
 * fingerprint. The same two files, written elsewhere (`encodeCheckpoint`), hold a finished run's
 * final state, which a longer run of the same config continues (`trainer.ts`).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { AdamW } from '../adamw.js';
import { decodeSafetensors, encodeSafetensors } from '../safetensors.js';
import type { NamedTensor } from '../safetensors.js';
import type { CurveRow } from './evaluation.js';
import type { Examples, SamplerState } from './examples.js';

/** Version of the checkpoint format; a checkpoint of another version is ignored. */
export const CHECKPOINT_VERSION = 1;

/** The JSON half of a checkpoint. */
export interface CheckpointState {
  version: number;
  /** Optimizer steps done. */
  step: number;
  /** `fingerprint` of the run that saved it. */
  fingerprint: string;
  /** Where the data order stands. */
  sampler: SamplerState;
  /** Training batches summed in the accumulators since the last evaluation. */
  batches: number;
  /** The curve so far. */
  curve: CurveRow[];
}

/**
 * Identity of a run's training trajectory: a checkpoint from another config or data set is never
 * resumed. Hashes the config as JSON without the knobs that do not change the state at a step
 * (`evalBatchSize`, `checkpointEvery`, and `maxSteps`: the learning rate does not depend on it, so
 * the state after step s is the same for every `maxSteps` > s), then the training examples'
 * arrays (SHA-256, hex). A run may thus continue the final state of a shorter one (`trainer.ts`).
 */
export function fingerprint(
  config: { evalBatchSize?: number; checkpointEvery: number; maxSteps: number },
  train: Examples,
): string {
  const h = createHash('sha256');
  const { evalBatchSize: _e, checkpointEvery: _c, maxSteps: _m, ...rest } = config;
  h.update(JSON.stringify(rest));
  for (const a of [train.tokens, train.positions, train.targets])
    h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}

/** Whether to save a checkpoint after `step`: every `every` steps (0: never), but not after the last. */
export function isCheckpointStep(step: number, every: number, maxSteps: number): boolean {
  return every > 0 && step % every === 0 && step < maxSteps;
}

/**
 * One tensor of a checkpoint: its shape and how to read and write its float32 values (row-major).
 * A variable is one (`variableSlot`); so is a parameter's AdamW moment, which lives in a flat chunk.
 */
export interface StateSlot {
  shape: number[];
  read(): Promise<Float32Array>;
  write(values: Float32Array): void;
}

/** A variable as a checkpoint slot; with `member`, that member's slice of a stacked variable `[members, ...]`. */
export function variableSlot(v: tf.Variable, member?: number): StateSlot {
  if (member === undefined)
    return {
      shape: v.shape,
      read: async () => (await v.data()) as Float32Array,
      write: (values) => tf.tidy(() => v.assign(tf.tensor(values, v.shape, 'float32'))),
    };
  const size = v.size / v.shape[0];
  return {
    shape: v.shape.slice(1),
    read: async () => ((await v.data()) as Float32Array).slice(member * size, (member + 1) * size),
    write: (values) => {
      const all = (v.dataSync() as Float32Array).slice();
      all.set(values, member * size);
      tf.tidy(() => v.assign(tf.tensor(all, v.shape, 'float32')));
    },
  };
}

/**
 * The tensors a checkpoint holds, by their key in the file (order of the file): each parameter
 * with AdamW's moments, then the extra variables (`train.loss_sum`, `train.accuracy_sum`, a
 * gradient filter's `grad_filter.ema.<name>`), in the order given. With `member`, those of one
 * member of an ensemble (variables stacked `[members, ...]`), in the format and shapes of one
 * model's checkpoint: either resumes the other.
 */
export function checkpointVariables(
  params: ReadonlyMap<string, tf.Variable>,
  opt: AdamW,
  extra: Readonly<Record<string, tf.Variable>>,
  member?: number,
): Map<string, StateSlot> {
  const vars = new Map<string, StateSlot>();
  const moment = (which: 'm' | 'v', name: string, shape: number[]): StateSlot => ({
    shape,
    read: () => opt.readMoment(which, name, member),
    write: (values) => opt.writeMoment(which, name, values, member),
  });
  for (const [name, p] of params) {
    const slot = variableSlot(p, member);
    vars.set(`param.${name}`, slot);
    vars.set(`adam.m.${name}`, moment('m', name, slot.shape));
    vars.set(`adam.v.${name}`, moment('v', name, slot.shape));
  }
  for (const [key, v] of Object.entries(extra)) vars.set(key, variableSlot(v, member));
  return vars;
}

const pad = (step: number) => String(step).padStart(9, '0');

/**
 * Writes `bytes` to `path` through a temporary file `<path>.tmp-<pid>` and a rename (atomic on
 * POSIX). A failed write (ENOSPC) removes its temporary, so a full disk is not kept full; one left
 * by a killed process is removed by the engine's next run or `gc` (the checkpoint folder's naming).
 * @throws the file system error.
 */
function writeAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Steps of the complete checkpoints in `dir`, newest first. */
function checkpointSteps(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const set = new Set(names);
  return names
    .map((f) => /^checkpoint-(\d+)\.json$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && set.has(`checkpoint-${m[1]}.safetensors`))
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
}

/**
 * The two files of the checkpoint of `state.step` (stamped with `CHECKPOINT_VERSION`), by their
 * names in a checkpoint folder: `checkpoint-<step>.safetensors`, then `checkpoint-<step>.json`,
 * to be written in this order (the JSON marks the checkpoint complete).
 */
export async function encodeCheckpoint(
  variables: ReadonlyMap<string, StateSlot>,
  state: Omit<CheckpointState, 'version'>,
): Promise<[name: string, bytes: Uint8Array | string][]> {
  const tensors: [string, NamedTensor][] = [];
  for (const [key, v] of variables) tensors.push([key, { dtype: 'F32', shape: v.shape, data: await v.read() }]);
  const step = state.step;
  const json: CheckpointState = { version: CHECKPOINT_VERSION, ...state };
  return [
    [`checkpoint-${pad(step)}.safetensors`, encodeSafetensors(tensors, { step: String(step) })],
    [`checkpoint-${pad(step)}.json`, JSON.stringify(json)],
  ];
}

/**
 * Saves `variables` and `state` as the checkpoint of `state.step` in `dir` (created if missing;
 * `encodeCheckpoint`), then removes the older ones.
 */
export async function saveCheckpoint(
  dir: string,
  variables: ReadonlyMap<string, StateSlot>,
  state: Omit<CheckpointState, 'version'>,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of await encodeCheckpoint(variables, state)) writeAtomic(join(dir, name), bytes);
  for (const old of checkpointSteps(dir)) {
    if (old === state.step) continue;
    rmSync(join(dir, `checkpoint-${pad(old)}.json`), { force: true });
    rmSync(join(dir, `checkpoint-${pad(old)}.safetensors`), { force: true });
  }
}

/** The step of the newest complete checkpoint in `dir`, or -1 when there is none. */
export function newestCheckpointStep(dir: string): number {
  return checkpointSteps(dir)[0] ?? -1;
}

/** A checkpoint found and checked, not yet loaded: its state, and `load` to assign its tensors. */
export interface FoundCheckpoint {
  state: CheckpointState;
  /** Assigns the checkpoint's tensors to the variables (checked already: it does not fail on the file). */
  load(): void;
}

/**
 * The newest checkpoint in `dir` that this run made (same `fingerprint`, at most `maxSteps`),
 * with every tensor of `variables` present in it with its shape; the others and unreadable ones
 * are skipped (and logged). Nothing is assigned until `load` is called.
 * @returns it, or undefined when there is none.
 */
export function findCheckpoint(
  dir: string,
  run: { fingerprint: string; maxSteps: number },
  variables: ReadonlyMap<string, StateSlot>,
  log: (message: string) => void = () => {},
): FoundCheckpoint | undefined {
  for (const step of checkpointSteps(dir)) {
    try {
      const state = JSON.parse(readFileSync(join(dir, `checkpoint-${pad(step)}.json`), 'utf8')) as CheckpointState;
      if (
        state.version !== CHECKPOINT_VERSION ||
        state.fingerprint !== run.fingerprint ||
        state.step !== step ||
        step > run.maxSteps
      ) {
        log(`ignoring checkpoint at step ${step}: made by another run configuration`);
        continue;
      }
      const st = decodeSafetensors(readFileSync(join(dir, `checkpoint-${pad(step)}.safetensors`)));
      // Every tensor is checked before any is assigned: a bad file leaves the run's state untouched.
      const values = [...variables].map(([key, v]) => {
        const t = st.tensors.get(key);
        if (!t || t.dtype !== 'F32' || t.shape.join() !== v.shape.join())
          throw new Error(`checkpoint lacks ${key} ${JSON.stringify(v.shape)}`);
        return [v, t.data as Float32Array] as const;
      });
      return { state, load: () => values.forEach(([v, data]) => v.write(data)) };
    } catch (err) {
      log(`ignoring unreadable checkpoint at step ${step}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

/**
 * Loads the newest checkpoint in `dir` that this run made (`findCheckpoint`) into `variables`.
 * @returns its state, or undefined when there is none (the variables are then untouched).
 */
export function loadCheckpoint(
  dir: string,
  run: { fingerprint: string; maxSteps: number },
  variables: ReadonlyMap<string, StateSlot>,
  log: (message: string) => void = () => {},
): CheckpointState | undefined {
  const found = findCheckpoint(dir, run, variables, log);
  if (!found) return undefined;
  found.load();
  log(`resumed from the checkpoint at step ${found.state.step}`);
  return found.state;
}

/**
 * The furthest checkpoint of a run among `sources` (its own checkpoint folder, a finished shorter
 * run's final state), as `findCheckpoint` with each source's bound on the step: the folder whose
 * newest checkpoint has the highest step is tried first, then the others. Nothing is assigned.
 * @returns it and its folder, or undefined when none fits.
 */
export function findFurthest(
  sources: readonly { dir?: string; maxStep: number }[],
  print: string,
  variables: ReadonlyMap<string, StateSlot>,
  log?: (message: string) => void,
): (FoundCheckpoint & { dir: string }) | undefined {
  const order = sources
    .filter((s): s is { dir: string; maxStep: number } => s.dir !== undefined)
    .map((s) => ({ ...s, newest: newestCheckpointStep(s.dir) }))
    .sort((a, b) => b.newest - a.newest);
  for (const { dir, maxStep } of order) {
    const found = findCheckpoint(dir, { fingerprint: print, maxSteps: maxStep }, variables, log);
    if (found) return { ...found, dir };
  }
  return undefined;
}

/**
 * Loads the furthest checkpoint of a run among `sources` (`findFurthest`) into `variables`.
 * @returns the state loaded and its folder, or undefined when none fits (variables untouched).
 */
export function loadFurthest(
  sources: readonly { dir?: string; maxStep: number }[],
  print: string,
  variables: ReadonlyMap<string, StateSlot>,
  log: (message: string) => void = () => {},
): { state: CheckpointState; dir: string } | undefined {
  const found = findFurthest(sources, print, variables, log);
  if (!found) return undefined;
  found.load();
  log(`resumed from the checkpoint at step ${found.state.step}`);
  return { state: found.state, dir: found.dir };
}

/**
 * The options several commands share, each declared once: `--set`, `--store`, `--json`,
 * `--backend`, `--jobs`, executor selection (`--executor` with its `--slurm-*` flags) and
 * `--ensemble`. Each
 * function returns a fresh commander `Option` (an option object belongs to one command); commands
 * add them with `.addOption(...)` in the order their help lists them. The option types below are
 * what commander hands to a command's action for these flags.
 */
import { InvalidArgumentError, Option } from 'commander';
import type { GroupingOptions } from '../engine/runner.js';
import { BACKEND_REQUESTS } from '../models/backend-names.js';

/** `--set`, `--store` and `--json` as parsed. */
export interface PipelineOptions {
  /** `--set <path=value>`, in command-line order. */
  set: string[];
  /** `--store <dir>`: the artifact store folder. */
  store: string;
  /** `--json`: one JSON object on stdout. */
  json?: boolean;
}

/** Executor selection (`--executor` and the `--slurm-*` flags) as parsed. */
export interface ExecutorOptions {
  executor: 'local' | 'slurm';
  slurmPartition?: string;
  /** SLURM time syntax, e.g. `4:00:00`. */
  slurmTime?: string;
  slurmGpus?: number;
  slurmCpus: number;
  slurmArrayLimit?: number;
  /** Seconds between `squeue` polls. */
  slurmPoll: number;
}

/** The text of `--json` for the commands that print `{"runs": [...]}` (`run`, `status`). */
export const RUNS_JSON_HELP = 'print one JSON object {"runs": [...]} on stdout; progress as plain lines on stderr';

/**
 * The `--set` syntax in full, shown after the options of `run --help` (Hydra's override grammar,
 * in the subset `engine/pipeline/override-syntax.ts` parses).
 */
export const SET_HELP = `
Overrides and sweeps (--set, repeatable; values are YAML):
  --set model.with.max_steps=4000                 set a knob of stage "model"
  --set 'model.with.optimizer={lr: 0.01}'         merge into the mapping (batch_size etc. kept)
  --set '~model.with.optimizer.weight_decay'      delete a key (its default applies)
  --set vars.n=3                                  set a var
  --set 'matrix.seed=[0, 1, 2]'                   give a matrix axis its values (also: matrix.seed=0,1,2)
  --set 'matrix.exclude=[{phi: 1}]'               drop combinations (also matrix.include=[{...}], as GitHub Actions)
  --set 'model.with.optimizer.lr=1e-3,1e-2'       sweep: a new matrix axis "lr", one run per value
  --set 'model.with.seed=range(0,4)'              sweep 0,1,2,3 (range(start,stop[,step]), as Python's)
  --set 'model.with.model.arch=choice(gpt2,llama)' sweep, as a,b
A sweep is a new matrix axis named after the field (lr; optimizer_lr when "lr" is taken): only the
swept stage and those after it run once per value; the rest is shared. Quote a value that holds a
comma ('a,b'); commas inside [...] and {...} do not split. A matrix axis that no stage uses is an
error (exit 2), whether in the file or from --set.
`;

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Parses a positive integer option value (`--jobs`, `--sample`, `--slurm-gpus`, ...).
 * @throws InvalidArgumentError (commander reports it and exits 2) for anything else.
 */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/**
 * Parses `--slurm-poll`: seconds, at least 0.1.
 * @throws InvalidArgumentError for anything else.
 */
export function pollSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1) throw new InvalidArgumentError('must be a number of seconds, at least 0.1');
  return n;
}

/**
 * `--set <path=value>` (repeatable): a knob override or a sweep, applied when the pipeline is
 * compiled (`engine/pipeline/overrides.ts`; the syntax is spelled out by `SET_HELP`).
 */
export function setOption(
  description = 'override a knob: <stage>.with.<path>=<value>, vars.<name>=<value>, matrix.<axis>=[...] (the values of an axis the ' +
    'stages use; also matrix.include=[{...}]); a,b or range(start,stop[,step]) sweeps; ~<path> deletes (repeatable; see below)',
): Option {
  return new Option('--set <path=value>', description).argParser(collect).default([]);
}

/** `--store <dir>`: the artifact store folder (default `artifacts`). */
export function storeOption(): Option {
  return new Option('--store <dir>', 'artifact store folder').default('artifacts');
}

/** `--json`: machine-readable output on stdout; `description` says its shape. */
export function jsonOption(description = 'print one JSON object on stdout'): Option {
  return new Option('--json', description);
}

/** `--backend <name>`: the TF.js backend a training asks for (default `auto`). */
export function backendOption(description: string): Option {
  return new Option('--backend <name>', description).choices(BACKEND_REQUESTS).default('auto');
}

/** `--jobs <n>`: how many stage runs execute at once. */
export function jobsOption(description: string, defaultValue: number): Option {
  return new Option('--jobs <n>', description).argParser(positiveInteger).default(defaultValue);
}

/** `--executor local|slurm` and the `--slurm-*` flags that size and pace the job arrays. */
export function executorOptions(): Option[] {
  return [
    new Option('--executor <name>', 'where stage runs execute: this machine, or SLURM job arrays (docs/slurm.md)')
      .choices(['local', 'slurm'])
      .default('local'),
    new Option('--slurm-partition <name>', 'SLURM partition (sbatch --partition)'),
    new Option('--slurm-time <time>', 'time limit per stage run (sbatch --time, e.g. 4:00:00)'),
    new Option('--slurm-gpus <n>', 'GPUs per stage run (sbatch --gres=gpu:N)').argParser(positiveInteger),
    new Option('--slurm-cpus <n>', 'CPUs per stage run (sbatch --cpus-per-task; also the training threads)')
      .argParser(positiveInteger)
      .default(1),
    new Option('--slurm-array-limit <k>', 'stage runs of one wave running at once (--array=0-N%K)').argParser(
      positiveInteger,
    ),
    new Option('--slurm-poll <seconds>', 'interval between squeue polls (seconds)').argParser(pollSeconds).default(5),
  ];
}

/** `--ensemble` and `--ensemble-max` as parsed. */
export interface EnsembleOptions {
  /** `auto`: runs that can share a job execute together; `off`: every run alone. */
  ensemble: 'auto' | 'off';
  /** At most this many runs in one ensemble. */
  ensembleMax: number;
}

/** Runs in one ensemble when `--ensemble-max` is not given (the benchmark size). */
export const DEFAULT_ENSEMBLE_MAX = 8;

/**
 * `--ensemble auto|off` and `--ensemble-max <n>`: whether runs of a stage that can share a job
 * (for `train`: same model shapes) execute together, and at most how many (docs/design.md §6).
 */
export function ensembleOptions(): Option[] {
  return [
    new Option(
      '--ensemble <mode>',
      'auto: ready runs that can share a job (trainings of same-shape models) execute together as one ensemble; off: each alone',
    )
      .choices(['auto', 'off'])
      .default('auto'),
    new Option('--ensemble-max <n>', 'at most n runs in one ensemble')
      .argParser(positiveInteger)
      .default(DEFAULT_ENSEMBLE_MAX),
  ];
}

/**
 * The runner's grouping for `--ensemble`: undefined (every run alone, none waiting for its
 * siblings) with `off` or `--ensemble-max 1`. `slots`: the job slots the groups should fill (the
 * local `--jobs`; 1 on SLURM, where each group is a task of its own).
 */
export function groupingOf(opts: EnsembleOptions, slots: number): GroupingOptions | undefined {
  return opts.ensemble === 'off' || opts.ensembleMax < 2 ? undefined : { maxMembers: opts.ensembleMax, slots };
}

/** `--log-timestamps` as parsed: true, false (`--no-log-timestamps`) or undefined (not given). */
export interface TimestampOptions {
  logTimestamps?: boolean;
}

/**
 * `--log-timestamps` / `--no-log-timestamps`: progress lines on stderr start with the time (ISO
 * 8601, UTC). Without either, they do when stderr is not a terminal (`CommandContext.logTimestamps`).
 */
export function logTimestampsOptions(): Option[] {
  return [
    new Option('--log-timestamps', 'progress as lines on stderr, each starting with the time (default when piped)'),
    new Option('--no-log-timestamps', 'progress lines without the time'),
  ];
}

/** Whether progress lines get timestamps, and whether the command line said so (`createReporter`). */
export function timestampsOf(
  opts: TimestampOptions,
  ctx: { readonly logTimestamps: boolean },
): { on: boolean; explicit: boolean } {
  return opts.logTimestamps === undefined
    ? { on: ctx.logTimestamps, explicit: false }
    : { on: opts.logTimestamps, explicit: true };
}

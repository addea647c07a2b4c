/**
 * Undeclared inputs: what besides inputs and params can change a stage's results. They are not
 * part of keys (a key names a computation, not a machine), so they are recorded in every manifest
 * and reported by `grokpipe why` against the nearest entry:
 *
 * - the TF.js backend requested (`--backend`) and the one that ran (the stage's `info.backend`);
 * - the threads a stage may use (float sums can depend on it with native backends);
 * - environment variables that steer numerics: `GROKPIPE_*`, the TensorFlow threading and
 *   determinism knobs (`TF_NUM_INTRAOP_THREADS`, `TF_NUM_INTEROP_THREADS`, `TF_ENABLE_ONEDNN_OPTS`,
 *   `TF_DETERMINISTIC_OPS`, `TF_CUDNN_DETERMINISTIC`, `TF_ENABLE_AUTO_MIXED_PRECISION`,
 *   `TF_XLA_FLAGS`), `OMP_NUM_THREADS`, `CUDA_VISIBLE_DEVICES`, and the BLAS libraries' thread and
 *   kernel choices (`OPENBLAS_NUM_THREADS`, `OPENBLAS_CORETYPE`, `BLIS_NUM_THREADS`, `MKL_NUM_THREADS`);
 * - platform and CPU architecture.
 *
 * Differences are only reported for stages that recorded a backend: the others do no numeric work
 * that these knobs affect.
 */
import type { Json, RunOptions } from '../stage.js';

/** The recorded environment of a stage run (manifest field `environment`). */
export interface Environment {
  /** Requested backend (`auto` unless `--backend` said otherwise). */
  readonly backend: string;
  /** Threads a stage could use, or null when not set. */
  readonly threads: number | null;
  /** Environment variables that can change results (see the module comment), by name. */
  readonly env: Readonly<Record<string, string>>;
  /** `<platform>-<arch>`, e.g. `linux-x64`. */
  readonly platform: string;
}

const KNOB =
  /^GROKPIPE_|^(TF_NUM_INTRAOP_THREADS|TF_NUM_INTEROP_THREADS|TF_ENABLE_ONEDNN_OPTS|TF_DETERMINISTIC_OPS|TF_CUDNN_DETERMINISTIC|TF_ENABLE_AUTO_MIXED_PRECISION|TF_XLA_FLAGS|OMP_NUM_THREADS|CUDA_VISIBLE_DEVICES|OPENBLAS_NUM_THREADS|OPENBLAS_CORETYPE|BLIS_NUM_THREADS|MKL_NUM_THREADS)$/;

/** The environment variables among `env` that can change results, sorted by name. */
export function resultKnobs(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (KNOB.test(name) && value !== undefined) out[name] = value;
  }
  return out;
}

/** The environment of a run started now with `options`. */
export function currentEnvironment(options: RunOptions = {}, env: NodeJS.ProcessEnv = process.env): Environment {
  return {
    backend: options.backend ?? 'auto',
    threads: options.threads ?? null,
    env: resultKnobs(env),
    platform: `${process.platform}-${process.arch}`,
  };
}

/**
 * How `now` differs from the environment an entry was computed in, for stages that recorded a
 * backend (`info.backend`); empty otherwise or when nothing differs. Each item reads like
 * `backend wasm -> tensorflow`, `env TF_NUM_INTRAOP_THREADS 2 -> (unset)`, `platform linux-x64 -> darwin-arm64`.
 * The backend counts as different when a backend other than `auto` is requested and it is not
 * the one that ran, or when the entry's request was explicit and `auto` is requested now.
 * @param entry a manifest (only its `info` and `environment` are read).
 */
export function environmentChanges(
  entry: { readonly info?: Readonly<Record<string, Json>>; readonly environment?: Environment },
  now: Environment,
): string[] {
  const ran = entry.info?.backend;
  if (typeof ran !== 'string') return [];
  const before = entry.environment;
  const out: string[] = [];
  if (now.backend !== 'auto' ? now.backend !== ran : before !== undefined && before.backend !== 'auto') {
    out.push(`backend ${ran} -> ${now.backend}`);
  }
  if (!before) return out;
  const names = [...new Set([...Object.keys(before.env), ...Object.keys(now.env)])].sort();
  for (const name of names) {
    const a = before.env[name];
    const b = now.env[name];
    if (a !== b) out.push(`env ${name} ${a ?? '(unset)'} -> ${b ?? '(unset)'}`);
  }
  if (before.threads !== null && now.threads !== null && before.threads !== now.threads)
    out.push(`threads ${before.threads} -> ${now.threads}`);
  if (before.platform !== now.platform) out.push(`platform ${before.platform} -> ${now.platform}`);
  return out;
}

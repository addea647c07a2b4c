/**
 * The options that raise the input limits (`engine/pipeline/limits.ts`): `--max-runs`, `--max-errors`,
 * `--max-file-size` and `--max-aliases`. They belong to the program, so every command that reads a
 * pipeline file takes them (before or after the command name), and each invocation starts from the
 * defaults.
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { DEFAULT_LIMITS, LIMIT_OPTIONS, setInputLimits } from '../engine/pipeline/limits.js';
import { positiveInteger } from './options.js';

interface LimitOptions {
  maxRuns: number;
  maxErrors: number;
  maxFileSize: number;
  maxAliases: number;
}

function mebibytes(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number of MiB > 0');
  return n;
}

/** Adds the limit options to `program` and applies them before each command's action. */
export function registerLimitOptions(program: Command): void {
  program
    .option(LIMIT_OPTIONS.maxRuns, 'most stage runs a pipeline may expand to', positiveInteger, DEFAULT_LIMITS.maxRuns)
    .option(
      LIMIT_OPTIONS.maxErrors,
      'most problems listed for bad input (the others are counted)',
      positiveInteger,
      DEFAULT_LIMITS.maxErrors,
    )
    .option(
      LIMIT_OPTIONS.maxFileBytes,
      'largest pipeline file read (MiB)',
      mebibytes,
      DEFAULT_LIMITS.maxFileBytes / 2 ** 20,
    )
    .option(
      LIMIT_OPTIONS.maxAliasNodes,
      'most YAML nodes a pipeline file may copy through aliases',
      positiveInteger,
      DEFAULT_LIMITS.maxAliasNodes,
    )
    .configureHelp({ showGlobalOptions: true })
    .hook('preAction', () => {
      const o = program.opts<LimitOptions>();
      setInputLimits({
        maxRuns: o.maxRuns,
        maxErrors: o.maxErrors,
        maxFileBytes: Math.floor(o.maxFileSize * 2 ** 20),
        maxAliasNodes: o.maxAliases,
      });
    });
}

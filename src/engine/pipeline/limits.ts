/**
 * Limits on what a pipeline file may ask of the engine, so that a typo in a matrix or a hostile
 * file ends with a message (exit 2) instead of minutes of work, gigabytes of memory or a crash.
 * Each can be raised from the command line; the message of a limit hit names the option:
 *
 * - `--max-runs` (100,000): stage runs a pipeline may expand to (matrix combinations summed over
 *   stages), checked before any run is built;
 * - `--max-errors` (50): problems printed for bad input; the others are counted, not kept;
 * - `--max-file-size` (1 MiB): size of a pipeline file (hand-written files are a few kB);
 * - `--max-aliases` (10,000): YAML nodes a file may copy through aliases (`*name`), which stops
 *   "billion laughs" documents (`yaml-aliases.ts`).
 *
 * The CLI sets them once per invocation (`setInputLimits`); library callers get the defaults.
 */

/** The limits (see the module comment). */
export interface InputLimits {
  /** Stage runs a pipeline may expand to. */
  readonly maxRuns: number;
  /** Problems of bad input listed; the rest are counted. */
  readonly maxErrors: number;
  /** Size of a pipeline file (bytes). */
  readonly maxFileBytes: number;
  /** YAML nodes a pipeline file may copy through aliases. */
  readonly maxAliasNodes: number;
}

/** The limits when no option raises them. */
export const DEFAULT_LIMITS: InputLimits = {
  maxRuns: 100_000,
  maxErrors: 50,
  maxFileBytes: 1024 * 1024,
  maxAliasNodes: 10_000,
};

/** The command-line option that raises each limit (named in messages). */
export const LIMIT_OPTIONS: Readonly<Record<keyof InputLimits, string>> = {
  maxRuns: '--max-runs <n>',
  maxErrors: '--max-errors <n>',
  maxFileBytes: '--max-file-size <MiB>',
  maxAliasNodes: '--max-aliases <n>',
};

let current: InputLimits = DEFAULT_LIMITS;

/** The limits in force in this process. */
export function inputLimits(): InputLimits {
  return current;
}

/** Sets the limits in force: `DEFAULT_LIMITS` with the given ones replaced. */
export function setInputLimits(limits: Partial<InputLimits> = {}): void {
  current = { ...DEFAULT_LIMITS, ...limits };
}

/** `1,000,000` (English digit grouping) for messages. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** Thrown by `expandRuns` when a pipeline expands to more runs than allowed. */
export class RunLimitError extends Error {
  override name = 'RunLimitError';

  /**
   * @param stageId the stage whose runs passed the limit
   * @param runs runs of that stage alone
   * @param limit the limit in force
   */
  constructor(
    readonly stageId: string,
    readonly runs: number,
    readonly limit: number,
  ) {
    super(
      `expands to more than ${formatCount(limit)} stage runs (stage ${stageId} alone: ${formatCount(runs)}); ` +
        `shrink the matrix, or raise the limit with ${LIMIT_OPTIONS.maxRuns}`,
    );
  }
}

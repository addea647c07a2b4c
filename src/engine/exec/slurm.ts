/**
 * A thin wrapper around the SLURM client commands (`sbatch`, `squeue`, `scontrol`, `scancel`), run
 * through execa with the caller's environment (so `SLURM_CONF` and `PATH` apply). It never uses
 * `sbatch --wait` (which polls slowly) nor `sacct` (accounting is not enabled on every cluster).
 */
import type { ExecaError } from 'execa';

/** States in which an array task is still in SLURM's hands (it has not finished). */
const ACTIVE_STATES = new Set([
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'REQUEUED',
  'REQUEUE_FED',
  'REQUEUE_HOLD',
  'RESIZING',
  'SIGNALING',
  'STAGE_OUT',
  'STOPPED',
  'RESV_DEL_HOLD',
]);

/** Whether a `squeue` state (`RUNNING`, `PENDING`, ...) means the task has not finished yet. */
export function isActiveState(state: string): boolean {
  return ACTIVE_STATES.has(state);
}

/** A SLURM command failed, or is not installed. `missing` is true when the command was not found. */
export class SlurmError extends Error {
  override name = 'SlurmError';

  constructor(
    message: string,
    /** Whether the command itself was not found on PATH. */
    readonly missing = false,
  ) {
    super(message);
  }
}

/** One array task as `squeue` lists it. */
export interface QueuedTask {
  /** `squeue` state: `PENDING`, `RUNNING`, ... */
  readonly state: string;
  /** Node list (empty while pending). */
  readonly nodes: string;
}

/** What `scontrol -o show job <id>` says about a job that left the queue. */
export interface JobState {
  /** `JobState`: `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, `OUT_OF_MEMORY`, ... */
  readonly state: string;
  /** `ExitCode` as `code:signal`, e.g. `1:0`. */
  readonly exitCode: string;
  /** `Reason`, e.g. `NonZeroExitCode`, `None`. */
  readonly reason: string;
}

/** Calls the SLURM commands. Every method can throw SlurmError. */
export class SlurmClient {
  /** @param env extra environment for the commands (merged over process.env). */
  constructor(private readonly env: Readonly<Record<string, string>> = {}) {}

  /**
   * Runs a SLURM command.
   * @returns its stdout.
   * @throws SlurmError (with `missing`) when the command is not found or exits non-zero.
   */
  private async call(cmd: string, args: readonly string[], timeoutSeconds = 60): Promise<string> {
    const { execa } = await import('execa');
    try {
      const r = await execa(cmd, args, { env: this.env, timeout: timeoutSeconds * 1000, stdin: 'ignore' });
      return r.stdout;
    } catch (err) {
      const e = err as ExecaError;
      if (e.code === 'ENOENT') {
        throw new SlurmError(
          `${cmd} not found on PATH: --executor slurm needs the SLURM client commands (run on a login node, or install slurm-client; scripts/slurm-local.sh start makes a local test cluster)`,
          true,
        );
      }
      const detail = String(e.stderr ?? '').trim() || e.shortMessage;
      throw new SlurmError(`${cmd} ${args.join(' ')} failed: ${detail}`);
    }
  }

  /**
   * Checks that `sbatch` can be run (`sbatch --version`).
   * @throws SlurmError when it cannot (`missing` when it is not installed).
   */
  async check(): Promise<void> {
    await this.call('sbatch', ['--version'], 30);
  }

  /**
   * Submits a batch script: `sbatch --parsable <args...> <script>`.
   * @returns the job id.
   * @throws SlurmError when sbatch fails or prints no job id.
   */
  async submit(script: string, args: readonly string[]): Promise<string> {
    const out = await this.call('sbatch', ['--parsable', ...args, script]);
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    const id = out.trim().split('\n').pop()?.split(';')[0]?.trim() ?? '';
    if (!/^\d+$/.test(id)) throw new SlurmError(`sbatch printed no job id: ${JSON.stringify(out)}`);
    return id;
  }

  /**
   * Lists the array tasks of `jobIds` still in the queue: `squeue -h -r -j <ids> -o %i|%T|%N`.
   * A job that left the queue is simply absent.
   * @returns `<job>_<task>` (or `<job>` for a plain job) to its state.
   * @throws SlurmError when squeue fails for another reason than unknown job ids.
   */
  async queue(jobIds: readonly string[]): Promise<Map<string, QueuedTask>> {
    const out = new Map<string, QueuedTask>();
    if (jobIds.length === 0) return out;
    let text: string;
    try {
      text = await this.call('squeue', ['-h', '-r', '-j', jobIds.join(','), '-o', '%i|%T|%N']);
    } catch (err) {
      // Every id unknown (they left the queue long ago): squeue exits 1 with this message.
      if (err instanceof SlurmError && !err.missing && /Invalid job id/i.test(err.message)) return out;
      throw err;
    }
    for (const line of text.split('\n')) {
      const [id, state, nodes] = line.trim().split('|');
      if (!id || !state) continue;
      out.set(id, { state, nodes: nodes ?? '' });
    }
    return out;
  }

  /**
   * The final state of one job or array task (`scontrol -o show job <id>`; one id per call).
   * @returns undefined when SLURM no longer knows the job.
   * @throws SlurmError when scontrol is missing.
   */
  async jobState(id: string): Promise<JobState | undefined> {
    let text: string;
    try {
      text = await this.call('scontrol', ['-o', 'show', 'job', id]);
    } catch (err) {
      if (err instanceof SlurmError && err.missing) throw err;
      return undefined;
    }
    const field = (name: string): string => new RegExp(`(?:^|\\s)${name}=(\\S+)`).exec(text)?.[1] ?? '';
    const state = field('JobState');
    return state ? { state, exitCode: field('ExitCode'), reason: field('Reason') } : undefined;
  }

  /**
   * Cancels jobs or array tasks (`scancel <ids...>`).
   * @throws SlurmError when scancel fails.
   */
  async cancel(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.call('scancel', [...ids]);
  }
}

/**
 * Runs jobs, and group jobs, in this process. Used with `--jobs 1` and by tests; with more jobs, runs overlap only
 * where stages await (I/O, timers), since they share one thread.
 */
import type { Executor } from './executor.js';
import type { StageRegistry } from '../registry.js';
import type { GroupJobSpec, MemberResult } from './group-job.js';
import type { JobEvents, JobOutcome, JobSpec } from './job.js';

/** Executes stages in this process. */
export class InlineExecutor implements Executor {
  readonly name = 'inline';

  constructor(private readonly registry: StageRegistry) {}

  /** @throws the stage's error, or Error when the stage type is unknown. */
  async execute(job: JobSpec, events: JobEvents, signal: AbortSignal): Promise<JobOutcome> {
    const def = this.registry.get(job.stage);
    if (!def) throw new Error(`unknown stage type "${job.stage}"`);
    // Loaded on first use: it brings the Parquet libraries, which planning never needs.
    const { runJob } = await import('./job.js');
    return runJob(def, job, events, signal);
  }

  /** @throws what `runGroupJob` throws, or Error when the stage type is unknown. */
  async executeGroup(group: GroupJobSpec, events: readonly JobEvents[], signal: AbortSignal): Promise<MemberResult[]> {
    const def = this.registry.get(group.stage);
    if (!def) throw new Error(`unknown stage type "${group.stage}"`);
    const { runGroupJob } = await import('./group-job.js');
    return runGroupJob(def, group, events, signal);
  }
}

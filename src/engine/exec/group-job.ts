/**
 * A group job: several runs of one stage type executed together through the stage's optional
 * `group` member (`StageDefinition.group`, docs/design.md §6), in this process, in one worker
 * process or in one SLURM array task. Each member is the job it would be alone (`JobSpec`: its own
 * params, inputs, temporary output folder and checkpoint folder) and gets the context it would get
 * alone; what comes back is one result per member, so that each commits, or fails, on its own.
 */
import { checkVersion, inputArtifact, jobContext } from './job.js';
import type { JobEvents, JobOutcome, JobSpec } from './job.js';
import type { StageDefinition } from '../stage.js';

/** Runs of one stage type to execute together (JSON-serializable, like `JobSpec`). */
export interface GroupJobSpec {
  /** Stage type of every member. */
  readonly stage: string;
  /** Stage code version the group was planned with. */
  readonly version: string;
  /** Each member's job, exactly as it would run alone (at least two). */
  readonly members: readonly JobSpec[];
}

/** The result of one member of a group job: its outcome, or why it failed. */
export type MemberResult =
  { readonly ok: true; readonly outcome: JobOutcome } | { readonly ok: false; readonly message: string };

/** The group job of `members` (jobs of one stage type, each as it would run alone). */
export function groupJobOf(members: readonly JobSpec[]): GroupJobSpec {
  return { stage: members[0].stage, version: members[0].version, members };
}

/** True when a parsed job file holds a group job rather than one run's job. */
export function isGroupJob(job: JobSpec | GroupJobSpec): job is GroupJobSpec {
  return Array.isArray((job as Partial<GroupJobSpec>).members);
}

/**
 * The group key of `job`'s run under `def` (`def.group.key` of its params and inputs), or
 * undefined when the stage has no `group` member or the run must run alone.
 * @throws Error naming the run when `key` throws or returns something other than a string.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function groupKeyOf(def: StageDefinition<any>, job: JobSpec): string | undefined {
  if (!def.group) return undefined;
  let key: unknown;
  try {
    key = def.group.key(job.params, job.inputs.map(inputArtifact));
  } catch (err) {
    throw new Error(`${job.runId}: stage ${def.name}'s group key failed: ${(err as Error).message}`);
  }
  if (key !== undefined && typeof key !== 'string') {
    throw new Error(`${job.runId}: stage ${def.name}'s group key is ${typeof key}, not a string or undefined`);
  }
  return key;
}

/**
 * Runs a group job: one context per member (`jobContext`, as alone), then `def.group.run`.
 * `events[i]` receives member `i`'s progress and log lines.
 * @returns one result per member, in order: its outcome (what it recorded and wrote) or its error.
 * @throws Error when the stage has no `group` member, its code version differs from the job's, or
 *   `group.run` resolves to a list of the wrong length; whatever `group.run` rejects with (the
 *   whole group failed); the signal's reason when aborted.
 */
export async function runGroupJob(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  def: StageDefinition<any>,
  group: GroupJobSpec,
  events: readonly JobEvents[],
  signal: AbortSignal,
): Promise<MemberResult[]> {
  if (!def.group) throw new Error(`stage ${def.name} cannot run a group (it has no group member)`);
  checkVersion(def, group);
  const contexts = group.members.map((job, i) => jobContext(job, events[i], signal));
  const errors = await def.group.run(contexts.map((c) => c.ctx));
  signal.throwIfAborted();
  if (!Array.isArray(errors) || errors.length !== contexts.length) {
    const got = Array.isArray(errors) ? `${errors.length} results` : String(errors);
    throw new Error(`stage ${def.name}'s group run returned ${got} for ${contexts.length} members`);
  }
  return contexts.map((c, i): MemberResult => {
    const error = errors[i];
    if (error === null) return { ok: true, outcome: c.outcome() };
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  });
}

/**
 * Reproducibility check (`grokpipe verify`): recompute cached stage runs and compare their
 * outputs' content hashes with the store's.
 *
 * For each selected run: every hash of the entry is first recomputed from its files and held
 * against its manifest (`recompute.ts`: `corrupt` when one differs; an entry the store cannot use
 * is `corrupt` too); then, unless only bytes are asked for, the stage is run
 * again into a scratch folder (`<store>/.tmp/<key>.<pid>.<random>`, removed afterwards; an
 * interrupted verify leaves it to the next `run` or `gc`; in the system's temporary folder when the
 * store cannot be written), reading its inputs from the store's
 * cached upstream artifacts, without a checkpoint folder (so nothing is resumed). Each output is
 * compared by content hash (logical for tables) with what the stored file hashes to, never with the
 * manifest's figure; a differing table is compared column by column.
 * The real store is never written.
 *
 * Runs that are not cached are reported `uncached` and not recomputed: there is nothing to compare
 * with (run the pipeline first). They do not make the check fail.
 *
 * With `grouping`, recomputations of a stage that defines `group` are gathered as `run` gathers
 * them (`gather.ts`; runs recorded with different thread counts never share a job) and each group
 * recomputes as one job, every member compared on its own.
 */
import { join } from 'node:path';
import { executeGroupJob, executeJob, jobOf } from '../exec/executor.js';
import type { MemberOutputs } from '../exec/executor.js';
import { Gatherer } from '../gather.js';
import type { GroupingOptions } from '../gather.js';
import type { Executor } from '../exec/executor.js';
import type { StageRun } from '../pipeline/expand.js';
import { ByteCheckCache } from '../cache/integrity.js';
import { createLimiter } from '../exec/limit.js';
import { MANIFEST_FILE } from '../cache/manifest.js';
import type { Manifest, ManifestOutput } from '../cache/manifest.js';
import type { PlannedRun } from './plan.js';
import type { Reporter } from '../terminal/progress.js';
import { jobEvents, silentReporter } from '../terminal/progress.js';
import { recomputeStored } from '../cache/recompute.js';
import type { StoredArtifact } from '../cache/recompute.js';
import type { RunOptions } from '../stage.js';
import type { Store } from '../cache/store.js';
import { scratchFolder } from '../cache/store-access.js';
import { diffTables, formatTableDiff, tablesEqual } from './table-diff.js';

/** Verdict on one run. `intact`: bytes checked only (`bytesOnly`), and they match. */
export type VerifyStatus = 'match' | 'mismatch' | 'corrupt' | 'failed' | 'uncached' | 'intact';

/** One difference found. */
export interface VerifyProblem {
  /** Output file (`scores.parquet`), or `<input id>: <file>` for a corrupt input. */
  readonly file: string;
  /** What differs, e.g. `column loss: 3 of 5 rows differ, first at row 0: 0.1 -> 0.2`. */
  readonly message: string;
  /** Columns that differ, for tables. */
  readonly columns?: readonly string[];
}

/** The verdict on one run. */
export interface VerifyResult {
  readonly run: StageRun;
  readonly key: string | null;
  readonly status: VerifyStatus;
  /**
   * True when the run's own store entry is wrong (corrupt, damaged, or not what its recomputation
   * gives): `verify --repair` removes it. False for a run condemned only through a corrupt input.
   */
  readonly condemned?: boolean;
  /** Recomputation time (seconds), 0 when nothing was recomputed. */
  readonly seconds: number;
  readonly problems: readonly VerifyProblem[];
  /** Why a run was not verified (`uncached`) or failed. */
  readonly reason?: string;
}

/** Options of `verifyRuns`. */
export interface VerifyOptions {
  readonly store: Store;
  readonly executor: Executor;
  /** Recomputations at once (default 1). */
  readonly jobs?: number;
  /** Options given to stages (backend, threads). */
  readonly options?: RunOptions;
  readonly signal?: AbortSignal;
  /** Only check the stored files' byte hashes; recompute nothing. */
  readonly bytesOnly?: boolean;
  /** Receives `running`, `progress`, `log` and final events of recomputed runs. */
  readonly reporter?: Reporter;
  /** Recompute runs that can share a job in groups (as `run` does); absent: each alone. */
  readonly grouping?: GroupingOptions;
}

/** A cached run to recompute: its plan entry, its outputs as stored, its inputs. */
interface Recompute {
  readonly p: PlannedRun;
  readonly stored: readonly ManifestOutput[];
  readonly inputs: readonly PlannedRun[];
}

/** True for verdicts that make the check fail. */
export function isFailure(status: VerifyStatus): boolean {
  return status === 'mismatch' || status === 'corrupt' || status === 'failed';
}

/**
 * Picks `k` cached runs at random (all of them when there are fewer), in plan order.
 * @param random a source of numbers in [0, 1) (default Math.random).
 */
export function sampleCached(
  plan: readonly PlannedRun[],
  k: number,
  random: () => number = Math.random,
): Set<StageRun> {
  const cached = plan.filter((p) => p.status === 'cached').map((p) => p.run);
  for (let i = cached.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [cached[i], cached[j]] = [cached[j], cached[i]];
  }
  return new Set(cached.slice(0, Math.max(0, k)));
}

/**
 * Verifies the `selected` runs of a plan (see the module comment).
 * @returns one result per selected run, in plan order. Rejects only when aborted.
 */
export async function verifyRuns(
  plan: readonly PlannedRun[],
  selected: ReadonlySet<StageRun>,
  opts: VerifyOptions,
): Promise<VerifyResult[]> {
  const reporter = opts.reporter ?? silentReporter;
  const signal = opts.signal ?? new AbortController().signal;
  const schedule = scheduler(
    plan.filter((p) => selected.has(p.run)).map((p) => p.run),
    opts,
    reporter,
    signal,
  );
  const bytes = new ByteCheckCache();
  const byRun = new Map(plan.map((p) => [p.run, p]));
  const chosen = plan.filter((p) => selected.has(p.run));
  reporter.start(chosen.map((p) => ({ id: p.run.id, stage: p.run.stage.name })));

  // Every hash from the stored files (`recompute.ts`), once per entry.
  const stored = new Map<string, Promise<StoredArtifact>>();
  const storedOf = (p: PlannedRun): Promise<StoredArtifact> => {
    let s = stored.get(p.dir as string);
    if (!s) stored.set(p.dir as string, (s = recomputeStored(p.dir as string, p.manifest as Manifest, bytes)));
    return s;
  };

  const one = async (p: PlannedRun): Promise<VerifyResult> => {
    const base = { run: p.run, key: p.key };
    if (p.status !== 'cached' || !p.manifest || !p.dir) {
      const damaged = p.key ? await opts.store.lookup(p.run.stage.name, p.key) : { hit: false as const };
      if (!damaged.hit && damaged.reason) {
        return { ...base, status: 'corrupt', condemned: true, seconds: 0, problems: [lookupProblem(damaged.reason)] };
      }
      return {
        ...base,
        status: 'uncached',
        seconds: 0,
        problems: [],
        reason: `not cached (${p.reason}); run the pipeline first`,
      };
    }
    const own = await storedOf(p);
    if (own.problems.length > 0)
      return { ...base, status: 'corrupt', condemned: true, seconds: 0, problems: own.problems };
    if (opts.bytesOnly) return { ...base, status: 'intact', seconds: 0, problems: [] };
    const inputs = p.run.inputs.map((i) => byRun.get(i) as PlannedRun);
    const inputProblems = [];
    for (const input of inputs) {
      for (const problem of (await storedOf(input)).problems) {
        inputProblems.push({ file: `${input.run.id}: ${problem.file}`, message: problem.message });
      }
    }
    if (inputProblems.length > 0) {
      return {
        ...base,
        status: 'corrupt',
        seconds: 0,
        problems: inputProblems,
        reason: 'an input is corrupt; not recomputed',
      };
    }
    return schedule.recompute({ p, stored: own.outputs, inputs });
  };

  const results = await Promise.all(
    chosen.map(async (p) => {
      let r: VerifyResult;
      try {
        r = await one(p);
      } finally {
        schedule.pass(p.run);
      }
      signal.throwIfAborted();
      reportVerdict(reporter, r);
      return r;
    }),
  );
  await reporter.stop();
  return results;
}

/** The final event of a verified run: `ran` (match, intact), `skipped` (uncached) or `failed`. */
function reportVerdict(reporter: Reporter, r: VerifyResult): void {
  const id = r.run.id;
  if (r.status === 'match' || r.status === 'intact') reporter.event(id, { kind: 'ran', seconds: r.seconds });
  else if (r.status === 'uncached') reporter.event(id, { kind: 'skipped', reason: 'not cached' });
  else
    reporter.event(id, {
      kind: 'failed',
      error:
        r.status === 'failed' ? (r.reason ?? 'failed') : `${r.status}: ${r.problems.map((x) => x.file).join(', ')}`,
    });
}

/**
 * Schedules recomputations of the runs `chosen` (at most `opts.jobs` at once): each alone, or with
 * `opts.grouping`, gathered into groups as `run` gathers them. Every chosen run must either be
 * recomputed or `pass`.
 */
function scheduler(
  chosen: readonly StageRun[],
  opts: VerifyOptions,
  reporter: Reporter,
  signal: AbortSignal,
): { recompute(r: Recompute): Promise<VerifyResult>; pass(run: StageRun): void } {
  const limit = createLimiter(opts.jobs ?? 1);
  const alone = (r: Recompute): Promise<VerifyResult> => limit(() => recompute(r, opts, reporter, signal));
  const gather = opts.grouping
    ? new Gatherer<Recompute, VerifyResult>(chosen, opts.grouping, (members) => {
        if (members.length === 1) return [alone(members[0])];
        const all = limit(() => recomputeGroup(members, opts, reporter, signal));
        return members.map((_, i) => all.then((r) => r[i]));
      })
    : undefined;
  return {
    async recompute(r: Recompute): Promise<VerifyResult> {
      const key = gather?.gathers(r.p.run) ? await recomputeKey(r, opts) : undefined;
      if (key === undefined || !gather) {
        gather?.pass(r.p.run);
        return alone(r);
      }
      return gather.join(r.p.run, r, key);
    },
    pass: (run) => gather?.pass(run),
  };
}

/** `corrupt: <file> (<message>)` of a store lookup as a problem. */
function lookupProblem(reason: string): VerifyProblem {
  const m = /^corrupt: (\S+)(?: \((.*)\))?(?: missing)?$/.exec(reason);
  if (!m) return { file: MANIFEST_FILE, message: reason };
  if (m[2] !== undefined) return { file: m[1], message: m[2] };
  if (reason.endsWith(' missing')) return { file: m[1], message: 'missing' };
  return {
    file: m[1],
    message: m[1] === MANIFEST_FILE ? 'unreadable' : 'missing, or not of the size its manifest says',
  };
}

/** The threads `p` was computed with (sums of floats can depend on them), when recorded. */
function recordedThreads(p: PlannedRun, opts: VerifyOptions): RunOptions {
  const recorded = p.manifest?.environment?.threads;
  return { ...opts.options, ...(typeof recorded === 'number' ? { threads: recorded } : {}) };
}

/** The group key of a recomputation, with its threads (runs computed with different ones stay apart). */
async function recomputeKey(r: Recompute, opts: VerifyOptions): Promise<string | undefined> {
  const { groupKeyOf } = await import('../exec/group-job.js');
  const options = recordedThreads(r.p, opts);
  const key = groupKeyOf(r.p.run.stage, jobOf(r.p.run, r.inputs, '', options));
  return key === undefined ? undefined : `${key}\0threads=${String(options.threads)}`;
}

/**
 * Recomputes `r.p` into a scratch folder and compares its outputs with `r.stored`, the outputs as
 * the stored files hash (not as the manifest says).
 */
async function recompute(
  r: Recompute,
  opts: VerifyOptions,
  reporter: Reporter,
  signal: AbortSignal,
): Promise<VerifyResult> {
  const [result] = await recomputeGroup([r], opts, reporter, signal);
  return result;
}

/**
 * Recomputes `members` into scratch folders (one job; a group job when there are several) and
 * compares each member's outputs with what it stored.
 */
async function recomputeGroup(
  members: readonly Recompute[],
  opts: VerifyOptions,
  reporter: Reporter,
  signal: AbortSignal,
): Promise<VerifyResult[]> {
  const tmps: string[] = [];
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  const group = members.length > 1 ? `; group of ${members.length}` : '';
  try {
    for (const m of members) tmps.push(await scratchFolder(opts.store, m.p.key as string));
    const jobs = members.map((m, i) => jobOf(m.p.run, m.inputs, tmps[i], recordedThreads(m.p, opts)));
    for (const m of members)
      reporter.event(m.p.run.id, { kind: 'running', reason: `verify: recomputing into a scratch folder${group}` });
    const events = members.map((m) => jobEvents(reporter, m.p.run.id));
    let results: MemberOutputs[];
    try {
      if (members.length === 1) {
        results = [{ ok: true, ...(await executeJob(opts.executor, jobs[0], events[0], signal)) }];
      } else {
        const { groupJobOf } = await import('../exec/group-job.js');
        results = await executeGroupJob(opts.executor, groupJobOf(jobs), events, signal);
      }
    } catch (err) {
      signal.throwIfAborted();
      results = members.map(() => ({ ok: false, message: (err as Error).message }));
    }
    const took = seconds();
    return await Promise.all(
      members.map(async (m, i): Promise<VerifyResult> => {
        const base = { run: m.p.run, key: m.p.key as string, seconds: took };
        const r = results[i];
        if (!r.ok) return { ...base, status: 'failed', problems: [], reason: r.message };
        const problems = await compareOutputs(m.stored, r.outputs, m.p.dir as string, tmps[i]);
        return {
          ...base,
          status: problems.length > 0 ? 'mismatch' : 'match',
          condemned: problems.length > 0,
          problems,
        };
      }),
    );
  } finally {
    for (const tmp of tmps) await opts.store.discard(tmp);
  }
}

/** Differences between stored and recomputed outputs (by name, then content hash). */
async function compareOutputs(
  stored: readonly ManifestOutput[],
  fresh: readonly ManifestOutput[],
  storedDir: string,
  freshDir: string,
): Promise<VerifyProblem[]> {
  const now = new Map(fresh.map((o) => [o.name, o]));
  const problems: VerifyProblem[] = [];
  for (const before of stored) {
    const after = now.get(before.name);
    if (!after) {
      problems.push({ file: before.name, message: 'not written by the recomputation' });
      continue;
    }
    if (after.content_hash === before.content_hash) continue;
    if (before.kind === 'table' && after.kind === 'table') {
      problems.push(await compareTables(before.name, join(storedDir, before.name), join(freshDir, after.name)));
    } else {
      problems.push({
        file: before.name,
        message: `content differs (${before.content_hash.slice(0, 12)} -> ${after.content_hash.slice(0, 12)})`,
      });
    }
  }
  const known = new Set(stored.map((o) => o.name));
  for (const o of fresh)
    if (!known.has(o.name)) problems.push({ file: o.name, message: 'written by the recomputation only' });
  return problems;
}

/** What differs between a stored table and its recomputation, column by column. */
async function compareTables(name: string, storedPath: string, freshPath: string): Promise<VerifyProblem> {
  try {
    const { readTable } = await import('../../table/parquet.js');
    const d = diffTables(await readTable(storedPath), await readTable(freshPath));
    if (tablesEqual(d))
      return { file: name, message: 'content hash differs, values equal (hash recorded differently)' };
    return { file: name, message: formatTableDiff(d), columns: d.columns.map((c) => c.column) };
  } catch (err) {
    return { file: name, message: `content differs; tables unreadable (${(err as Error).message})` };
  }
}

/**
 * Runs stage runs in dependency order. As soon as a run's inputs are done, its key is computed
 * from their content hashes (early cutoff); a hit is `cached`, a miss is executed (at most `jobs`
 * at once) under the key's inter-process lock and committed atomically to the store. A run that
 * fails marks its dependents `skipped`; the others go on. Aborting stops new runs, aborts running
 * stages and discards their temporaries.
 *
 * Before a stage reads a cached input, the input's files are checked against the byte hashes in
 * its manifest (`cache/integrity.ts`, each file hashed once per invocation). A corrupt input is
 * reported, recomputed (its record becomes `ran`, reason `corrupt: <file> (...)`) and only then
 * read; if its content comes out different, the reading run's key is computed again.
 *
 * `runPipeline` starts every run at once; each waits for its inputs, then goes through named steps:
 * `ready` (skip, or resolve its key with `resolveRun`, the step `plan` shares), `soundInputs` and
 * `repair` (byte checks of what a stage will read), `materialize` (one computation per key, bounded
 * by `jobs`, under the key's lock) and `execute` (the job on the executor, continuing a cached run
 * where the stage can: `cache/continuation.ts`; then the manifest and the commit; `runner-execute.ts`).
 *
 * With `grouping`, a ready miss of a stage that defines `group` (`engine/stage.ts`) and whose
 * group key is defined joins a `Gatherer` (`gather.ts`: the runs of one stage id wait for each
 * other, then runs with equal keys form groups of at most `maxMembers`); each group executes as
 * one job under every member's lock, and each member commits under its own key as if alone.
 */
import { checkArtifactBytes, formatByteProblems } from './cache/integrity.js';
import type { ByteProblem } from './cache/integrity.js';
import { runKey } from './cache/keys.js';
import type { Manifest } from './cache/manifest.js';
import { recordUsage } from './cache/usage.js';
import { jobOf } from './exec/executor.js';
import type { Explanation } from './explain/cause.js';
import { inputState, resolveRun } from './explain/resolve.js';
import type { Resolution } from './explain/resolve.js';
import { Gatherer } from './gather.js';
import type { StageRun } from './pipeline/expand.js';
import { groupUnderLocks, underLock } from './runner-execute.js';
import { cachedRecord, failed, interrupted, invocation, report, secondsSince, skipFor } from './runner-records.js';
import type { Invocation, Pending, RunRecord, RunnerOptions } from './runner-records.js';

export type { GroupingOptions } from './gather.js';
export type { RunRecord, RunStatus, RunnerOptions } from './runner-records.js';

/**
 * Runs `runs` (in dependency order, as compiled). Removes stale temporaries first; records the
 * entries used in the store's usage records (`cache/usage.ts`) at the end.
 * @returns one record per run, in the same order. Never rejects: a store failure fails the run
 *   it happened in.
 */
export async function runPipeline(runs: readonly StageRun[], opts: RunnerOptions): Promise<RunRecord[]> {
  const inv = invocation(opts);
  const gather = opts.grouping
    ? new Gatherer<Pending, RunRecord>(runs, opts.grouping, (members) => launchGroup(inv, members))
    : undefined;
  await opts.store.cleanStale();
  inv.reporter.start(runs.map((r) => ({ id: r.id, stage: r.stage.name })));
  for (const run of runs) inv.results.set(run, runGuarded(inv, run, gather));
  await Promise.all(inv.results.values());
  const records = await Promise.all(runs.map((r) => current(inv, r)));
  await inv.reporter.stop();
  const used = records.filter((r) => (r.status === 'cached' || r.status === 'ran') && r.key !== null);
  const entries = used.map((r) => ({ stage: r.run.stage.name, key: r.key as string }));
  await recordUsage(opts.store.root, opts.pipelineFile, entries).catch(() => undefined);
  return records;
}

/** The latest record of `run`: its repaired one, if its artifact had to be recomputed. */
function current(inv: Invocation, run: StageRun): Promise<RunRecord> {
  return (inv.repaired.get(run) ?? inv.results.get(run)) as Promise<RunRecord>;
}

/**
 * Runs `run`; a store or lock failure outside the stage fails this run, not the invocation. A run
 * that `gather` gathers arrives there exactly once: joining a group, or passing.
 */
async function runGuarded(
  inv: Invocation,
  run: StageRun,
  gather: Gatherer<Pending, RunRecord> | undefined,
): Promise<RunRecord> {
  try {
    const next = await ready(inv, run);
    if (!('why' in next)) {
      gather?.pass(run);
      return report(inv, next);
    }
    const key = gather?.gathers(run) ? await groupKey(inv, next) : undefined;
    if (key === undefined || !gather) {
      gather?.pass(run);
      return report(inv, await materialize(inv, next, false));
    }
    return report(inv, await gather.join(run, next, key));
  } catch (err) {
    gather?.pass(run);
    return report(inv, failed(run, err));
  }
}

/** The group key of a ready miss (`StageDefinition.group.key` of its params and inputs). */
async function groupKey(inv: Invocation, p: Pending): Promise<string | undefined> {
  // Loaded on first use (it reads tables): a fully cached run never needs it.
  const { groupKeyOf } = await import('./exec/group-job.js');
  return groupKeyOf(p.run.stage, jobOf(p.run, p.inputs, '', inv.opts.options ?? {}));
}

/**
 * Waits for the inputs of `run`, then finds it skipped, cached, or to be computed.
 * @returns its final record (not reported yet), or what computing it needs.
 */
async function ready(inv: Invocation, run: StageRun): Promise<RunRecord | Pending> {
  const inputs = await Promise.all(run.inputs.map((i) => current(inv, i)));
  const started = performance.now();
  const bad = inputs.find((r) => r.status === 'failed' || r.status === 'skipped');
  if (bad) return skipFor(run, bad);
  if (inv.signal.aborted) return interrupted(run, null);
  let resolved = await resolve(inv, run, inputs);
  if (resolved.kind === 'hit') return cachedRecord(inv, run, resolved, secondsSince(started));
  // A miss: the stage will read its inputs. Never let it read a corrupt one.
  const checked = await soundInputs(inv, inputs);
  if (checked.bad) return skipFor(run, checked.bad);
  if (checked.records.some((r, i) => r !== inputs[i])) {
    resolved = await resolve(inv, run, checked.records);
    if (resolved.kind === 'hit') return cachedRecord(inv, run, resolved, secondsSince(started));
  }
  const { key, components, why } = resolved;
  return { run, key, components, inputs: checked.records, why };
}

/** `resolveRun` over finished inputs (their content is known, so the run always gets a key). */
async function resolve(
  inv: Invocation,
  run: StageRun,
  inputs: readonly RunRecord[],
): Promise<Exclude<Resolution, { kind: 'unkeyed' }>> {
  const resolved = await resolveRun(
    run,
    inputs.map((r) => inputState(r, r.status === 'ran')),
    inv.store,
    'run',
  );
  if (resolved.kind === 'unkeyed') throw new Error(`internal: ${run.id} has an unfinished input`);
  return resolved;
}

/**
 * Checks the bytes of the cached inputs a stage is about to read; recomputes corrupt ones.
 * @returns the input records to use, or the record of an input that could not be recomputed.
 */
async function soundInputs(
  inv: Invocation,
  inputs: readonly RunRecord[],
): Promise<{ records: RunRecord[]; bad?: RunRecord }> {
  const out: RunRecord[] = [];
  for (const r of inputs) {
    const problems =
      r.status === 'cached' ? await checkArtifactBytes(r.dir as string, r.manifest as Manifest, inv.bytes) : [];
    if (problems.length === 0) {
      out.push(r);
      continue;
    }
    const fixed = await repair(inv, r, problems);
    if (fixed.status !== 'cached' && fixed.status !== 'ran') return { records: out, bad: fixed };
    out.push(fixed);
  }
  return { records: out };
}

/** Recomputes the corrupt artifact of a cached run (once per run per invocation), alone. */
function repair(inv: Invocation, record: RunRecord, problems: readonly ByteProblem[]): Promise<RunRecord> {
  const run = record.run;
  let p = inv.repaired.get(run);
  if (!p) {
    const problem = formatByteProblems(problems);
    inv.reporter.event(run.id, { kind: 'log', message: `${problem}: recomputing it` });
    p = (async (): Promise<RunRecord> => {
      try {
        const ups = await Promise.all(run.inputs.map((i) => current(inv, i)));
        const checked = await soundInputs(inv, ups);
        if (checked.bad) return report(inv, skipFor(run, checked.bad));
        const { components, key } = runKey(
          run,
          checked.records.map((r) => (r.manifest as Manifest).content_hash),
        );
        const why: Explanation = { reason: problem, roots: [{ id: run.id, reason: problem }] };
        return report(inv, await materialize(inv, { run, key, components, inputs: checked.records, why }, true));
      } catch (err) {
        return report(inv, failed(run, err));
      }
    })();
    inv.repaired.set(run, p);
  }
  return p;
}

/**
 * Makes the artifact of `p.key` exist: reuses one computed meanwhile (by this invocation or another
 * process), else executes the stage under the key's lock. With `distrust`, an existing artifact
 * is reused only when its bytes check out (it is removed otherwise).
 */
async function materialize(inv: Invocation, p: Pending, distrust: boolean): Promise<RunRecord> {
  const started = performance.now();
  // Another run of this invocation computing the same key: wait for it, then reuse.
  const same = inv.inflight.get(p.key);
  if (same) {
    await same.catch(() => undefined);
    const found = await inv.store.lookup(p.run.stage.name, p.key);
    if (found.hit) return cachedRecord(inv, p.run, { key: p.key, ...found }, secondsSince(started));
  }
  inv.reporter.event(p.run.id, { kind: 'queued', reason: p.why.reason });
  const work = inv.limit(() => underLock(inv, p, distrust, started));
  inv.inflight.set(p.key, work);
  return work;
}

/**
 * Starts one group formed by the gatherer (called synchronously): its members execute as one job,
 * taking one of the `jobs` slots. A member whose key another run of this invocation is computing
 * (or that repeats a key of the group) runs through `materialize` instead, which waits and reuses;
 * so does a group of one.
 * @returns one record per member, in order.
 */
function launchGroup(inv: Invocation, members: readonly Pending[]): Promise<RunRecord>[] {
  const seen = new Set<string>();
  const together: Pending[] = [];
  for (const p of members) {
    if (!inv.inflight.has(p.key) && !seen.has(p.key)) together.push(p);
    seen.add(p.key);
  }
  const records = new Map<Pending, Promise<RunRecord>>();
  if (together.length > 1) {
    const started = performance.now();
    for (const p of together) inv.reporter.event(p.run.id, { kind: 'queued', reason: p.why.reason });
    const work = inv.limit(() => groupUnderLocks(inv, together, started));
    for (const p of together) inv.inflight.set(p.key, work);
    together.forEach((p, i) =>
      records.set(
        p,
        work.then((all) => all[i]),
      ),
    );
  }
  return members.map((p) => records.get(p) ?? materialize(inv, p, false));
}

/**
 * The runner's last steps for a run that must be computed: under its key's inter-process lock,
 * reuse what another process committed meanwhile, else execute the job on the executor, write the
 * manifest and commit the artifact atomically (`underLock`, `execute`). A group job (runs of a
 * stage with a `group` member, gathered by `gather.ts`) takes every member's lock, in key order,
 * executes once, and commits each member under its own key exactly as if it had run alone; its
 * manifest differs from a solo run's only by `info.group_size` (and timings, host...).
 */
import { continuationFor } from './cache/continuation.js';
import type { JobInput } from './exec/job.js';
import { checkArtifactBytes } from './cache/integrity.js';
import type { Manifest, ManifestInput, ManifestOutput } from './cache/manifest.js';
import { newManifest } from './cache/manifest.js';
import { executeGroupJob, executeJob, jobOf } from './exec/executor.js';
import type { JobOutcome } from './exec/job.js';
import { groupJobOf } from './exec/group-job.js';
import { cachedRecord, interrupted, message, secondsSince } from './runner-records.js';
import type { Invocation, Pending, RunRecord } from './runner-records.js';
import { jobEvents } from './terminal/progress.js';

/** Takes the key's lock, waiting (and telling the reporter) while another process holds it. */
function lockKey(inv: Invocation, p: Pending): Promise<() => Promise<void>> {
  return inv.store.lock(p.key, {
    signal: inv.signal,
    staleMs: inv.opts.lockStaleMs,
    onWait: () => inv.reporter.event(p.run.id, { kind: 'waiting' }),
  });
}

/**
 * Holding the key's lock: reuses what another process committed meanwhile, else executes. With
 * `distrust`, an existing artifact is reused only when its bytes check out (removed otherwise).
 */
export async function underLock(inv: Invocation, p: Pending, distrust: boolean, started: number): Promise<RunRecord> {
  if (inv.signal.aborted) return interrupted(p.run, p.key);
  let release: () => Promise<void>;
  try {
    release = await lockKey(inv, p);
  } catch (err) {
    if (inv.signal.aborted) return interrupted(p.run, p.key);
    throw err;
  }
  try {
    const found = await reuse(inv, p, distrust, started);
    return found ?? (await execute(inv, p));
  } finally {
    await release();
  }
}

/** With the key's lock held: the record of a sound committed artifact of `p.key`, if there is one. */
async function reuse(inv: Invocation, p: Pending, distrust: boolean, started: number): Promise<RunRecord | undefined> {
  const type = p.run.stage.name;
  const again = await inv.store.lookup(type, p.key);
  if (again.hit) {
    const sound = !distrust || (await checkArtifactBytes(again.dir, again.manifest)).length === 0;
    if (sound) return cachedRecord(inv, p.run, { key: p.key, ...again }, secondsSince(started));
    await inv.store.remove(type, p.key);
  } else if (again.reason) {
    await inv.store.remove(type, p.key);
  }
  return undefined;
}

/** A cached run of the same stage that `p` can continue (`cache/continuation.ts`), and the reason line then. */
function continuation(inv: Invocation, p: Pending): Promise<{ reason: string; input?: JobInput }> {
  return continuationFor(inv.store, p.run, p.components, p.why.reason, inv.bytes);
}

/**
 * Executes the stage into a temporary folder, continuing a cached run where the stage can (prefix
 * reuse), writes its manifest and commits it to the store.
 */
async function execute(inv: Invocation, p: Pending, found?: { reason: string; input?: JobInput }): Promise<RunRecord> {
  const { store, signal } = inv;
  const tmp = await store.createTemp(p.key);
  let committed = false;
  const startedAt = new Date();
  const t0 = performance.now();
  try {
    const cont = found ?? (await continuation(inv, p));
    inv.reporter.event(p.run.id, { kind: 'running', reason: cont.reason });
    const job = jobOf(p.run, p.inputs, tmp, inv.opts.options ?? {}, store.checkpointDir(p.key), cont.input);
    const { outcome, outputs } = await executeJob(inv.executor, job, jobEvents(inv.reporter, p.run.id), signal);
    const timing = { startedAt, seconds: secondsSince(t0) };
    const record = await commitRun(
      inv,
      { ...p, why: { ...p.why, reason: cont.reason } },
      tmp,
      { outcome, outputs },
      timing,
    );
    committed = true;
    return record;
  } catch (err) {
    return failedRun(inv, p, err, secondsSince(t0));
  } finally {
    if (!committed) await store.discard(tmp);
  }
}

/** The record of a run whose execution (or commit) failed: `interrupted` when aborted. */
function failedRun(inv: Invocation, p: Pending, err: unknown, seconds: number, group?: number): RunRecord {
  const error = inv.signal.aborted ? 'interrupted' : message(err);
  const { run, key, why } = p;
  return { run, key, status: 'failed', seconds, reason: why.reason, error, ...(group ? { group } : {}) };
}

/**
 * Writes the manifest of `p`'s finished job into `tmp` and commits it. `group`: the member count
 * of the group job it ran in, recorded as `info.group_size` (absent when it ran alone).
 */
async function commitRun(
  inv: Invocation,
  p: Pending,
  tmp: string,
  done: { outcome: JobOutcome; outputs: ManifestOutput[] },
  timing: { startedAt: Date; seconds: number },
  group?: number,
): Promise<RunRecord> {
  const { run, key, why } = p;
  const manifest = newManifest({
    key,
    components: p.components,
    inputs: p.inputs.map(manifestInput),
    outputs: done.outputs,
    info: group ? { ...done.outcome.info, group_size: group } : done.outcome.info,
    timings: { started: timing.startedAt, finished: new Date(), seconds: timing.seconds },
    options: inv.opts.options,
    pipeline: { file: inv.opts.pipelineFile, id: run.id },
    git: await inv.opts.git?.(),
  });
  const committed = await inv.store.commit(tmp, manifest);
  return {
    run,
    key,
    status: 'ran',
    seconds: timing.seconds,
    reason: why.reason,
    roots: why.roots,
    dir: committed.dir,
    manifest: committed.manifest,
    ...(group ? { group } : {}),
  };
}

/** A finished input as its reader's manifest records it. */
function manifestInput(r: RunRecord): ManifestInput {
  return {
    id: r.run.id,
    stage: r.run.stage.name,
    key: r.key as string,
    content_hash: (r.manifest as Manifest).content_hash,
    matrix: r.run.matrix,
  };
}

/**
 * Holding every member's lock (taken in key order, so that two processes never wait on each
 * other): members another process committed meanwhile are cached, the others execute together
 * (alone when one is left).
 * @returns one record per member, in order.
 */
export async function groupUnderLocks(
  inv: Invocation,
  members: readonly Pending[],
  started: number,
): Promise<RunRecord[]> {
  if (inv.signal.aborted) return members.map((p) => interrupted(p.run, p.key));
  const releases: (() => Promise<void>)[] = [];
  try {
    for (const p of [...members].sort((a, b) => (a.key < b.key ? -1 : 1))) {
      try {
        releases.push(await lockKey(inv, p));
      } catch (err) {
        if (inv.signal.aborted) return members.map((m) => interrupted(m.run, m.key));
        throw err;
      }
    }
    const records = new Map<Pending, RunRecord>();
    const todo: Pending[] = [];
    const alone: [Pending, { reason: string; input?: JobInput }][] = [];
    for (const p of members) {
      const found = await reuse(inv, p, false, started);
      const cont = found ? undefined : await continuation(inv, p);
      if (found) records.set(p, found);
      // A member that continues a cached run (prefix reuse) starts elsewhere than its siblings: alone.
      else if (cont?.input) alone.push([p, cont]);
      else todo.push(p);
    }
    if (todo.length === 1) records.set(todo[0], await execute(inv, todo[0]));
    if (todo.length > 1) (await executeGroup(inv, todo)).forEach((r, i) => records.set(todo[i], r));
    for (const [p, cont] of alone) records.set(p, await execute(inv, p, cont)); // in the group's job slot
    return members.map((p) => records.get(p) as RunRecord);
  } finally {
    for (const release of releases.reverse()) await release();
  }
}

/**
 * Executes `members` as one group job, each into its own temporary folder, then commits each
 * member that succeeded (a failed member fails alone; a rejected group fails every member).
 */
async function executeGroup(inv: Invocation, members: readonly Pending[]): Promise<RunRecord[]> {
  const { store, signal } = inv;
  const n = members.length;
  const tmps: string[] = [];
  const committed = new Set<string>();
  const startedAt = new Date();
  const t0 = performance.now();
  try {
    for (const p of members) tmps.push(await store.createTemp(p.key));
    const ids = members.map((p) => p.run.id).join(', ');
    for (const p of members) {
      inv.reporter.event(p.run.id, { kind: 'running', reason: `${p.why.reason}; group of ${n}` });
      inv.reporter.event(p.run.id, { kind: 'log', message: `running in a group of ${n}: ${ids}` });
    }
    const options = inv.opts.options ?? {};
    const jobs = members.map((p, i) => jobOf(p.run, p.inputs, tmps[i], options, store.checkpointDir(p.key)));
    const events = members.map((p) => jobEvents(inv.reporter, p.run.id));
    let results;
    try {
      results = await executeGroupJob(inv.executor, groupJobOf(jobs), events, signal);
    } catch (err) {
      return members.map((p) => failedRun(inv, p, err, secondsSince(t0), n));
    }
    const timing = { startedAt, seconds: secondsSince(t0) };
    return await Promise.all(
      members.map(async (p, i): Promise<RunRecord> => {
        const r = results[i];
        if (!r.ok) return failedRun(inv, p, new Error(r.message), timing.seconds, n);
        try {
          const record = await commitRun(inv, p, tmps[i], r, timing, n);
          committed.add(tmps[i]);
          return record;
        } catch (err) {
          return failedRun(inv, p, err, timing.seconds, n);
        }
      }),
    );
  } finally {
    for (const tmp of tmps) if (!committed.has(tmp)) await store.discard(tmp);
  }
}

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
 * `runOne` (skip, or resolve its key with `resolveRun`, the step `plan` shares), `soundInputs` and
 * `repair` (byte checks of what a stage will read), `materialize` (one computation per key, bounded
 * by `jobs`, under the key's lock) and `execute` (the job, continuing a cached run where the stage
 * can: `cache/continuation.ts`; then the manifest and the commit).
 */
import type { GitRevision } from './cache/git.js';
import { continuationFor } from './cache/continuation.js';
import type { KeyComponents } from './cache/hash.js';
import { ByteCheckCache, checkArtifactBytes, formatByteProblems } from './cache/integrity.js';
import type { ByteProblem } from './cache/integrity.js';
import { runKey } from './cache/keys.js';
import type { Manifest, ManifestInput } from './cache/manifest.js';
import { newManifest } from './cache/manifest.js';
import type { Store } from './cache/store.js';
import { recordUsage } from './cache/usage.js';
import { executeJob, jobOf } from './exec/executor.js';
import type { Executor } from './exec/executor.js';
import { createLimiter } from './exec/limit.js';
import type { Limiter } from './exec/limit.js';
import type { Explanation, RootCause } from './explain/cause.js';
import { inputState, resolveRun } from './explain/resolve.js';
import type { Resolution } from './explain/resolve.js';
import type { StageRun } from './pipeline/expand.js';
import type { RunOptions } from './stage.js';
import { jobEvents, silentReporter } from './terminal/progress.js';
import type { Reporter } from './terminal/progress.js';

/** Final state of a run. `skipped`: not run because an upstream run failed or the run was interrupted. */
export type RunStatus = 'cached' | 'ran' | 'failed' | 'skipped';

/** The outcome of one run. */
export interface RunRecord {
  readonly run: StageRun;
  /** Its key, or null when it never got one (skipped). */
  readonly key: string | null;
  readonly status: RunStatus;
  /** Wall time spent on it in this invocation (seconds): lookup for cached, stage time for ran. */
  readonly seconds: number;
  /** Why it ran, failed or was skipped (empty for cached). */
  readonly reason: string;
  /** Root causes of a run that ran (the run itself when it had reasons of its own). */
  readonly roots?: readonly RootCause[];
  /** Artifact folder (cached or ran). */
  readonly dir?: string;
  /** Manifest (cached or ran). */
  readonly manifest?: Manifest;
  /** Error message of a failed run. */
  readonly error?: string;
  /** Run id of the failed run at the root of a skip. */
  readonly failedRoot?: string;
}

/** Options of `runPipeline`. */
export interface RunnerOptions {
  readonly store: Store;
  readonly executor: Executor;
  /** Maximum stage runs executing at once (default 1). */
  readonly jobs?: number;
  /** Aborts the run (SIGINT). */
  readonly signal?: AbortSignal;
  readonly reporter?: Reporter;
  /** Invocation options given to every stage (backend, threads). */
  readonly options?: RunOptions;
  /** Pipeline file, recorded in manifests and in the store's usage records. */
  readonly pipelineFile: string;
  /** The pipeline file's git revision for manifests, asked for once a run commits (`cache/git.ts`). */
  readonly git?: () => Promise<GitRevision | undefined>;
  /** Staleness of inter-process locks (milliseconds, default 10,000). */
  readonly lockStaleMs?: number;
}

/**
 * Runs `runs` (in dependency order, as compiled). Removes stale temporaries first; records the
 * entries used in the store's usage records (`cache/usage.ts`) at the end.
 * @returns one record per run, in the same order. Never rejects: a store failure fails the run
 *   it happened in.
 */
export async function runPipeline(runs: readonly StageRun[], opts: RunnerOptions): Promise<RunRecord[]> {
  const inv = invocation(opts);
  await opts.store.cleanStale();
  inv.reporter.start(runs.map((r) => ({ id: r.id, stage: r.stage.name })));
  for (const run of runs) inv.results.set(run, runGuarded(inv, run));
  await Promise.all(inv.results.values());
  const records = await Promise.all(runs.map((r) => current(inv, r)));
  await inv.reporter.stop();
  const used = records.filter((r) => (r.status === 'cached' || r.status === 'ran') && r.key !== null);
  const entries = used.map((r) => ({ stage: r.run.stage.name, key: r.key as string }));
  await recordUsage(opts.store.root, opts.pipelineFile, entries).catch(() => undefined);
  return records;
}

/** What the steps of one `runPipeline` call share. */
interface Invocation {
  readonly store: Store;
  readonly executor: Executor;
  readonly reporter: Reporter;
  readonly signal: AbortSignal;
  readonly opts: RunnerOptions;
  /** At most `jobs` stage runs execute at once. */
  readonly limit: Limiter;
  /** Files whose bytes were already checked in this invocation. */
  readonly bytes: ByteCheckCache;
  /** The record of each run, settled when the run is done. */
  readonly results: Map<StageRun, Promise<RunRecord>>;
  /** Records that replace a cached run's record after its corrupt artifact was recomputed. */
  readonly repaired: Map<StageRun, Promise<RunRecord>>;
  /** Keys being computed in this invocation, so that a second run of a key waits and reuses. */
  readonly inflight: Map<string, Promise<unknown>>;
}

function invocation(opts: RunnerOptions): Invocation {
  return {
    store: opts.store,
    executor: opts.executor,
    reporter: opts.reporter ?? silentReporter,
    signal: opts.signal ?? new AbortController().signal,
    opts,
    limit: createLimiter(opts.jobs ?? 1),
    bytes: new ByteCheckCache(),
    results: new Map(),
    repaired: new Map(),
    inflight: new Map(),
  };
}

/** The latest record of `run`: its repaired one, if its artifact had to be recomputed. */
function current(inv: Invocation, run: StageRun): Promise<RunRecord> {
  return (inv.repaired.get(run) ?? inv.results.get(run)) as Promise<RunRecord>;
}

/** Runs `run`; a store or lock failure outside the stage fails this run, not the invocation. */
async function runGuarded(inv: Invocation, run: StageRun): Promise<RunRecord> {
  try {
    return await runOne(inv, run);
  } catch (err) {
    return report(inv, failed(run, err));
  }
}

/** Waits for the inputs of `run`, then skips it, finds it cached, or has it computed. */
async function runOne(inv: Invocation, run: StageRun): Promise<RunRecord> {
  const inputs = await Promise.all(run.inputs.map((i) => current(inv, i)));
  const started = performance.now();
  const bad = inputs.find((r) => r.status === 'failed' || r.status === 'skipped');
  if (bad) return report(inv, skipFor(run, bad));
  if (inv.signal.aborted) return report(inv, interrupted(run, null));
  let resolved = await resolve(inv, run, inputs);
  if (resolved.kind === 'hit') return report(inv, cachedRecord(inv, run, resolved, secondsSince(started)));
  // A miss: the stage will read its inputs. Never let it read a corrupt one.
  const checked = await soundInputs(inv, inputs);
  if (checked.bad) return report(inv, skipFor(run, checked.bad));
  if (checked.records.some((r, i) => r !== inputs[i])) {
    resolved = await resolve(inv, run, checked.records);
    if (resolved.kind === 'hit') return report(inv, cachedRecord(inv, run, resolved, secondsSince(started)));
  }
  const { key, components, why } = resolved;
  return report(inv, await materialize(inv, { run, key, components, inputs: checked.records, why }, false));
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

/** Recomputes the corrupt artifact of a cached run (once per run per invocation). */
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

/** A run whose artifact must be made to exist. */
interface Pending {
  readonly run: StageRun;
  readonly key: string;
  readonly components: KeyComponents;
  /** Its inputs' records, checked sound, in `run.inputs` order. */
  readonly inputs: readonly RunRecord[];
  /** Why it must run. */
  readonly why: Explanation;
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

/** Holding the key's lock: reuses what another process committed meanwhile, else executes. */
async function underLock(inv: Invocation, p: Pending, distrust: boolean, started: number): Promise<RunRecord> {
  const { store, signal } = inv;
  const type = p.run.stage.name;
  if (signal.aborted) return interrupted(p.run, p.key);
  let release: () => Promise<void>;
  try {
    release = await store.lock(p.key, {
      signal,
      staleMs: inv.opts.lockStaleMs,
      onWait: () => inv.reporter.event(p.run.id, { kind: 'waiting' }),
    });
  } catch (err) {
    if (signal.aborted) return interrupted(p.run, p.key);
    throw err;
  }
  try {
    const again = await store.lookup(type, p.key);
    if (again.hit) {
      const sound = !distrust || (await checkArtifactBytes(again.dir, again.manifest)).length === 0;
      if (sound) return cachedRecord(inv, p.run, { key: p.key, ...again }, secondsSince(started));
      await store.remove(type, p.key);
    } else if (again.reason) {
      await store.remove(type, p.key);
    }
    return await execute(inv, p);
  } finally {
    await release();
  }
}

/** Executes the stage into a temporary folder, writes its manifest and commits it to the store. */
async function execute(inv: Invocation, p: Pending): Promise<RunRecord> {
  const { store, signal } = inv;
  const { run, key, why } = p;
  const tmp = await store.createTemp(key);
  let committed = false;
  const startedAt = new Date();
  const t0 = performance.now();
  try {
    const cont = await continuationFor(store, run, p.components, why.reason, inv.bytes); // prefix reuse
    inv.reporter.event(run.id, { kind: 'running', reason: cont.reason });
    const job = jobOf(run, p.inputs, tmp, inv.opts.options ?? {}, store.checkpointDir(key), cont.input);
    const { outcome, outputs } = await executeJob(inv.executor, job, jobEvents(inv.reporter, run.id), signal);
    const seconds = secondsSince(t0);
    const manifest = newManifest({
      key,
      components: p.components,
      inputs: p.inputs.map(manifestInput),
      outputs,
      info: outcome.info,
      timings: { started: startedAt, finished: new Date(), seconds },
      options: inv.opts.options,
      pipeline: { file: inv.opts.pipelineFile, id: run.id },
      git: await inv.opts.git?.(),
    });
    const done = await store.commit(tmp, manifest);
    committed = true;
    return {
      run,
      key,
      status: 'ran',
      seconds,
      reason: cont.reason,
      roots: why.roots,
      dir: done.dir,
      manifest: done.manifest,
    };
  } catch (err) {
    const error = signal.aborted ? 'interrupted' : message(err);
    return { run, key, status: 'failed', seconds: secondsSince(t0), reason: why.reason, error };
  } finally {
    if (!committed) await store.discard(tmp);
  }
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

/** Reports a finished run's final event; returns the record. */
function report(inv: Invocation, record: RunRecord): RunRecord {
  const id = record.run.id;
  if (record.status === 'cached') inv.reporter.event(id, { kind: 'cached' });
  else if (record.status === 'ran') inv.reporter.event(id, { kind: 'ran', seconds: record.seconds });
  else if (record.status === 'failed') inv.reporter.event(id, { kind: 'failed', error: record.error ?? record.reason });
  else inv.reporter.event(id, { kind: 'skipped', reason: record.reason });
  return record;
}

/** The record of a cached run; touches the entry (its folder time is its last use, for `gc`). */
function cachedRecord(
  inv: Invocation,
  run: StageRun,
  hit: { key: string; dir: string; manifest: Manifest },
  seconds: number,
): RunRecord {
  void inv.store.touch(run.stage.name, hit.key);
  return { run, key: hit.key, status: 'cached', seconds, reason: '', dir: hit.dir, manifest: hit.manifest };
}

/** The record of a run skipped because its input `bad` failed or was skipped. */
function skipFor(run: StageRun, bad: RunRecord): RunRecord {
  const root = bad.status === 'failed' ? bad.run.id : bad.failedRoot;
  const reason = root ? `upstream ${root} failed` : bad.reason;
  return { run, key: null, status: 'skipped', seconds: 0, reason, ...(root ? { failedRoot: root } : {}) };
}

function interrupted(run: StageRun, key: string | null): RunRecord {
  return { run, key, status: 'skipped', seconds: 0, reason: 'interrupted' };
}

function failed(run: StageRun, err: unknown): RunRecord {
  const error = message(err);
  return { run, key: null, status: 'failed', seconds: 0, reason: error, error };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}

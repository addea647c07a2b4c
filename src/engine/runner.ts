/**
 * Runs stage runs in dependency order. As soon as a run's inputs are done, its key is computed
 * from their content hashes (early cutoff); a hit is `cached`, a miss is executed (at most `jobs`
 * at once) under the key's inter-process lock and committed atomically to the store. A run that
 * fails marks its dependents `skipped`; the others go on. Aborting stops new runs, aborts running
 * stages and discards their temporaries.
 *
 * Before a stage reads a cached input, the input's files are checked against the byte hashes in
 * its manifest (`integrity.ts`, each file hashed once per invocation). A corrupt input is reported,
 * recomputed (its record becomes `ran`, reason `corrupt: <file> (...)`) and only then read; if its
 * content comes out different, the reading run's key is computed again.
 */
import { hostname } from 'node:os';
import { explainRun } from './explain/cause.js';
import type { Explanation, InputState, RootCause } from './explain/cause.js';
import { currentEnvironment } from './cache/environment.js';
import type { Executor } from './exec/executor.js';
import type { StageRun } from './pipeline/expand.js';
import { contentHash, hashJson, stageKey } from './cache/hash.js';
import type { KeyComponents } from './cache/hash.js';
import { ByteCheckCache, checkArtifactBytes, formatByteProblems } from './cache/integrity.js';
import type { ByteProblem } from './cache/integrity.js';
import { keyComponents } from './cache/keys.js';
import { createLimiter } from './exec/limit.js';
import type { Manifest } from './cache/manifest.js';
import { MANIFEST_FORMAT } from './cache/manifest.js';
import { silentReporter } from './terminal/progress.js';
import type { Reporter } from './terminal/progress.js';
import type { Json, ProgressUpdate, RunOptions } from './stage.js';
import type { Lookup, Store } from './cache/store.js';
import type { JobInput, JobOutcome, JobSpec } from './exec/job.js';
import { recordUsage } from './cache/usage.js';
import { grokpipeVersion } from './cache/version.js';

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
  /** Staleness of inter-process locks (milliseconds, default 10,000). */
  readonly lockStaleMs?: number;
}

/**
 * Runs `runs` (in dependency order, as compiled). Removes stale temporaries first; records the
 * entries used in the store's usage records (`usage.ts`) at the end.
 * @returns one record per run, in the same order. Never rejects: a store failure fails the run
 *   it happened in.
 */
export async function runPipeline(runs: readonly StageRun[], opts: RunnerOptions): Promise<RunRecord[]> {
  const { store, executor } = opts;
  const reporter = opts.reporter ?? silentReporter;
  const signal = opts.signal ?? new AbortController().signal;
  const limit = createLimiter(opts.jobs ?? 1);
  const inflight = new Map<string, Promise<unknown>>();
  const bytes = new ByteCheckCache();
  await store.cleanStale();
  reporter.start(runs.map((r) => ({ id: r.id, stage: r.stage.name })));
  const results = new Map<StageRun, Promise<RunRecord>>();
  /** Records that replace a cached run's record after its corrupt artifact was recomputed. */
  const repaired = new Map<StageRun, Promise<RunRecord>>();
  const current = (run: StageRun): Promise<RunRecord> => (repaired.get(run) ?? results.get(run)) as Promise<RunRecord>;

  const finish = (record: RunRecord): RunRecord => {
    const id = record.run.id;
    if (record.status === 'cached') reporter.event(id, { kind: 'cached' });
    else if (record.status === 'ran') reporter.event(id, { kind: 'ran', seconds: record.seconds });
    else if (record.status === 'failed') reporter.event(id, { kind: 'failed', error: record.error ?? record.reason });
    else reporter.event(id, { kind: 'skipped', reason: record.reason });
    return record;
  };

  const skipFor = (run: StageRun, bad: RunRecord): RunRecord => {
    const root = bad.status === 'failed' ? bad.run.id : bad.failedRoot;
    const reason = root ? `upstream ${root} failed` : bad.reason;
    return { run, key: null, status: 'skipped', seconds: 0, reason, ...(root ? { failedRoot: root } : {}) };
  };

  const keyOf = async (run: StageRun, inputs: readonly RunRecord[]): Promise<{ components: KeyComponents; key: string; found: Lookup }> => {
    const components = keyComponents(
      run,
      inputs.map((r) => (r.manifest as Manifest).content_hash),
    );
    const key = stageKey(components);
    return { components, key, found: await store.lookup(run.stage.name, key) };
  };

  const cachedRecord = (run: StageRun, key: string, hit: Lookup & { hit: true }, seconds: number): RunRecord => {
    void store.touch(run.stage.name, key);
    return { run, key, status: 'cached', seconds, reason: '', dir: hit.dir, manifest: hit.manifest };
  };

  /**
   * Checks the bytes of the cached inputs a stage is about to read; recomputes corrupt ones.
   * @returns the input records to use, or the record of an input that could not be recomputed.
   */
  const soundInputs = async (inputs: readonly RunRecord[]): Promise<{ records: RunRecord[]; bad?: RunRecord }> => {
    const out: RunRecord[] = [];
    for (const r of inputs) {
      if (r.status !== 'cached') {
        out.push(r);
        continue;
      }
      const problems = await checkArtifactBytes(r.dir as string, r.manifest as Manifest, bytes);
      if (problems.length === 0) {
        out.push(r);
        continue;
      }
      const fixed = await repair(r, problems);
      if (fixed.status !== 'cached' && fixed.status !== 'ran') return { records: out, bad: fixed };
      out.push(fixed);
    }
    return { records: out };
  };

  /** Recomputes the corrupt artifact of a cached run (once per run per invocation). */
  const repair = (record: RunRecord, problems: readonly ByteProblem[]): Promise<RunRecord> => {
    let p = repaired.get(record.run);
    if (!p) {
      const run = record.run;
      const problem = formatByteProblems(problems);
      reporter.event(run.id, { kind: 'log', message: `${problem}: recomputing it` });
      p = (async (): Promise<RunRecord> => {
        try {
          const ups = await Promise.all(run.inputs.map(current));
          const checked = await soundInputs(ups);
          if (checked.bad) return finish(skipFor(run, checked.bad));
          const { components, key } = await keyOf(run, checked.records);
          const why: Explanation = { reason: problem, roots: [{ id: run.id, reason: problem }] };
          return finish(await materialize(run, key, components, checked.records, why, true));
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          return finish({ run, key: null, status: 'failed', seconds: 0, reason: error, error });
        }
      })();
      repaired.set(run, p);
    }
    return p;
  };

  const handle = async (run: StageRun): Promise<RunRecord> => {
    let inputs = await Promise.all(run.inputs.map(current));
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    const bad = inputs.find((r) => r.status === 'failed' || r.status === 'skipped');
    if (bad) return finish(skipFor(run, bad));
    if (signal.aborted) return finish({ run, key: null, status: 'skipped', seconds: 0, reason: 'interrupted' });
    let { components, key, found } = await keyOf(run, inputs);
    if (found.hit) return finish(cachedRecord(run, key, found, seconds()));
    // A miss: the stage will read its inputs. Never let it read a corrupt one.
    const checked = await soundInputs(inputs);
    if (checked.bad) return finish(skipFor(run, checked.bad));
    if (checked.records.some((r, i) => r !== inputs[i])) {
      inputs = checked.records;
      ({ components, key, found } = await keyOf(run, inputs));
      if (found.hit) return finish(cachedRecord(run, key, found, seconds()));
    }
    const why = await explainRun({
      id: run.id,
      own: { stage: run.stage.name, version: run.stage.version, params: run.params },
      components,
      inputs: inputs.map(inputState),
      ...(found.reason ? { lookupReason: found.reason } : {}),
      candidates: await store.manifests(run.stage.name),
      find: (stage, k) => store.findManifest(stage, k),
      mode: 'run',
    });
    return finish(await materialize(run, key, components, inputs, why, false));
  };

  /**
   * Makes the artifact of `key` exist: reuses one computed meanwhile (by this invocation or another
   * process), else executes the stage under the key's lock. With `distrust`, an existing artifact
   * is reused only when its bytes check out (it is removed otherwise).
   */
  const materialize = async (
    run: StageRun,
    key: string,
    components: KeyComponents,
    inputs: readonly RunRecord[],
    why: Explanation,
    distrust: boolean,
  ): Promise<RunRecord> => {
    const type = run.stage.name;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    // Another run of this invocation computing the same key: wait for it, then reuse.
    const same = inflight.get(key);
    if (same) {
      await same.catch(() => undefined);
      const found = await store.lookup(type, key);
      if (found.hit) return cachedRecord(run, key, found, seconds());
    }
    reporter.event(run.id, { kind: 'queued', reason: why.reason });
    const work = limit(async (): Promise<RunRecord> => {
      if (signal.aborted) return { run, key, status: 'skipped', seconds: 0, reason: 'interrupted' };
      let release: (() => Promise<void>) | undefined;
      try {
        release = await store.lock(key, {
          signal,
          staleMs: opts.lockStaleMs,
          onWait: () => reporter.event(run.id, { kind: 'waiting' }),
        });
      } catch (err) {
        if (signal.aborted) return { run, key, status: 'skipped', seconds: 0, reason: 'interrupted' };
        throw err;
      }
      try {
        const again = await store.lookup(type, key);
        if (again.hit) {
          if (!distrust || (await checkArtifactBytes(again.dir, again.manifest)).length === 0) return cachedRecord(run, key, again, seconds());
          await store.remove(type, key);
        } else if (again.reason) {
          await store.remove(type, key);
        }
        return await execute(run, key, components, inputs, why);
      } finally {
        await release();
      }
    });
    inflight.set(key, work);
    return work;
  };

  const execute = async (
    run: StageRun,
    key: string,
    components: KeyComponents,
    inputs: readonly RunRecord[],
    why: Explanation,
  ): Promise<RunRecord> => {
    const reason = why.reason;
    const tmp = await store.createTemp(key);
    let committed = false;
    const startedAt = new Date();
    const t0 = performance.now();
    try {
      reporter.event(run.id, { kind: 'running', reason });
      const job: JobSpec = {
        runId: run.id,
        stage: run.stage.name,
        version: run.stage.version,
        params: run.params,
        inputs: inputs.map(jobInput),
        outDir: tmp,
        options: opts.options ?? {},
        checkpointDir: store.checkpointDir(key),
      };
      const events = {
        progress: (update: ProgressUpdate) => reporter.event(run.id, { kind: 'progress', update }),
        log: (message: string) => reporter.event(run.id, { kind: 'log', message }),
      };
      const outcome: JobOutcome = await executor.execute(job, events, signal);
      signal.throwIfAborted();
      // Loaded on first use (Parquet libraries): a fully cached run never needs them.
      const { collectOutputs } = await import('./cache/outputs.js');
      const outputs = await collectOutputs(tmp, outcome.written);
      const finishedAt = new Date();
      const seconds = (performance.now() - t0) / 1000;
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        stage: run.stage.name,
        key,
        content_hash: contentHash(outputs.map((o) => ({ name: o.name, hash: o.content_hash }))),
        components: {
          stage: components.stage,
          version: components.version,
          params_hash: hashJson(components.params),
          inputs: components.inputs,
        },
        params: run.params,
        inputs: inputs.map((r) => ({
          id: r.run.id,
          stage: r.run.stage.name,
          key: r.key as string,
          content_hash: (r.manifest as Manifest).content_hash,
          matrix: r.run.matrix,
        })),
        outputs,
        info: outcome.info,
        versions: { grokpipe: grokpipeVersion(), node: process.version, ...recordedVersions(outcome.info) },
        timings: { started: startedAt.toISOString(), finished: finishedAt.toISOString(), seconds },
        host: hostname(),
        environment: currentEnvironment(opts.options),
        pipeline: { file: opts.pipelineFile, id: run.id },
      };
      const done = await store.commit(tmp, manifest);
      committed = true;
      return { run, key, status: 'ran', seconds, reason, roots: why.roots, dir: done.dir, manifest: done.manifest };
    } catch (err) {
      const interrupted = signal.aborted;
      const message = interrupted ? 'interrupted' : err instanceof Error ? err.message : String(err);
      return { run, key, status: 'failed', seconds: (performance.now() - t0) / 1000, reason, error: message };
    } finally {
      if (!committed) await store.discard(tmp);
    }
  };

  const guarded = async (run: StageRun): Promise<RunRecord> => {
    try {
      return await handle(run);
    } catch (err) {
      // Store or lock failures outside the stage: fail this run, not the whole invocation.
      const error = err instanceof Error ? err.message : String(err);
      return finish({ run, key: null, status: 'failed', seconds: 0, reason: error, error });
    }
  };
  for (const run of runs) results.set(run, guarded(run));
  await Promise.all(runs.map((r) => results.get(r) as Promise<RunRecord>));
  const records = await Promise.all(runs.map(current));
  await reporter.stop();
  const used = records.filter((r) => (r.status === 'cached' || r.status === 'ran') && r.key !== null);
  await recordUsage(store.root, opts.pipelineFile, used.map((r) => ({ stage: r.run.stage.name, key: r.key as string }))).catch(() => undefined);
  return records;
}

/** How a finished input looks to `explainRun`: with roots when it ran in this invocation. */
function inputState(r: RunRecord): InputState {
  return {
    id: r.run.id,
    matrix: r.run.matrix,
    ...(r.status === 'ran' ? { roots: r.roots ?? [{ id: r.run.id, reason: r.reason }] } : {}),
    ...(r.manifest ? { manifest: r.manifest } : {}),
  };
}

function jobInput(r: RunRecord): JobInput {
  const m = r.manifest as Manifest;
  return {
    id: r.run.id,
    stage: r.run.stage.name,
    key: r.key as string,
    matrix: r.run.matrix,
    params: m.params,
    files: m.outputs.map((o) => o.name),
    dir: r.dir as string,
  };
}

/** String-valued entries of `info.versions`, if the stage recorded any. */
function recordedVersions(info: Record<string, Json>): Record<string, string> {
  const v = info.versions;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

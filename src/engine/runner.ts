/**
 * Runs stage runs in dependency order. As soon as a run's inputs are done, its key is computed
 * from their content hashes (early cutoff); a hit is `cached`, a miss is executed (at most `jobs`
 * at once) under the key's inter-process lock and committed atomically to the store. A run that
 * fails marks its dependents `skipped`; the others go on. Aborting stops new runs, aborts running
 * stages and discards their temporaries.
 */
import { hostname } from 'node:os';
import type { Executor } from './executor.js';
import type { StageRun } from './expand.js';
import { contentHash, hashJson, stageKey } from './hash.js';
import type { KeyComponents } from './hash.js';
import { keyComponents } from './keys.js';
import { createLimiter } from './limit.js';
import type { Manifest } from './manifest.js';
import { MANIFEST_FORMAT } from './manifest.js';
import { collectOutputs } from './outputs.js';
import { silentReporter } from './progress.js';
import type { Reporter } from './progress.js';
import type { Json, ProgressUpdate, RunOptions } from './stage.js';
import type { Store } from './store.js';
import type { TaskInput, TaskOutcome, TaskSpec } from './task.js';
import { grokpipeVersion } from './version.js';
import { explainMiss } from './why.js';

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
  /** Pipeline file, recorded in manifests. */
  readonly pipelineFile: string;
  /** Staleness of inter-process locks (milliseconds, default 10,000). */
  readonly lockStaleMs?: number;
}

/**
 * Runs `runs` (in dependency order, as compiled). Removes stale temporaries first.
 * @returns one record per run, in the same order. Never rejects: a store failure fails the run
 *   it happened in.
 */
export async function runPipeline(runs: readonly StageRun[], opts: RunnerOptions): Promise<RunRecord[]> {
  const { store, executor } = opts;
  const reporter = opts.reporter ?? silentReporter;
  const signal = opts.signal ?? new AbortController().signal;
  const limit = createLimiter(opts.jobs ?? 1);
  const inflight = new Map<string, Promise<unknown>>();
  await store.cleanStale();
  reporter.start(runs.map((r) => ({ id: r.id, stage: r.stage.name })));
  const results = new Map<StageRun, Promise<RunRecord>>();

  const finish = (record: RunRecord): RunRecord => {
    const id = record.run.id;
    if (record.status === 'cached') reporter.event(id, { kind: 'cached' });
    else if (record.status === 'ran') reporter.event(id, { kind: 'ran', seconds: record.seconds });
    else if (record.status === 'failed') reporter.event(id, { kind: 'failed', error: record.error ?? record.reason });
    else reporter.event(id, { kind: 'skipped', reason: record.reason });
    return record;
  };

  const handle = async (run: StageRun): Promise<RunRecord> => {
    const inputs = await Promise.all(run.inputs.map((i) => results.get(i) as Promise<RunRecord>));
    const started = performance.now();
    const bad = inputs.find((r) => r.status === 'failed' || r.status === 'skipped');
    if (bad) {
      const root = bad.status === 'failed' ? bad.run.id : bad.failedRoot;
      const reason = root ? `upstream ${root} failed` : bad.reason;
      return finish({ run, key: null, status: 'skipped', seconds: 0, reason, failedRoot: root });
    }
    if (signal.aborted) return finish({ run, key: null, status: 'skipped', seconds: 0, reason: 'interrupted' });
    const components = keyComponents(
      run,
      inputs.map((r) => (r.manifest as Manifest).content_hash),
    );
    const key = stageKey(components);
    const type = run.stage.name;
    const seconds = () => (performance.now() - started) / 1000;
    let found = await store.lookup(type, key);
    if (found.hit) return finish({ run, key, status: 'cached', seconds: seconds(), reason: '', dir: found.dir, manifest: found.manifest });
    const reason = found.reason ?? explainMiss({ components, inputIds: run.inputs.map((i) => i.id) }, await store.manifests(type));
    // Another run of this invocation computing the same key: wait for it, then reuse.
    const same = inflight.get(key);
    if (same) {
      await same.catch(() => undefined);
      found = await store.lookup(type, key);
      if (found.hit) return finish({ run, key, status: 'cached', seconds: seconds(), reason: '', dir: found.dir, manifest: found.manifest });
    }
    reporter.event(run.id, { kind: 'queued', reason });
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
        if (again.hit) return { run, key, status: 'cached', seconds: seconds(), reason: '', dir: again.dir, manifest: again.manifest };
        if (again.reason) await store.remove(type, key);
        return await execute(run, key, components, inputs, reason);
      } finally {
        await release();
      }
    });
    inflight.set(key, work);
    return finish(await work);
  };

  const execute = async (
    run: StageRun,
    key: string,
    components: KeyComponents,
    inputs: readonly RunRecord[],
    reason: string,
  ): Promise<RunRecord> => {
    const tmp = await store.createTemp(key);
    let committed = false;
    const startedAt = new Date();
    const t0 = performance.now();
    try {
      reporter.event(run.id, { kind: 'running', reason });
      const task: TaskSpec = {
        runId: run.id,
        stage: run.stage.name,
        version: run.stage.version,
        params: run.params,
        inputs: inputs.map(taskInput),
        outDir: tmp,
        options: opts.options ?? {},
        checkpointDir: store.checkpointDir(key),
      };
      const events = {
        progress: (update: ProgressUpdate) => reporter.event(run.id, { kind: 'progress', update }),
        log: (message: string) => reporter.event(run.id, { kind: 'log', message }),
      };
      const outcome: TaskOutcome = await executor.execute(task, events, signal);
      signal.throwIfAborted();
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
        pipeline: { file: opts.pipelineFile, id: run.id },
      };
      const done = await store.commit(tmp, manifest);
      committed = true;
      return { run, key, status: 'ran', seconds, reason, dir: done.dir, manifest: done.manifest };
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
  const records = await Promise.all(runs.map((r) => results.get(r) as Promise<RunRecord>));
  await reporter.stop();
  return records;
}

function taskInput(r: RunRecord): TaskInput {
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

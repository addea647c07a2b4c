/**
 * Benchmark of replanning a fully cached sweep (`grokpipe status`): `--runs N` runs (default 100;
 * entities x seed, 10 entity counts x N/10 seeds) of the six built-in stages (generate, split,
 * tokenize, train, evaluate, analyze), 6 N stage runs, every one cached. Goals: 100 runs under
 * 0.5 s, 10,000 runs (60,000 stage runs) under 2 s end to end (issue 16).
 *
 * The store is built once through the real engine (`runPipeline`) with stand-ins for the stages:
 * the built-in definitions (same names, code versions and params schemas, hence the same keys) with
 * a `run` that writes small files named like the real outputs (nothing is trained). It is kept in
 * the system's temporary folder and reused by later invocations.
 *
 * Timed, each the median of `repeats` after one warm-up:
 * - `compile`: load, validate and expand the pipeline file;
 * - `plan`: plan every run against the store (fresh `Store`: manifests read from disk);
 * - `cli`: `grokpipe status <file> --json` end to end in a new Node process (the built
 *   `bin/grokpipe.js` when `dist/` exists, else the sources through tsx, which adds its start-up).
 *
 *     npm run bench -- status [--runs 100] [--repeats 5]
 *
 * Each size has its own store (building 10,000 runs through the engine takes minutes, once).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { InlineExecutor } from '../src/engine/exec/executor-inline.js';
import { hashJson } from '../src/engine/cache/hash.js';
import { compilePipeline } from '../src/engine/pipeline/pipeline.js';
import { planRuns } from '../src/engine/explain/plan.js';
import { createRegistry } from '../src/engine/registry.js';
import { runPipeline } from '../src/engine/runner.js';
import type { StageContext, StageDefinition } from '../src/engine/stage.js';
import { Store } from '../src/engine/cache/store.js';
import { builtinStages } from '../src/stages/index.js';

/**
 * The sweep of `runs` runs (a multiple of 10): 10 entity counts (200, 300, ..., 1100) x `runs / 10`
 * seeds, six stages per run. At 100 runs it is the sweep this bench always timed (same keys).
 * @throws Error when `runs` is not a positive multiple of 10.
 */
export function statusPipeline(runs = 100): string {
  if (!Number.isInteger(runs / 10) || runs <= 0)
    throw new Error(`--runs must be a positive multiple of 10, got ${runs}`);
  const seeds = Array.from({ length: runs / 10 }, (_, i) => i);
  return `
name: status-bench
description: ${runs} runs x 6 stages, for timing a fully cached replan
matrix:
  entities: [200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100]
  seed: [${seeds.join(', ')}]
stages:
  kb:
    uses: generate
    with: { entities: "\${{ matrix.entities }}", seed: "\${{ matrix.seed }}" }
  facts:
    uses: split
    needs: [kb]
  tokens:
    uses: tokenize
    needs: [facts]
  model:
    uses: train
    needs: [tokens]
    with: { max_steps: 2000, eval_every: 100 }
  scores:
    uses: evaluate
    needs: [model, tokens]
  report:
    uses: analyze
    needs: [scores]
`;
}

/** The 100-run sweep (600 stage runs). */
export const STATUS_PIPELINE = statusPipeline(100);

/** Output files of each stand-in, named like the real stages' (docs/artifacts.md). */
const OUTPUTS: Record<string, { tables: string[]; files: string[] }> = {
  generate: { tables: ['kb.parquet'], files: [] },
  split: { tables: ['entities.parquet', 'train.parquet', 'test.parquet'], files: ['task.json'] },
  tokenize: { tables: ['vocab.parquet', 'train.parquet', 'test.parquet'], files: [] },
  train: { tables: ['curve.parquet'], files: ['weights.safetensors', 'model.json'] },
  evaluate: { tables: ['predictions.parquet', 'accuracy.parquet', 'curve.parquet'], files: [] },
  analyze: { tables: ['metrics.parquet', 'curves.parquet'], files: ['grokking.svg'] },
};

/** The built-in stage definitions with a cheap `run` that writes distinct small outputs. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function standInStages(): StageDefinition<any>[] {
  return builtinStages.map((def) => ({
    ...def,
    async run(ctx: StageContext) {
      const tag = hashJson({ params: ctx.params, inputs: ctx.inputs.map((i) => i.key) });
      const out = OUTPUTS[def.name] ?? { tables: ['out.parquet'], files: [] };
      for (const name of out.tables) {
        await ctx.writeTable(name, { columns: [{ name: 'tag', type: 'STRING', data: [tag, name] }] });
      }
      for (const name of out.files) await ctx.writeFile(name, `${tag} ${name}\n`);
      if (def.name === 'train' || def.name === 'evaluate') ctx.record('backend', 'cpu');
    },
  }));
}

/** Result of `benchStatus` (milliseconds unless said otherwise). */
export interface StatusBenchResult {
  /** Stage runs in the pipeline (600). */
  stageRuns: number;
  /** Store folder used. */
  store: string;
  /** Seconds spent building the store in this invocation (0 when it was reused). */
  buildSeconds: number;
  /** Median times of compile, plan and their sum, in this process. */
  compile: number;
  plan: number;
  inProcess: number;
  /** Median end-to-end time of `grokpipe status --json` in a new process, and how it was run. */
  cli: number;
  cliCommand: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Builds (or reuses) the cached sweep and times `status` on it.
 * @param repeats timed repetitions of each measurement (default 5).
 * @param runs runs in the sweep (a multiple of 10; default 100, so 600 stage runs).
 * @throws Error when the store is not fully cached after building (the stand-ins drifted from the
 *   built-in stages) or the CLI fails.
 */
export async function benchStatus(repeats = 5, runs = 100): Promise<StatusBenchResult> {
  const text = statusPipeline(runs);
  const root = join(tmpdir(), `grokpipe-status-bench-${hashJson(text).slice(0, 12)}`);
  mkdirSync(root, { recursive: true });
  const file = join(root, 'status-bench.yaml');
  writeFileSync(file, text);
  const storeDir = join(root, 'store');
  const registry = createRegistry(builtinStages);

  let buildSeconds = 0;
  const first = await planRuns(compilePipeline(file, registry).runs, new Store(storeDir));
  if (first.some((p) => p.status !== 'cached')) {
    const t0 = performance.now();
    const fakes = createRegistry(standInStages());
    const pipeline = compilePipeline(file, fakes);
    const records = await runPipeline(pipeline.runs, {
      store: new Store(storeDir),
      executor: new InlineExecutor(fakes),
      jobs: 1,
      pipelineFile: file,
    });
    const failed = records.find((r) => r.status === 'failed');
    if (failed) throw new Error(`building the store failed at ${failed.run.id}: ${failed.error ?? failed.reason}`);
    buildSeconds = (performance.now() - t0) / 1000;
  }

  const once = async () => {
    const t0 = performance.now();
    const pipeline = compilePipeline(file, registry);
    const t1 = performance.now();
    const plan = await planRuns(pipeline.runs, new Store(storeDir));
    const t2 = performance.now();
    const planned = plan.filter((p) => p.status !== 'cached');
    if (planned.length > 0)
      throw new Error(`${planned.length} runs are not cached (first: ${planned[0].run.id}: ${planned[0].reason})`);
    return { compile: t1 - t0, plan: t2 - t1, runs: plan.length };
  };
  await once();
  const samples = [];
  for (let i = 0; i < repeats; i++) samples.push(await once());

  const repo = fileURLToPath(new URL('..', import.meta.url));
  const built = existsSync(join(repo, 'dist', 'cli.js'));
  const command = built
    ? [process.execPath, join(repo, 'bin', 'grokpipe.js')]
    : [process.execPath, '--import', 'tsx', join(repo, 'src', 'cli.ts')];
  // stdout into a file, as a user's `> file` or a terminal would take it: collecting 10 MB of JSON
  // (10,000 runs) from a pipe cost this process more than the command's own work.
  const out = join(root, 'status-out.json');
  const cliOnce = async () => {
    const t0 = performance.now();
    const r = await execa(command[0], [...command.slice(1), 'status', file, '--store', storeDir, '--json'], {
      cwd: repo,
      reject: false,
      stdout: { file: out },
    });
    const ms = performance.now() - t0;
    if (r.exitCode !== 0) throw new Error(`grokpipe status failed (${r.exitCode}): ${r.stderr}`);
    const runs = (JSON.parse(readFileSync(out, 'utf8')) as { runs: { status: string }[] }).runs;
    if (runs.some((x) => x.status !== 'cached')) throw new Error('grokpipe status found runs that are not cached');
    return ms;
  };
  await cliOnce();
  const cli = [];
  for (let i = 0; i < repeats; i++) cli.push(await cliOnce());

  return {
    stageRuns: samples[0].runs,
    store: storeDir,
    buildSeconds,
    compile: median(samples.map((s) => s.compile)),
    plan: median(samples.map((s) => s.plan)),
    inProcess: median(samples.map((s) => s.compile + s.plan)),
    cli: median(cli),
    cliCommand: built
      ? 'node bin/grokpipe.js (dist)'
      : 'node --import tsx src/cli.ts (no dist/: includes tsx start-up)',
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
  };
  const runs = Number(arg('runs', '100'));
  const goal = runs > 1000 ? 2000 : 500;
  const r = await benchStatus(Number(arg('repeats', '5')), runs);
  const ok = (ms: number) => (ms < goal ? 'under' : 'OVER');
  console.log(
    `grokpipe status on a fully cached sweep: ${r.stageRuns} stage runs (${runs} runs x 6 stages), store ${r.store}`,
  );
  if (r.buildSeconds > 0) console.log(`  (store built in ${r.buildSeconds.toFixed(1)} s)`);
  console.log(
    `  in process: ${r.inProcess.toFixed(0)} ms (compile ${r.compile.toFixed(0)} ms + plan ${r.plan.toFixed(0)} ms), ${ok(r.inProcess)} the ${goal} ms goal`,
  );
  console.log(`  end to end: ${r.cli.toFixed(0)} ms with ${r.cliCommand}, ${ok(r.cli)} the ${goal} ms goal`);
}

/**
 * Benchmark of the data stages (`generate`, `split`, `tokenize`) at the published scale of
 * Wang et al. 2024 (N = 1000, A = 20, V = 20, id_fraction 0.9, phi 12.6, test_size 3000:
 * 20,000 atomic + 226,800 training inferred facts). Target: under 5 s for the three together.
 *
 * Two modes, each the median (ms) of a few runs: `memory` (tables handed over in memory, no
 * Parquet) and `parquet` (every table encoded and written, and read back with hash verification
 * by the next stage, as the engine does).
 *
 * Standalone: `npx tsx bench/data.bench.ts [runs]` prints the figures.
 */
import { pathToFileURL } from 'node:url';
import { generateStage } from '../src/stages/generate.js';
import { splitStage } from '../src/stages/split.js';
import { tokenizeStage } from '../src/stages/tokenize.js';
import type { Storage } from '../test/data-context.js';
import { runFake } from '../test/data-context.js';

/** Median wall time (ms) of each stage and of the three together, in one storage mode. */
export interface DataTimings {
  generate: number;
  split: number;
  tokenize: number;
  total: number;
}

/** Result of `benchData`: timings without and with Parquet I/O, and the number of runs. */
export interface DataBenchResult {
  runs: number;
  memory: DataTimings;
  parquet: DataTimings;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function once(storage: Storage): Promise<DataTimings> {
  const t0 = performance.now();
  const kb = await runFake(generateStage, { entities: 1000, attributes: 20, values: 20, seed: 0 }, [], storage);
  const t1 = performance.now();
  const facts = await runFake(splitStage, { id_fraction: 0.9, phi: 12.6, test_size: 3000, seed: 0 }, [kb], storage);
  const t2 = performance.now();
  await runFake(tokenizeStage, {}, [facts], storage);
  const t3 = performance.now();
  return { generate: t1 - t0, split: t2 - t1, tokenize: t3 - t2, total: t3 - t0 };
}

/**
 * Runs the three stages `runs` times in each storage mode (after one warm-up run per mode, not
 * counted) and returns the median times in milliseconds.
 */
export async function benchData(runs = 5): Promise<DataBenchResult> {
  const result: Partial<Record<Storage, DataTimings>> = {};
  for (const storage of ['memory', 'parquet'] as const) {
    await once(storage);
    const samples: DataTimings[] = [];
    for (let i = 0; i < runs; i++) samples.push(await once(storage));
    result[storage] = {
      generate: median(samples.map((s) => s.generate)),
      split: median(samples.map((s) => s.split)),
      tokenize: median(samples.map((s) => s.tokenize)),
      total: median(samples.map((s) => s.total)),
    };
  }
  return { runs, memory: result.memory!, parquet: result.parquet! };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = Number(process.argv[2] ?? 5);
  const r = await benchData(runs);
  const fmt = (t: DataTimings) =>
    `generate ${t.generate.toFixed(0)} ms, split ${t.split.toFixed(0)} ms, tokenize ${t.tokenize.toFixed(0)} ms, total ${t.total.toFixed(0)} ms`;
  console.log(`data stages at the published scale (N=1000, A=20, V=20, phi=12.6), median of ${r.runs} runs`);
  console.log(`  without Parquet: ${fmt(r.memory)}`);
  console.log(`  with Parquet:    ${fmt(r.parquet)}`);
}

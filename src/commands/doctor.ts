/**
 * `grokpipe doctor [--bench] [--json]`: what this machine will train on, and how to make it
 * faster. Starts each TF.js backend in `BACKEND_PREFERENCE` order (best first) and reports which
 * work, why the others do not and the command that installs them, the BLAS library behind
 * `wasm-blas`, the backend `--backend auto` picks, and Node, platform and CPU. With `--bench`, a
 * matrix product on the backend auto picks (under a second). Exit 0 when at least one backend
 * starts, 1 when none does.
 *
 * The backends (and TF.js) are imported when the command runs, not with the CLI.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { createColors } from 'picocolors';
import type { BackendName } from '../models/backend-names.js';
import { BACKEND_PREFERENCE } from '../models/backend-names.js';
import type { CommandContext } from './context.js';
import { jsonOption } from './options.js';

/** One backend as `doctor` found it. */
export interface DoctorBackend {
  name: BackendName;
  /** Whether `initBackend(name)` succeeded. */
  available: boolean;
  /** For an available backend: what runs its numbers. */
  detail?: string;
  /** For an unavailable one: why, in one line. */
  reason?: string;
  /** For an unavailable one: how to get it (the install command). */
  hint?: string;
}

/** The BLAS library `wasm-blas` runs its matrix products on (see `models/native-blas.ts`). */
export interface DoctorBlas {
  path: string;
  config: string | null;
  corename: string | null;
  threads: number | null;
  /** sgemm GFLOP/s on 1024 × 1024 × 1024 (with `--bench`). */
  gflops?: number;
}

/** What `grokpipe doctor --json` prints. */
export interface DoctorReport {
  /** `process.version`. */
  node: string;
  /** `process.platform`. */
  platform: string;
  /** `process.arch`. */
  arch: string;
  /** The CPU model. */
  cpu: string;
  /** Cores Node can use (`os.availableParallelism()`). */
  cores: number;
  /** The backend `--backend auto` picks, or null when none starts. */
  auto: BackendName | null;
  /** Every backend, best first. */
  backends: DoctorBackend[];
  /** The BLAS library, when it loads. */
  blas?: DoctorBlas;
  /** With `--bench`: float32 matrix product `n × n × n` on the `auto` backend. */
  bench?: { backend: BackendName; n: number; gflops: number };
}

/** What each backend runs on, when it is available (`wasm-blas` adds its library). */
const DETAIL: Record<BackendName, string> = {
  'tensorflow-gpu': 'libtensorflow with CUDA (@tensorflow/tfjs-node-gpu)',
  tensorflow: 'libtensorflow on the CPU (@tensorflow/tfjs-node)',
  'wasm-blas': 'wasm with matrix products on a native BLAS library',
  wasm: 'XNNPACK, 128-bit SIMD, one thread (@tensorflow/tfjs-backend-wasm)',
  cpu: 'plain JavaScript kernels (@tensorflow/tfjs-backend-cpu)',
};

/** Matrix size of the `--bench` product per backend: under ~1 s in all on a slow machine. */
const BENCH_N: Record<BackendName, number> = {
  'tensorflow-gpu': 1024,
  tensorflow: 1024,
  'wasm-blas': 1024,
  wasm: 512,
  cpu: 256,
};

/**
 * Splits `initBackend`'s error message (`TF.js backend "X" is not available (X: reason); hint.`)
 * into a one-line reason and the install hint; "Cannot find package 'P' imported from …" becomes
 * "P is not installed". A message of another shape is returned whole as the reason.
 */
export function parseUnavailable(name: BackendName, message: string): { reason: string; hint?: string } {
  // Greedy: the reason may hold "); " (the hints do not), so the split is at the last one.
  const m = /^TF\.js backend "[^"]*" is not available \((.*)\); (.*)$/s.exec(message);
  if (!m) return { reason: oneLine(message) };
  let reason = m[1].startsWith(`${name}: `) ? m[1].slice(name.length + 2) : m[1];
  const missing = /^Cannot find (?:package|module) '([^']+)'/.exec(reason);
  if (missing) reason = `${missing[1]} is not installed`;
  return { reason: oneLine(reason), hint: oneLine(m[2]).replace(/\.$/, '') };
}

// native-blas.ts already joins lines with "; ", which leaves "opened:; /lib…" after a colon.
const oneLine = (s: string) =>
  s
    .replace(/\s*\n\s*/g, '; ')
    .replace(/:;\s*/g, ': ')
    .trim();
const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * Starts every backend in turn (`initBackend(name)`, best first), then `initBackend('auto')`,
 * which stays active; with `bench`, times a float32 matrix product on it (≤ ~1 s). Never throws
 * for a backend that fails: it is reported unavailable.
 * @returns the report `grokpipe doctor --json` prints.
 */
export async function diagnose(options: { bench?: boolean } = {}): Promise<DoctorReport> {
  const { initBackend } = await import('../models/backend.js');
  const { loadNativeBlas, measureBlasPeak } = await import('../models/native-blas.js');
  const backends: DoctorBackend[] = [];
  for (const name of BACKEND_PREFERENCE) {
    try {
      await initBackend(name);
      backends.push({ name, available: true, detail: DETAIL[name] });
    } catch (err) {
      // initBackend wraps every failure in BackendUnavailableError; anything else is reported too.
      backends.push({
        name,
        available: false,
        ...parseUnavailable(name, err instanceof Error ? err.message : String(err)),
      });
    }
  }
  let blas: DoctorBlas | undefined;
  const lib = loadNativeBlas();
  if (!('error' in lib)) {
    blas = { path: lib.path, config: lib.config, corename: lib.corename, threads: lib.threads };
    const entry = backends.find((b) => b.name === 'wasm-blas');
    if (entry?.available)
      entry.detail = `wasm with matrix products on ${lib.path}${lib.threads ? ` (${lib.threads} thread${lib.threads === 1 ? '' : 's'})` : ''}`;
  }
  // What auto really picks (tfjs-node-gpu without a GPU runs as `tensorflow`); it stays active.
  let auto: BackendName | null = null;
  if (backends.some((b) => b.available)) {
    try {
      auto = await initBackend('auto');
    } catch {
      auto = null;
    }
  }
  const report: DoctorReport = {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpu: os.cpus()[0]?.model.trim() || 'unknown',
    cores: os.availableParallelism(),
    auto,
    backends,
    ...(blas ? { blas } : {}),
  };
  if (options.bench) {
    if (blas) blas.gflops = round1(measureBlasPeak(BENCH_N['wasm-blas']));
    if (auto === 'wasm-blas' && blas?.gflops !== undefined) {
      report.bench = { backend: auto, n: BENCH_N[auto], gflops: blas.gflops };
    } else if (auto) {
      report.bench = { backend: auto, n: BENCH_N[auto], gflops: round1(await matMulGflops(BENCH_N[auto])) };
    }
  }
  return report;
}

/** GFLOP/s of `n × n × n` float32 products on the active TF.js backend: best timed run after a warm-up, ≤ ~1 s. */
async function matMulGflops(n: number): Promise<number> {
  const tf = await import('@tensorflow/tfjs-core');
  const a = tf.fill([n, n], 0.5);
  const b = tf.fill([n, n], 0.25);
  try {
    let best = Infinity;
    const start = performance.now();
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
      if (i > 0) best = Math.min(best, performance.now() - t0);
      if (i > 0 && performance.now() - start > 600) break;
    }
    return (2 * n ** 3) / (best / 1000) / 1e9;
  } finally {
    a.dispose();
    b.dispose();
  }
}

/**
 * The report as text: machine, one line per backend (available ones with what they run on, the
 * others with their reason and a `fix:` line), the BLAS library, the `--bench` result, and which
 * backend auto picks with the faster ones that could be installed.
 */
export function formatDoctor(report: DoctorReport, options: { color?: boolean } = {}): string {
  const pc = createColors(Boolean(options.color));
  const width = Math.max(...report.backends.map((b) => b.name.length));
  const lines: string[] = [
    `node      ${report.node}`,
    `platform  ${report.platform}/${report.arch}`,
    `cpu       ${report.cpu} (${report.cores} core${report.cores === 1 ? '' : 's'})`,
    '',
    pc.bold('backends, fastest first:'),
  ];
  for (const b of report.backends) {
    const name = b.name.padEnd(width);
    if (b.available) {
      const mark = b.name === report.auto ? `  ${pc.bold('<- auto')}` : '';
      lines.push(`  ${pc.green('ok')}  ${name}  ${b.detail ?? ''}${mark}`);
    } else {
      lines.push(`  ${pc.red('no')}  ${name}  ${b.reason ?? ''}`);
      if (b.hint) lines.push(`      ${' '.repeat(width)}  ${pc.dim(`fix: ${b.hint}`)}`);
    }
  }
  if (report.blas) {
    const { blas } = report;
    lines.push('', pc.bold(`BLAS library (wasm-blas): ${blas.path}`));
    if (blas.config) lines.push(`  config   ${blas.config}`);
    if (blas.corename) lines.push(`  core     ${blas.corename}`);
    lines.push(`  threads  ${blas.threads ?? 'unknown'}`);
    if (blas.gflops !== undefined) lines.push(`  sgemm    ${blas.gflops.toFixed(1)} GFLOP/s (1024 x 1024 x 1024)`);
  }
  if (report.bench && report.bench.backend !== 'wasm-blas') {
    const { backend, n, gflops } = report.bench;
    lines.push('', `matmul on ${backend}: ${gflops.toFixed(1)} GFLOP/s (${n} x ${n} x ${n} float32)`);
  }
  lines.push('');
  if (report.auto === null) {
    lines.push(pc.red('no backend starts: grokpipe cannot train here (see the fix lines above)'));
  } else {
    const rank = BACKEND_PREFERENCE.indexOf(report.auto);
    const faster = report.backends
      .filter((b) => !b.available && BACKEND_PREFERENCE.indexOf(b.name) < rank)
      .map((b) => b.name);
    lines.push(
      `--backend auto trains on ${pc.bold(report.auto)}` +
        (faster.length
          ? `; faster once installed: ${faster.join(', ')} (see the fix lines above)`
          : '; the fastest backend grokpipe has'),
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Registers `doctor` on `program`: prints `formatDoctor`'s text, or with `--json` one JSON object
 * (`DoctorReport`) on stdout. Exit code 0 when at least one backend starts, 1 when none does.
 */
export function registerDoctor(program: Command, ctx: CommandContext): void {
  program
    .command('doctor')
    .description('show which TF.js backends work here, which one training uses, and how to get faster ones')
    .option('--bench', 'also time a matrix product on the backend auto picks (about a second)')
    .addOption(jsonOption())
    .action(async (opts: { bench?: boolean; json?: boolean }) => {
      ctx.setJson(Boolean(opts.json));
      const report = await diagnose({ bench: Boolean(opts.bench) });
      ctx.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatDoctor(report, { color: ctx.color }));
      ctx.setExitCode(report.backends.some((b) => b.available) ? 0 : 1);
    });
}

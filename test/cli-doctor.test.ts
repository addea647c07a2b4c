/**
 * `grokpipe doctor`, run in-process through `main`: the backends that work on every machine (wasm,
 * cpu) are reported available, a missing optional one with its install command, `--json` has every
 * field, and the exit code is 1 when no backend starts.
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.js';
import type { DoctorReport } from '../src/commands/doctor.js';
import { parseUnavailable } from '../src/commands/doctor.js';
import { BACKEND_PREFERENCE } from '../src/models/backend-names.js';
import type * as BackendModule from '../src/models/backend.js';

async function doctor(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['doctor', ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    tty: false,
  });
  return { code, stdout, stderr };
}

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const gpuPackageMissing = !installed('@tensorflow/tfjs-node-gpu');

describe('grokpipe doctor', () => {
  afterEach(() => {
    vi.doUnmock('../src/models/backend.js');
    vi.resetModules();
  });

  it('reports each backend, best first, and marks the one auto picks', async () => {
    const { code, stdout, stderr } = await doctor();
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^node {6}v\d+\./m);
    expect(stdout).toMatch(/^platform {2}\S+\/\S+$/m);
    expect(stdout).toMatch(/^cpu {7}.+ \(\d+ cores?\)$/m);
    expect(stdout).toMatch(/^ {2}ok {2}wasm +XNNPACK/m);
    expect(stdout).toMatch(/^ {2}ok {2}cpu +plain JavaScript/m);
    const order = BACKEND_PREFERENCE.map((name) => stdout.search(new RegExp(`^  (ok|no)  ${name} `, 'm')));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(stdout.match(/<- auto/g)).toHaveLength(1);
    expect(stdout).toMatch(/^--backend auto trains on \S+/m);
    // Nothing slow without --bench.
    expect(stdout).not.toMatch(/GFLOP\/s/);
  });

  it('prints one JSON object with --json', async () => {
    const { code, stdout } = await doctor('--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.node).toBe(process.version);
    expect(report.platform).toBe(process.platform);
    expect(typeof report.cpu).toBe('string');
    expect(report.cores).toBeGreaterThanOrEqual(1);
    expect(report.backends.map((b) => b.name)).toEqual(BACKEND_PREFERENCE);
    const byName = new Map(report.backends.map((b) => [b.name, b]));
    expect(byName.get('wasm')).toMatchObject({ available: true, detail: expect.any(String) });
    expect(byName.get('cpu')).toMatchObject({ available: true, detail: expect.any(String) });
    const available = report.backends.filter((b) => b.available).map((b) => b.name);
    expect(available).toContain(report.auto);
    // auto is the first available one.
    expect(report.auto).toBe(available[0]);
    for (const b of report.backends.filter((x) => !x.available)) {
      expect(b.reason).toEqual(expect.any(String));
      expect(b.hint).toEqual(expect.any(String));
    }
    if (byName.get('wasm-blas')?.available) {
      expect(report.blas).toMatchObject({ path: expect.any(String) });
    }
    expect(report.bench).toBeUndefined();
  });

  it.skipIf(!gpuPackageMissing)('reports a missing tensorflow-gpu with the command that installs it', async () => {
    const { stdout } = await doctor('--json');
    const gpu = (JSON.parse(stdout) as DoctorReport).backends.find((b) => b.name === 'tensorflow-gpu');
    expect(gpu).toMatchObject({ available: false, reason: '@tensorflow/tfjs-node-gpu is not installed' });
    expect(gpu?.hint).toContain('npm install @tensorflow/tfjs-node-gpu');
    const text = (await doctor()).stdout;
    expect(text).toMatch(/^ {2}no {2}tensorflow-gpu +@tensorflow\/tfjs-node-gpu is not installed$/m);
    expect(text).toMatch(/^ +fix: install it with `npm install @tensorflow\/tfjs-node-gpu`/m);
  });

  it('times a matrix product with --bench', async () => {
    const { code, stdout } = await doctor('--json', '--bench');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.bench).toMatchObject({ backend: report.auto, n: expect.any(Number) });
    expect(report.bench!.gflops).toBeGreaterThan(0);
    if (report.blas) expect(report.blas.gflops).toBeGreaterThan(0);
  });

  it('exits 1 when no backend starts', async () => {
    vi.resetModules();
    vi.doMock('../src/models/backend.js', async (importOriginal) => {
      const real = await importOriginal<typeof BackendModule>();
      return {
        ...real,
        initBackend: (name: string) =>
          Promise.reject(
            new real.BackendUnavailableError(
              `TF.js backend "${name}" is not available (${name}: broken); reinstall it.`,
            ),
          ),
      };
    });
    const { main: freshMain } = await import('../src/cli.js');
    let stdout = '';
    const code = await freshMain(['doctor', '--json'], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: () => true },
    });
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.auto).toBeNull();
    expect(report.backends.every((b) => !b.available && b.reason === 'broken' && b.hint === 'reinstall it')).toBe(true);
  });
});

describe('parseUnavailable', () => {
  it('splits initBackend messages into a one-line reason and the hint', () => {
    expect(
      parseUnavailable(
        'wasm-blas',
        'TF.js backend "wasm-blas" is not available (wasm-blas: no CBLAS library could be opened:; libx.so: cannot open (x); y); install OpenBLAS (Debian: `apt-get install x`), then build.',
      ),
    ).toEqual({
      reason: 'no CBLAS library could be opened: libx.so: cannot open (x); y',
      hint: 'install OpenBLAS (Debian: `apt-get install x`), then build',
    });
    expect(parseUnavailable('cpu', 'something else\nentirely')).toEqual({ reason: 'something else; entirely' });
  });
});

import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InputArtifact, Json, StageContext } from '../src/engine/stage.js';
import type { AnalyzeParams } from '../src/stages/analyze.js';
import { analyzeStage } from '../src/stages/analyze.js';
import { builtinStages } from '../src/stages/index.js';
import { encodeTable, readTable } from '../src/table/parquet.js';
import type { Table } from '../src/table/table.js';
import { toRows } from '../src/table/table.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const TYPES = ['train_batch', 'train_inferred', 'id_inferred', 'ood_inferred', 'id_atomic', 'ood_atomic'];

/** Logistic rise from `lo` to `hi` centred at `mid` (steps) with width `w`. */
const rise = (step: number, mid: number, w: number, lo = 0.05, hi = 1) =>
  lo + (hi - lo) / (1 + Math.exp(-(step - mid) / w));

/**
 * A synthetic grokking curve, evaluated every 100 steps up to `last`: train memorises around
 * `mem`, ID around `id`, OOD around `ood`. Accuracies are rounded to 1/1000 as a test set of 1000.
 */
function curveTable(mem: number, id: number, ood: number, last = 5000): Table {
  const rows: { step: number; type: string; acc: number; loss: number }[] = [];
  for (let step = 0; step <= last; step += 100) {
    for (const type of TYPES) {
      const acc =
        type === 'train_batch' || type === 'train_inferred' || type.endsWith('atomic')
          ? rise(step, mem, 80)
          : type === 'id_inferred'
            ? rise(step, id, 150)
            : rise(step, ood, 200);
      const a = Math.round(acc * 1000) / 1000;
      rows.push({ step, type, acc: a, loss: type === 'train_batch' ? 3 * Math.exp(-step / 500) + 1e-3 : 1 - a + 1e-3 });
    }
  }
  return {
    columns: [
      { name: 'step', type: 'INT32', data: Int32Array.from(rows, (r) => r.step) },
      { name: 'epoch', type: 'DOUBLE', data: Float64Array.from(rows, (r) => r.step / 50) },
      { name: 'type', type: 'STRING', data: rows.map((r) => r.type) },
      { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from(rows, (r) => r.acc) },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(rows, (r) => r.loss) },
    ],
  };
}

function accuracyTable(acc: Record<string, number>): Table {
  const types = Object.keys(acc);
  return {
    columns: [
      { name: 'type', type: 'STRING', data: types },
      { name: 'n', type: 'INT32', data: Int32Array.from(types, () => 1000) },
      { name: 'accuracy', type: 'DOUBLE', data: Float64Array.from(types, (t) => acc[t]) },
      { name: 'loss', type: 'DOUBLE', data: Float64Array.from(types, () => 0.1) },
    ],
  };
}

/** An evaluate artifact on disk with the given tables. */
function fakeInput(
  root: string,
  id: string,
  matrix: Record<string, Json>,
  tables: Record<string, Table>,
): InputArtifact {
  const dir = mkdtempSync(join(root, 'in-'));
  for (const [name, t] of Object.entries(tables)) writeFileSync(join(dir, name), encodeTable(t).bytes);
  const files = Object.keys(tables);
  const path = (file: string) => {
    if (!files.includes(file)) throw new Error(`not an output: ${file}`);
    return join(dir, file);
  };
  return {
    stage: 'evaluate',
    id,
    key: id.padEnd(64, '0'),
    matrix,
    params: {},
    files,
    path,
    readTable: (file, columns) => readTable(path(file), { columns }),
  };
}

function fakeContext(root: string, inputs: InputArtifact[], params: Partial<AnalyzeParams> = {}) {
  const outDir = join(root, 'out');
  mkdirSync(outDir, { recursive: true });
  const info: Record<string, Json> = {};
  const logs: string[] = [];
  const ctx: StageContext<AnalyzeParams> = {
    params: { memorise_threshold: 0.99, generalise_thresholds: [0.9, 0.95, 0.99], formats: ['svg', 'png'], ...params },
    inputs,
    input: () => {
      throw new Error('unused');
    },
    outDir,
    writeTable: async (name, table) => writeFileSync(join(outDir, name), encodeTable(table).bytes),
    writeFile: async (name, bytes) => writeFileSync(join(outDir, name), bytes),
    record: (key, value) => void (info[key] = value),
    progress: () => {},
    log: (m) => void logs.push(m),
    options: {},
    signal: new AbortController().signal,
  };
  return { ctx, outDir, info, logs };
}

/** First step from which a rounded logistic stays >= t, computed the slow obvious way. */
function expectedStable(mid: number, w: number, t: number, last = 5000): number | null {
  let found: number | null = null;
  for (let step = 0; step <= last; step += 100) {
    const ok = Math.round(rise(step, mid, w) * 1000) / 1000 >= t;
    if (!ok) found = null;
    else if (found === null) found = step;
  }
  return found;
}

function expectPng(bytes: Buffer): void {
  expect([...bytes.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
  expect(bytes.length).toBeGreaterThan(20_000);
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  expect(width).toBeGreaterThan(600);
  expect(height).toBeGreaterThan(300);
}

describe('analyze stage', () => {
  it('is registered with a schema whose defaults match the brief', () => {
    expect(builtinStages).toContain(analyzeStage);
    const props = (analyzeStage.schema as { properties: Record<string, { default: unknown }> }).properties;
    expect(props.memorise_threshold.default).toBe(0.99);
    expect(props.generalise_thresholds.default).toEqual([0.9, 0.95, 0.99]);
    expect(props.formats.default).toEqual(['svg', 'png']);
  });

  it('a sweep: metrics per run, stacked curves, grokking/overlay/metrics plots, summary', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gp-analyze-'));
    const specs = [
      { entities: 100, seed: 0, mem: 800, id: 2000, ood: 3500 },
      { entities: 100, seed: 1, mem: 900, id: 2200, ood: 3800 },
      { entities: 400, seed: 0, mem: 600, id: 1400, ood: 9000 }, // OOD never groks
      { entities: 400, seed: 1, mem: 700, id: 1500, ood: 2500 },
    ];
    const inputs = specs.map((s) =>
      fakeInput(
        root,
        'scores',
        { entities: s.entities, seed: s.seed },
        {
          'curve.parquet': curveTable(s.mem, s.id, s.ood),
          'accuracy.parquet': accuracyTable({
            train_inferred: 1,
            id_inferred: 0.98,
            ood_inferred: s.ood > 5000 ? 0.3 : 0.95,
            id_atomic: 1,
            ood_atomic: 1,
          }),
          'predictions.parquet': { columns: [{ name: 'x', type: 'INT32', data: Int32Array.from([1]) }] },
        },
      ),
    );
    const { ctx, outDir, info, logs } = fakeContext(root, inputs);
    await analyzeStage.run(ctx);

    for (const f of [
      'metrics.parquet',
      'curves.parquet',
      'grokking.svg',
      'grokking.png',
      'overlay.svg',
      'overlay.png',
      'metrics.svg',
      'metrics.png',
    ]) {
      expect(existsSync(join(outDir, f)), f).toBe(true);
    }
    const rows = toRows(await readTable(join(outDir, 'metrics.parquet')));
    expect(rows.map((r) => r.run)).toEqual([
      'entities=100,seed=0',
      'entities=100,seed=1',
      'entities=400,seed=0',
      'entities=400,seed=1',
    ]);
    specs.forEach((s, i) => {
      const r = rows[i];
      expect(r.entities).toBe(s.entities);
      expect(r.seed).toBe(s.seed);
      expect(r['id_step_0.9']).toBe(expectedStable(s.id, 150, 0.9));
      expect(r['id_step_0.99']).toBe(expectedStable(s.id, 150, 0.99));
      expect(r['ood_step_0.9']).toBe(expectedStable(s.ood, 200, 0.9));
      expect(r.memorise_step).toBeGreaterThan(s.mem);
      expect(r.memorise_epoch).toBe((r.memorise_step as number) / 50);
      expect(r.final_ood_inferred).toBe(s.ood > 5000 ? 0.3 : 0.95);
      expect(r.last_step).toBe(5000);
    });
    expect(rows[2]['ood_step_0.9']).toBeNull();
    expect(rows[2]['ood_ratio_0.9']).toBeNull();
    expect(rows[0]['ood_delay_0.9']).toBe((rows[0]['ood_step_0.9'] as number) - (rows[0].memorise_step as number));

    // seeds 0 and 1 of each entities value: mean and spread over seeds
    const sweep = toRows(await readTable(join(outDir, 'sweep.parquet')));
    const agg = (entities: number, metric: string) =>
      sweep.find((r) => r.entities === entities && r.metric === metric)!;
    const id100 = [rows[0]['id_step_0.9'] as number, rows[1]['id_step_0.9'] as number];
    expect(agg(100, 'id_step_0.9')).toMatchObject({
      runs: 2,
      reached: 2,
      mean: (id100[0] + id100[1]) / 2,
      min: Math.min(...id100),
      max: Math.max(...id100),
    });
    expect(agg(400, 'ood_step_0.9')).toMatchObject({ runs: 2, reached: 1, mean: rows[3]['ood_step_0.9'] });
    expect(sweep.some((r) => 'seed' in r)).toBe(false);

    const curves = await readTable(join(outDir, 'curves.parquet'));
    expect(curves.columns.map((c) => c.name)).toEqual([
      'run',
      'entities',
      'seed',
      'step',
      'epoch',
      'type',
      'accuracy',
      'loss',
    ]);
    expect(curves.columns[0].data.length).toBe(4 * TYPES.length * 51);

    for (const name of ['grokking', 'overlay', 'metrics']) {
      const svg = readFileSync(join(outDir, `${name}.svg`), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toMatch(name === 'metrics' ? /class="mark-symbol role-mark/ : /class="mark-line role-mark/);
      expect((svg.match(/<path /g) ?? []).length).toBeGreaterThan(10);
      expectPng(readFileSync(join(outDir, `${name}.png`)));
    }
    const grok = readFileSync(join(outDir, 'grokking.svg'), 'utf8');
    expect(grok).toContain('class="mark-rule role-mark');
    expect(grok).toContain('entities=400,seed=1');
    expect(readFileSync(join(outDir, 'metrics.svg'), 'utf8')).toContain('class="mark-rule role-mark');

    const summary = info.summary as string[];
    // 2 lines per run, then the groups of seeds, then the trend (OOD, ID) against entities.
    expect(summary).toHaveLength(8 + 3 + 3);
    expect(summary[8]).toBe('over seeds (mean ± std over the runs that reached it):');
    expect(summary[10]).toMatch(
      /^ {2}entities=400 \(2 runs\): memorised 2\/2, step \d+ ± \d+; OOD ≥0.9 1\/2, step \d+ /,
    );
    expect(summary[11]).toBe('trend:');
    expect(summary[12]).toMatch(/^ {2}OOD ≥0.9 vs entities: Spearman ρ = [+−]\d\.\d\d, 95% CI \[/);
    expect(existsSync(join(outDir, 'trend.svg'))).toBe(true);
    const trend = toRows(await readTable(join(outDir, 'trend.parquet')));
    expect(trend.map((r) => [r.knob, r.metric, r.runs, r.reached])).toEqual([
      ['entities', 'ood_step_0.9', 4, 3],
      ['entities', 'id_step_0.9', 4, 4],
    ]);
    expect(summary[0]).toMatch(
      /^entities=100,seed=0: memorised at step \d+ \(epoch [\d.]+\); ID ≥0.9 at step \d+ \([\d.]+× memorisation\); OOD ≥0.9 at step \d+/,
    );
    expect(summary[4]).toContain('OOD not ≥0.9 to the end (run ended at step 5000)');
    expect((info.metrics as Record<string, Record<string, Json>>)['entities=400,seed=0']['ood_step_0.9']).toBeNull();
    expect(logs.some((l) => l.includes('overlay'))).toBe(true);
  });

  it('a single run: named by its stage id, grokking plot only; formats respected', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gp-analyze-'));
    const input = fakeInput(root, 'scores', {}, { 'curve.parquet': curveTable(500, 1200, 2600, 3000) });
    const { ctx, outDir, info } = fakeContext(root, [input], { formats: ['png'], generalise_thresholds: [0.95] });
    await analyzeStage.run(ctx);
    expect(existsSync(join(outDir, 'grokking.png'))).toBe(true);
    expect(existsSync(join(outDir, 'grokking.svg'))).toBe(false);
    expect(existsSync(join(outDir, 'overlay.png'))).toBe(false);
    expect(existsSync(join(outDir, 'sweep.parquet'))).toBe(false);
    const t = await readTable(join(outDir, 'metrics.parquet'));
    const [row] = toRows(t);
    expect(row.run).toBe('scores');
    expect(t.columns.map((c) => c.name)).toContain('ood_step_0.95');
    expect(t.columns.map((c) => c.name)).not.toContain('ood_step_0.9');
    expect(row['ood_step_0.95']).toBe(expectedStable(2600, 200, 0.95, 3000));
    // no accuracy.parquet: final accuracies come from the curve's last point
    expect(row.final_id_inferred).toBe(Math.round(rise(3000, 1200, 150) * 1000) / 1000);
    expect((info.summary as string[])[0]).toMatch(/^scores: memorised at step/);
  });

  it('an empty curve beside a real one: NULL metrics, plots still render', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gp-analyze-'));
    const empty = curveTable(0, 0, 0, -1);
    expect(empty.columns[0].data.length).toBe(0);
    const inputs = [
      fakeInput(root, 'a', { arch: 'gpt2' }, { 'curve.parquet': curveTable(500, 1200, 2600, 3000) }),
      fakeInput(root, 'b', { arch: 'mamba' }, { 'curve.parquet': empty }),
    ];
    const { ctx, outDir, info } = fakeContext(root, inputs, { formats: ['svg'] });
    await analyzeStage.run(ctx);
    const rows = toRows(await readTable(join(outDir, 'metrics.parquet')));
    expect(rows.map((r) => r.run)).toEqual(['arch=gpt2', 'arch=mamba']);
    expect(rows[1]).toMatchObject({ arch: 'mamba', memorise_step: null, 'ood_step_0.9': null, last_step: null });
    for (const f of ['grokking.svg', 'overlay.svg', 'metrics.svg']) expect(existsSync(join(outDir, f)), f).toBe(true);
    expect((info.summary as string[])[2]).toBe(
      'arch=mamba: not memorised (no train_inferred evaluations); ID not ≥0.9 to the end; OOD not ≥0.9 to the end',
    );
  });

  it('fails clearly without a curve', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gp-analyze-'));
    const input = fakeInput(root, 'kb', {}, { 'kb.parquet': accuracyTable({ a: 1 }) });
    const { ctx } = fakeContext(root, [input], { formats: [] });
    await expect(analyzeStage.run(ctx)).rejects.toThrow(/curve\.parquet.*got kb \(evaluate\)/);
  });
});

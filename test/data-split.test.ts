import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateStage } from '../src/stages/generate.js';
import { splitStage } from '../src/stages/split.js';
import type { Table } from '../src/table/table.js';
import { column, numRows, tableHash } from '../src/table/table.js';
import { drawDomains } from '../src/task/domains.js';
import type { KnowledgeBase } from '../src/task/kb.js';
import { drawKnowledgeBase, kbFromTable } from '../src/task/kb.js';
import { compareValues } from '../src/task/labels.js';
import { pairGoesToTest, testThreshold } from '../src/task/pair-hash.js';
import { openStream, streamWords } from '../src/task/streams.js';
import { PoolTooSmallError, splitKnowledgeBase } from '../src/task/split.js';
import { planSplit } from '../src/task/split-plan.js';
import { builtinStages } from '../src/stages/index.js';
import type { FakeRun } from './data-context.js';
import { runFake } from './data-context.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const N = 1000;
const A = 20;
const V = 20;

interface Facts {
  type: string[];
  attribute: Int32Array;
  e1: Int32Array;
  e2: Int32Array;
  label: Int32Array;
}

function facts(t: Table): Facts {
  return {
    type: column(t, 'type', 'STRING'),
    attribute: column(t, 'attribute', 'INT32'),
    e1: column(t, 'e1', 'INT32'),
    e2: column(t, 'e2', 'INT32'),
    label: column(t, 'label', 'INT32'),
  };
}

/** Key of an ordered (attribute, e1, e2) triple. */
const key = (a: number, e1: number, e2: number) => (a * N + e1) * N + e2;

describe('split at the published scale (N=1000, A=20, V=20, phi=12.6, test_size=3000)', () => {
  let kbRun: FakeRun;
  let run: FakeRun;
  let kb: KnowledgeBase;
  let isId: Uint8Array;
  let train: Facts;
  let test: Facts;

  beforeAll(async () => {
    kbRun = await runFake(generateStage, { entities: N, attributes: A, values: V, seed: 0 });
    run = await runFake(splitStage, { id_fraction: 0.9, phi: 12.6, test_size: 3000 }, [kbRun]);
    kb = kbFromTable(await kbRun.readTable('kb.parquet'), V);
    const ent = await run.readTable('entities.parquet');
    const dom = column(ent, 'domain', 'STRING');
    isId = Uint8Array.from(dom, (d) => (d === 'id' ? 1 : 0));
    expect(Array.from(column(ent, 'attribute', 'INT32').slice(0, 3))).toEqual([0, 0, 0]);
    expect(Array.from(column(ent, 'entity', 'INT32').slice(0, 3))).toEqual([0, 1, 2]);
    train = facts(await run.readTable('train.parquet'));
    test = facts(await run.readTable('test.parquet'));
  });

  it('writes the documented tables and columns', () => {
    expect(run.files).toEqual(['entities.parquet', 'train.parquet', 'test.parquet', 'task.json']);
    expect(run.tables['entities.parquet'].columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'attribute:INT32',
      'entity:INT32',
      'domain:STRING',
    ]);
    for (const f of ['train.parquet', 'test.parquet']) {
      expect(run.tables[f].columns.map((c) => `${c.name}:${c.type}`)).toEqual([
        'type:STRING',
        'attribute:INT32',
        'e1:INT32',
        'e2:INT32',
        'label:INT32',
      ]);
    }
  });

  it('has 900 ID and 100 OOD entities per attribute: 18,000 ID and 2,000 OOD atomic facts', () => {
    expect(isId.length).toBe(N * A);
    for (let a = 0; a < A; a++) expect(isId.subarray(a * N, (a + 1) * N).reduce((s, x) => s + x, 0)).toBe(900);
    let id = 0;
    let ood = 0;
    for (let r = 0; r < train.type.length; r++) {
      if (train.type[r] !== 'atomic' || train.e2[r] !== -1) continue;
      if (isId[train.attribute[r] * N + train.e1[r]]) id++;
      else ood++;
    }
    expect([id, ood]).toEqual([18_000, 2_000]);
  });

  it('trains on every atomic fact with its KB value', () => {
    let bad = 0;
    for (let r = 0; r < N * A; r++) {
      if (train.type[r] !== 'atomic' || train.attribute[r] * N + train.e1[r] !== r || train.label[r] !== kb.value[r])
        bad++;
    }
    expect(bad).toBe(0);
  });

  it('draws round(12.6 × 18,000) training inferred facts, all ID-ID, none duplicated, labels from the KB', () => {
    const inferred = train.type.filter((t) => t === 'inferred').length;
    expect(inferred).toBe(Math.round(12.6 * 18_000));
    expect(inferred).toBe(226_800);
    expect(train.type.length).toBe(20_000 + 226_800);
    const seen = new Set<number>();
    let bad = 0;
    for (let r = N * A; r < train.type.length; r++) {
      const a = train.attribute[r];
      const e1 = train.e1[r];
      const e2 = train.e2[r];
      if (train.type[r] !== 'inferred' || e1 === e2) bad++;
      if (!isId[a * N + e1] || !isId[a * N + e2]) bad++;
      if (train.label[r] !== compareValues(kb.value[a * N + e1], kb.value[a * N + e2])) bad++;
      seen.add(key(a, e1, e2));
    }
    expect(bad).toBe(0);
    expect(seen.size).toBe(226_800);
    // Spread over attributes and labels roughly as expected (uniform draw from the pool).
    const perAttr = new Array<number>(A).fill(0);
    for (let r = N * A; r < train.type.length; r++) perAttr[train.attribute[r]]++;
    for (const c of perAttr) expect(Math.abs(c - 226_800 / A)).toBeLessThan(600);
  });

  it('has test sets of the documented types and sizes', () => {
    const counts: Record<string, number> = {};
    for (const t of test.type) counts[t] = (counts[t] ?? 0) + 1;
    expect(counts).toEqual({
      train_inferred: 3000,
      id_atomic: 3000,
      ood_atomic: 2000,
      id_inferred: 3000,
      ood_inferred: 3000,
    });
    // Grouped by type in the documented order.
    const order = [...new Set(test.type)];
    expect(order).toEqual(['train_inferred', 'id_atomic', 'ood_atomic', 'id_inferred', 'ood_inferred']);
  });

  it('keeps test facts consistent with their type, the KB and the training set', () => {
    const trainSet = new Set<number>();
    for (let r = N * A; r < train.type.length; r++) trainSet.add(key(train.attribute[r], train.e1[r], train.e2[r]));
    const seen = new Set<string>();
    for (let r = 0; r < test.type.length; r++) {
      const t = test.type[r];
      const a = test.attribute[r];
      const e1 = test.e1[r];
      const e2 = test.e2[r];
      const where = `${t} row ${r}`;
      const uniq = `${t}:${a}:${e1}:${e2}`;
      if (seen.has(uniq)) throw new Error(`${where} duplicated`);
      seen.add(uniq);
      if (t === 'id_atomic' || t === 'ood_atomic') {
        if (e2 !== -1 || test.label[r] !== kb.value[a * N + e1]) throw new Error(`${where}: wrong atomic fact`);
        if (isId[a * N + e1] !== (t === 'id_atomic' ? 1 : 0)) throw new Error(`${where}: wrong domain`);
        continue;
      }
      if (e1 === e2 || test.label[r] !== compareValues(kb.value[a * N + e1], kb.value[a * N + e2]))
        throw new Error(`${where}: wrong label`);
      const inTrain = trainSet.has(key(a, e1, e2));
      const reverseInTrain = trainSet.has(key(a, e2, e1));
      if (t === 'train_inferred' && !inTrain) throw new Error(`${where} not in training`);
      if (t === 'id_inferred') {
        if (!isId[a * N + e1] || !isId[a * N + e2]) throw new Error(`${where}: not ID-ID`);
        if (inTrain || reverseInTrain) throw new Error(`${where} (or its reverse) is in the training set`);
      }
      if (t === 'ood_inferred') {
        if (isId[a * N + e1] || isId[a * N + e2]) throw new Error(`${where}: not OOD-OOD`);
        if (inTrain || reverseInTrain) throw new Error(`${where} is in the training set`);
      }
    }
  });

  it('puts both orders of an ID pair on the same side (pair hash), and never uses mixed pairs', () => {
    // The split's pair-hash keys are derived from its seed and the KB's content hash.
    const words = streamWords(['split', 0, tableHash(kbRun.tables['kb.parquet']), 'pair-side']);
    const keys = { a: words[0], b: words[1] };
    const threshold = testThreshold(0.1);
    let wrongSide = 0;
    for (let r = N * A; r < train.type.length; r++) {
      const [a, e1, e2] = [train.attribute[r], train.e1[r], train.e2[r]];
      if (pairGoesToTest(keys, threshold, a, e1, e2) || pairGoesToTest(keys, threshold, a, e2, e1)) wrongSide++;
    }
    for (let r = 0; r < test.type.length; r++) {
      if (test.type[r] !== 'id_inferred') continue;
      const [a, e1, e2] = [test.attribute[r], test.e1[r], test.e2[r]];
      if (!pairGoesToTest(keys, threshold, a, e1, e2) || !pairGoesToTest(keys, threshold, a, e2, e1)) wrongSide++;
    }
    expect(wrongSide).toBe(0);
    // Pairs whose both orders were drawn exist and are both in training (same side).
    const trainSet = new Set<number>();
    for (let r = N * A; r < train.type.length; r++) trainSet.add(key(train.attribute[r], train.e1[r], train.e2[r]));
    let both = 0;
    for (let r = N * A; r < train.type.length; r++)
      if (trainSet.has(key(train.attribute[r], train.e2[r], train.e1[r]))) both++;
    expect(both).toBeGreaterThan(1000); // ~1.6% of 226,800 expected
  });

  it('gives the same bytes for the same seed, and different data for another split or KB seed', async () => {
    const again = await runFake(splitStage, { id_fraction: 0.9, phi: 12.6, test_size: 3000 }, [kbRun]);
    expect(again.hashes).toEqual(run.hashes);
    const other = await runFake(splitStage, { id_fraction: 0.9, phi: 12.6, test_size: 3000, seed: 1 }, [kbRun]);
    for (const f of ['entities.parquet', 'train.parquet', 'test.parquet'])
      expect(other.hashes[f]).not.toBe(run.hashes[f]);
  });

  it('records the counts in the manifest info', () => {
    expect(run.records.train).toEqual({ atomic: 20_000, inferred: 226_800 });
    expect(run.records.id_entities_per_attribute).toBe(900);
  });
});

describe('split: randomness depends on the KB and the seed', () => {
  it('draws another ID/OOD partition for another KB with the same split seed', async () => {
    const kb0 = await runFake(generateStage, { entities: 50, attributes: 2, values: 5, seed: 0 });
    const kb1 = await runFake(generateStage, { entities: 50, attributes: 2, values: 5, seed: 1 });
    const s0 = await runFake(splitStage, { phi: 2, test_size: 50 }, [kb0]);
    const s1 = await runFake(splitStage, { phi: 2, test_size: 50 }, [kb1]);
    expect(s0.hashes['entities.parquet']).not.toBe(s1.hashes['entities.parquet']);
  });

  it('keeps the training set when only test_size changes', () => {
    const kb = drawKnowledgeBase({ entities: 60, attributes: 3, values: 6 }, openStream('t'));
    const p = { id_fraction: 0.8, phi: 3, id_test_fraction: 0.1, seed: 4 };
    const a = splitKnowledgeBase(kb, { ...p, test_size: 10 }, 'h');
    const b = splitKnowledgeBase(kb, { ...p, test_size: 100 }, 'h');
    expect(b.train).toEqual(a.train);
    expect(b.test.type.length).toBeGreaterThan(a.test.type.length);
  });
});

describe('split on small KBs (exhaustive checks)', () => {
  const kb = drawKnowledgeBase({ entities: 30, attributes: 3, values: 4 }, openStream('small'));
  const n = kb.entities;

  it('draws from exactly the training-side ID-ID pairs: with phi at the pool size, the whole pool', () => {
    const params = { id_fraction: 0.8, phi: 0, id_test_fraction: 0.2, test_size: 10_000, seed: 3 };
    const probe = splitKnowledgeBase(kb, params, 'kb');
    // Count the training pool by brute force from the same domains and pair hash.
    const words = streamWords(['split', 3, 'kb', 'pair-side']);
    const keys = { a: words[0], b: words[1] };
    const thr = testThreshold(0.2);
    const d = probe.domains;
    const trainPool = new Set<number>();
    const testPool = new Set<number>();
    for (let a = 0; a < 3; a++) {
      for (let i = 0; i < d.nId; i++) {
        for (let j = 0; j < d.nId; j++) {
          if (i === j) continue;
          const e1 = d.id[a * d.nId + i];
          const e2 = d.id[a * d.nId + j];
          (pairGoesToTest(keys, thr, a, e1, e2) ? testPool : trainPool).add((a * n + e1) * n + e2);
        }
      }
    }
    const k = trainPool.size;
    const full = splitKnowledgeBase(kb, { ...params, phi: k / (3 * d.nId) }, 'kb');
    const got = new Set<number>();
    for (let r = 0; r < full.train.type.length; r++) {
      if (full.train.type[r] === 1) got.add((full.train.attribute[r] * n + full.train.e1[r]) * n + full.train.e2[r]);
    }
    expect(got).toEqual(trainPool);
    expect(full.trainPoolSize).toBe(k);
    // The ID test set is then the whole test-side pool (test_size exceeds it), the OOD one every OOD pair.
    const idTest = new Set<number>();
    let ood = 0;
    for (let r = 0; r < full.test.type.length; r++) {
      const key3 = (full.test.attribute[r] * n + full.test.e1[r]) * n + full.test.e2[r];
      if (full.test.type[r] === 3) idTest.add(key3);
      if (full.test.type[r] === 4) ood++;
    }
    expect(idTest).toEqual(testPool);
    expect(ood).toBe(3 * d.nOod * (d.nOod - 1));
  });

  it('returns fewer test facts when a pool is smaller than test_size', () => {
    const r = splitKnowledgeBase(
      kb,
      { id_fraction: 0.9, phi: 1, id_test_fraction: 0.1, test_size: 1000, seed: 0 },
      'x',
    );
    const counts = [0, 0, 0, 0, 0];
    for (const t of r.test.type) counts[t]++;
    // 27 ID and 3 OOD entities per attribute.
    expect(counts[0]).toBe(Math.round(1 * 81));
    expect(counts[1]).toBe(81);
    expect(counts[2]).toBe(9);
    expect(counts[4]).toBe(3 * 3 * 2);
  });

  it('has no ID test set when id_test_fraction is 0', () => {
    const r = splitKnowledgeBase(kb, { id_fraction: 0.9, phi: 2, id_test_fraction: 0, test_size: 100, seed: 0 }, 'x');
    expect(r.test.type.filter((t) => t === 3).length).toBe(0);
  });

  it('partitions each attribute separately, with the stated rounding', () => {
    const d = drawDomains(10, 4, Math.round(0.35 * 10), openStream('d'));
    expect(d.nId).toBe(4); // Math.round(3.5) = 4: half up
    const sets = new Set<string>();
    for (let a = 0; a < 4; a++) sets.add(Array.from(d.id.subarray(a * 4, a * 4 + 4)).join(','));
    expect(sets.size).toBeGreaterThan(1);
  });
});

describe('split: phi against the training pool', () => {
  const upstream = [{ stage: 'generate', params: { entities: 1000, attributes: 20, values: 20, seed: 0 } }];
  const defaults = { id_fraction: 0.9, test_size: 3000, id_test_fraction: 0.1, seed: 0 };

  it('accepts the published phi and rejects one beyond the expected pool, giving the maximum', () => {
    expect(splitStage.check!({ ...defaults, phi: 12.6 }, upstream)).toEqual([]);
    const problems = splitStage.check!({ ...defaults, phi: 900 }, upstream);
    expect(problems).toHaveLength(1);
    expect(problems[0].path).toBe('/phi');
    // Expected pool: 0.9 × 20 × 900 × 899 = 14,563,800 ordered pairs over 18,000 ID atomic facts.
    expect(problems[0].message).toContain('at most 809.1');
    expect(splitStage.check!({ ...defaults, phi: 809.1 }, upstream)).toEqual([]);
    expect(splitStage.check!({ ...defaults, phi: 809.2 }, upstream)).toHaveLength(1);
    expect(splitStage.check!({ ...defaults, phi: 900 }, [])).toEqual([]);
  });

  it('plans the pool sizes exactly', () => {
    const plan = planSplit({ entities: 1000, attributes: 20 }, { id_fraction: 0.9, phi: 12.6, id_test_fraction: 0.1 });
    expect(plan).toMatchObject({
      idEntities: 900,
      oodEntities: 100,
      idAtomic: 18_000,
      oodAtomic: 2_000,
      trainInferred: 226_800,
    });
    expect(plan.idPairs).toBe(20 * 900 * 899);
    expect(plan.expectedTrainPool).toBeCloseTo(14_563_800, 3);
    expect(plan.oodPool).toBe(20 * 100 * 99);
  });

  it('throws a clear error at run time when the drawn pool is still too small', () => {
    // N = 10, A = 1: 9 ID entities, 72 ordered pairs, expected pool 64.8; phi 7.1 asks for 64.
    const kb = drawKnowledgeBase({ entities: 10, attributes: 1, values: 3 }, openStream('tiny'));
    const params = { id_fraction: 0.9, phi: 7.1, id_test_fraction: 0.1, test_size: 5 };
    expect(
      splitStage.check!({ ...params, seed: 0 }, [{ stage: 'generate', params: { entities: 10, attributes: 1 } }]),
    ).toEqual([]);
    let thrown = 0;
    let ok = 0;
    for (let seed = 0; seed < 40; seed++) {
      try {
        const r = splitKnowledgeBase(kb, { ...params, seed }, 'tiny');
        expect(r.train.type.length - 10).toBe(64);
        ok++;
      } catch (err) {
        expect(err).toBeInstanceOf(PoolTooSmallError);
        expect((err as Error).message).toMatch(/training pool drawn holds \d+ .* lower phi to at most/);
        thrown++;
      }
    }
    expect(thrown).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(0);
  });
});

describe('split stage input checks', () => {
  it('rejects a KB table out of order', async () => {
    const kbRun = await runFake(generateStage, { entities: 5, attributes: 2, values: 3 });
    const t = kbRun.tables['kb.parquet'];
    const swapped: Table = {
      columns: [t.columns[1], t.columns[0], t.columns[2]].map((c, i) => ({
        ...c,
        name: ['entity', 'attribute', 'value'][i],
      })) as Table['columns'],
    };
    expect(numRows(swapped)).toBe(10);
    expect(() => kbFromTable(swapped, 3)).toThrow(/ordered by attribute then entity|not a multiple/);
  });
});

describe('split: test_size larger than a pool', () => {
  it('says so on the terminal, after the run table, and in the manifest', async () => {
    const dir = tempDir('gp-split-cap-');
    const file = writeFileIn(
      dir,
      'p.yaml',
      'stages:\n  kb: { uses: generate, with: { entities: 24, attributes: 2, values: 5, seed: 3 } }\n' +
        '  facts: { uses: split, needs: [kb], with: { id_fraction: 0.75, phi: 2, test_size: 40 } }\n',
    );
    const r = await cli(['run', file, '--store', join(dir, 'store')], { stages: builtinStages });
    expect(r.code).toBe(0);
    const warning =
      'test_size 40 capped: the knowledge base has only 36 id_atomic, 12 ood_atomic facts to test on (each such test set holds them all)';
    expect(r.stdout).toContain(`\nwarning: facts: ${warning}\n`);
    expect(r.stderr).toContain(`[facts] split: ${warning}`);
    const split = join(dir, 'store', 'split');
    const manifest = JSON.parse(readFileSync(join(split, readdirSync(split)[0], 'manifest.json'), 'utf8')) as {
      info: { warnings: string[] };
    };
    expect(manifest.info.warnings).toEqual([warning]);
    // Cached the next time: the table stays quiet.
    expect((await cli(['run', file, '--store', join(dir, 'store')], { stages: builtinStages })).stdout).not.toContain(
      'warning',
    );
  });
});

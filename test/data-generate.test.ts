import { describe, expect, it } from 'vitest';
import { generateStage } from '../src/stages/generate.js';
import { column, tableHash } from '../src/table/table.js';
import { drawKnowledgeBase, kbFromTable, kbToTable } from '../src/task/kb.js';
import { openStream } from '../src/task/streams.js';
import { fillParams, runFake } from './data-context.js';

describe('generate', () => {
  it('has the documented params and defaults', () => {
    expect(fillParams(generateStage, {})).toEqual({ entities: 1000, attributes: 20, values: 20, seed: 0 });
    expect(() => fillParams(generateStage, { entities: 1 })).toThrow(/entities/);
    expect(() => fillParams(generateStage, { values: 1 })).toThrow(/values/);
    expect(() => fillParams(generateStage, { attributes: 0 })).toThrow(/attributes/);
    expect(() => fillParams(generateStage, { seed: -1 })).toThrow(/seed/);
    expect(() => fillParams(generateStage, { seed: 1.5 })).toThrow(/seed/);
    expect(() => fillParams(generateStage, { entity: 3 })).toThrow(/additional/);
  });

  it('writes kb.parquet: one row per (entity, attribute), ordered by attribute then entity, values in [0, V)', async () => {
    const run = await runFake(generateStage, { entities: 1000, attributes: 20, values: 20, seed: 0 });
    expect(run.files).toEqual(['kb.parquet']);
    const t = await run.readTable('kb.parquet');
    expect(t.columns.map((c) => `${c.name}:${c.type}`)).toEqual(['entity:INT32', 'attribute:INT32', 'value:INT32']);
    const entity = column(t, 'entity', 'INT32');
    const attribute = column(t, 'attribute', 'INT32');
    const value = column(t, 'value', 'INT32');
    expect(value.length).toBe(20_000);
    const counts = new Array<number>(20).fill(0);
    let bad = 0;
    for (let r = 0; r < value.length; r++) {
      if (entity[r] !== r % 1000 || attribute[r] !== Math.floor(r / 1000) || value[r] < 0 || value[r] >= 20) bad++;
      counts[value[r]]++;
    }
    expect(bad).toBe(0);
    // Uniform: 1,000 expected per value, standard deviation ~31.
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(200);
    // Independent across attributes: an entity's values for attributes 0 and 1 agree ~1/V of the time.
    let same = 0;
    for (let e = 0; e < 1000; e++) if (value[e] === value[1000 + e]) same++;
    expect(same).toBeGreaterThan(20);
    expect(same).toBeLessThan(90);
  });

  it('gives the same bytes for the same seed and different data for another seed', async () => {
    const a = await runFake(generateStage, { entities: 200, attributes: 5, values: 7, seed: 3 });
    const b = await runFake(generateStage, { entities: 200, attributes: 5, values: 7, seed: 3 });
    const c = await runFake(generateStage, { entities: 200, attributes: 5, values: 7, seed: 4 });
    expect(b.hashes['kb.parquet']).toBe(a.hashes['kb.parquet']);
    expect(c.hashes['kb.parquet']).not.toBe(a.hashes['kb.parquet']);
    const va = column(a.tables['kb.parquet'], 'value', 'INT32');
    const vc = column(c.tables['kb.parquet'], 'value', 'INT32');
    let same = 0;
    for (let i = 0; i < va.length; i++) if (va[i] === vc[i]) same++;
    expect(same / va.length).toBeLessThan(0.3); // ~1/7 by chance
  });

  it('round-trips through its table and rejects a malformed one', () => {
    const kb = drawKnowledgeBase({ entities: 6, attributes: 3, values: 4 }, openStream('rt'));
    const t = kbToTable(kb);
    expect(kbFromTable(t, 4)).toEqual(kb);
    expect(() => kbFromTable(t, 2)).toThrow(/outside \[0, 2\)|row/); // some value >= 2 with 18 draws of 4 values
    const short = { columns: t.columns.map((c) => ({ ...c, data: (c.data as Int32Array).slice(0, 17) })) } as typeof t;
    expect(() => kbFromTable(short, 4)).toThrow(/multiple|ordered/);
    expect(tableHash(kbToTable(kbFromTable(t, 4)))).toBe(tableHash(t));
  });

  it('rejects invalid sizes in the pure function', () => {
    expect(() => drawKnowledgeBase({ entities: 1, attributes: 1, values: 2 }, openStream('x'))).toThrow(RangeError);
    expect(() => drawKnowledgeBase({ entities: 2, attributes: 1, values: 1 }, openStream('x'))).toThrow(RangeError);
  });
});

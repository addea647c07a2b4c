import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateStage } from '../src/stages/generate.js';
import { splitStage } from '../src/stages/split.js';
import { tokenizeStage } from '../src/stages/tokenize.js';
import type { Table } from '../src/table/table.js';
import { column } from '../src/table/table.js';
import { parseTaskFile } from '../src/task/task-file.js';
import { tokenizeFacts } from '../src/task/tokens.js';
import { buildVocabulary, labelTokenId } from '../src/task/vocab.js';
import type { FakeRun } from './data-context.js';
import { fillParams, runFake } from './data-context.js';

describe('vocabulary', () => {
  it('lays out specials, entities, attributes, values, then labels', () => {
    const v = buildVocabulary({ entities: 3, attributes: 2, values: 2 }, 'per_attribute');
    expect(v.tokens).toEqual([
      '<pad>',
      '<q>',
      '<mask>',
      '</a>',
      '<e_0>',
      '<e_1>',
      '<e_2>',
      '<attr_0>',
      '<attr_1>',
      '<v_0>',
      '<v_1>',
      '<attr_0_lt>',
      '<attr_0_eq>',
      '<attr_0_gt>',
      '<attr_1_lt>',
      '<attr_1_eq>',
      '<attr_1_gt>',
    ]);
    expect(labelTokenId(v, 1, 2)).toBe(16);
    const s = buildVocabulary({ entities: 3, attributes: 2, values: 2 }, 'shared');
    expect(s.tokens.slice(11)).toEqual(['<lt>', '<eq>', '<gt>']);
    expect(labelTokenId(s, 1, 2)).toBe(13);
    const big = buildVocabulary({ entities: 1000, attributes: 20, values: 20 }, 'per_attribute');
    expect(big.tokens.length).toBe(4 + 1000 + 20 + 20 + 60);
    expect([big.entityBase, big.attributeBase, big.valueBase, big.labelBase]).toEqual([4, 1004, 1024, 1044]);
  });

  it('rejects out-of-vocabulary facts', () => {
    const v = buildVocabulary({ entities: 3, attributes: 2, values: 2 }, 'shared');
    const one = (e1: number, e2: number, label: number) =>
      tokenizeFacts({ type: ['x'], attribute: [0], e1: [e1], e2: [e2], label: [label] }, v);
    expect(() => one(3, -1, 0)).toThrow(RangeError);
    expect(() => one(0, -1, 2)).toThrow(/value 2/);
    expect(() => one(0, 1, 3)).toThrow(/label 3/);
    expect(() => one(0, 5, 0)).toThrow(RangeError);
  });

  it('has the documented params', () => {
    expect(fillParams(tokenizeStage, {})).toEqual({ labels: 'per_attribute' });
    expect(() => fillParams(tokenizeStage, { labels: 'global' })).toThrow(/allowed values/);
  });
});

function rowsOf(t: Table) {
  return {
    type: column(t, 'type', 'STRING'),
    t: [0, 1, 2, 3, 4].map((i) => column(t, `t${i}`, 'INT32')),
    length: column(t, 'length', 'INT32'),
    target: column(t, 'target', 'INT32'),
  };
}

describe('tokenize at the published scale', () => {
  let facts: FakeRun;
  let perAttr: FakeRun;
  let shared: FakeRun;

  beforeAll(async () => {
    const kb = await runFake(generateStage, { entities: 1000, attributes: 20, values: 20, seed: 0 });
    facts = await runFake(splitStage, {}, [kb]);
    perAttr = await runFake(tokenizeStage, {}, [facts]);
    shared = await runFake(tokenizeStage, { labels: 'shared' }, [facts]);
  });

  it('writes the documented tables and columns', async () => {
    expect(perAttr.files).toEqual(['vocab.parquet', 'train.parquet', 'test.parquet']);
    const vocab = await perAttr.readTable('vocab.parquet');
    expect(vocab.columns.map((c) => `${c.name}:${c.type}`)).toEqual(['id:INT32', 'token:STRING']);
    expect(column(vocab, 'token', 'STRING').slice(0, 6)).toEqual(['<pad>', '<q>', '<mask>', '</a>', '<e_0>', '<e_1>']);
    for (const f of ['train.parquet', 'test.parquet']) {
      const t = await perAttr.readTable(f);
      expect(t.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
        'type:STRING',
        't0:INT32',
        't1:INT32',
        't2:INT32',
        't3:INT32',
        't4:INT32',
        'length:INT32',
        'target:INT32',
      ]);
    }
    expect(parseTaskFile(readFileSync(facts.path('task.json'), 'utf8'))).toEqual({
      entities: 1000,
      attributes: 20,
      values: 20,
      id_entities: 900,
      ood_entities: 100,
    });
  });

  it('decodes every sequence back to its fact, with the right target and padding', async () => {
    const vocab = column(await perAttr.readTable('vocab.parquet'), 'token', 'STRING');
    for (const f of ['train.parquet', 'test.parquet']) {
      const src = await facts.readTable(f);
      const tok = rowsOf(await perAttr.readTable(f));
      const type = column(src, 'type', 'STRING');
      const a = column(src, 'attribute', 'INT32');
      const e1 = column(src, 'e1', 'INT32');
      const e2 = column(src, 'e2', 'INT32');
      const label = column(src, 'label', 'INT32');
      expect(tok.type).toEqual(type);
      const names = ['lt', 'eq', 'gt'];
      let bad = 0;
      for (let r = 0; r < type.length; r++) {
        const words = tok.t.map((col) => vocab[col[r]]);
        let want: string[];
        let target: string;
        if (e2[r] === -1) {
          want = [`<e_${e1[r]}>`, `<attr_${a[r]}>`, '<pad>', '<pad>', '<pad>'];
          target = `<v_${label[r]}>`;
          if (tok.length[r] !== 2) bad++;
        } else {
          want = [`<attr_${a[r]}>`, '<q>', `<e_${e1[r]}>`, '<mask>', `<e_${e2[r]}>`];
          target = `<attr_${a[r]}_${names[label[r]]}>`;
          if (tok.length[r] !== 5) bad++;
        }
        if (words.join(' ') !== want.join(' ') || vocab[tok.target[r]] !== target) {
          if (bad < 3) console.error(f, r, words, want, vocab[tok.target[r]], target);
          bad++;
        }
      }
      expect(bad).toBe(0);
    }
    const train = rowsOf(await perAttr.readTable('train.parquet'));
    expect(train.type.length).toBe(246_800);
  });

  it('differs between per_attribute and shared labels only in the inferred targets', async () => {
    const sv = column(await shared.readTable('vocab.parquet'), 'token', 'STRING');
    expect(sv.length).toBe(4 + 1000 + 20 + 20 + 3);
    expect(sv.slice(-3)).toEqual(['<lt>', '<eq>', '<gt>']);
    const pv = column(await perAttr.readTable('vocab.parquet'), 'token', 'STRING');
    const p = rowsOf(await perAttr.readTable('test.parquet'));
    const s = rowsOf(await shared.readTable('test.parquet'));
    const src = await facts.readTable('test.parquet');
    const label = column(src, 'label', 'INT32');
    const e2 = column(src, 'e2', 'INT32');
    let bad = 0;
    for (let r = 0; r < p.type.length; r++) {
      for (let i = 0; i < 5; i++) if (p.t[i][r] !== s.t[i][r]) bad++;
      if (e2[r] === -1) {
        if (p.target[r] !== s.target[r]) bad++;
      } else {
        if (sv[s.target[r]] !== ['<lt>', '<eq>', '<gt>'][label[r]]) bad++;
        if (!pv[p.target[r]].endsWith(['_lt>', '_eq>', '_gt>'][label[r]])) bad++;
      }
    }
    expect(bad).toBe(0);
  });

  it('gives the same bytes for the same input', async () => {
    const again = await runFake(tokenizeStage, {}, [facts]);
    expect(again.hashes).toEqual(perAttr.hashes);
    expect(shared.hashes['test.parquet']).not.toBe(perAttr.hashes['test.parquet']);
  });
});

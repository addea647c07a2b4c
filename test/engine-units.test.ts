import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { CycleError, findCycle, topoOrder } from '../src/engine/pipeline/dag.js';
import { InputError } from '../src/engine/errors.js';
import { combinations, expandRuns, runId } from '../src/engine/pipeline/expand.js';
import type { StageSpec } from '../src/engine/pipeline/expand.js';
import { canonicalJson, contentHash, hashJson, stageKey } from '../src/engine/cache/hash.js';
import type { KeyComponents } from '../src/engine/cache/hash.js';
import { createLimiter } from '../src/engine/exec/limit.js';
import { acquireLock } from '../src/engine/cache/lock.js';
import { parsePipelineText } from '../src/engine/pipeline/load.js';
import { applyOverrides } from '../src/engine/pipeline/overrides.js';
import { compileLoaded, upstreamRuns } from '../src/engine/pipeline/pipeline.js';
import { EtaTracker, PlainReporter, formatProgress } from '../src/engine/terminal/progress.js';
import { createRegistry } from '../src/engine/registry.js';
import { Store, jobFilePath } from '../src/engine/cache/store.js';
import { renderTemplates, scanTemplates } from '../src/engine/pipeline/template.js';
import { explainMiss, paramChanges } from '../src/engine/explain/why.js';
import type { Manifest } from '../src/engine/cache/manifest.js';
import { fakeStages, gen, scale } from './fixtures/engine-stages.js';
import { tempDir } from './fixtures/engine-harness.js';

describe('load and locate', () => {
  it('maps JSON paths to file:line:col, falling back to the nearest ancestor', () => {
    const text = 'stages:\n  facts:\n    uses: split\n    with:\n      phi: 12.6\n      list: [1, 2]\n    needs:\n';
    const p = parsePipelineText(text, 'p.yaml');
    expect(p.locate(['stages', 'facts', 'with', 'phi'])).toBe('p.yaml:5:12');
    expect(p.locate(['stages', 'facts', 'with', 'phi'], { key: true })).toBe('p.yaml:5:7');
    expect(p.locate(['stages', 'facts', 'with', 'list', 1])).toBe('p.yaml:6:17');
    expect(p.locate(['stages', 'facts', 'with', 'missing', 'deeper'])).toBe('p.yaml:5:7');
    expect(p.locate(['stages', 'facts', 'needs'])).toBe('p.yaml:7:5');
  });

  it('YAML errors carry line and column', () => {
    expect(() => parsePipelineText('a: 1\na: 2\n', 'p.yaml')).toThrow(
      /^p\.yaml:2:1: YAML syntax error: Map keys must be unique/,
    );
    try {
      parsePipelineText('a: [1\n', 'p.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).exitCode).toBe(2);
    }
  });
});

describe('templates', () => {
  it('an exact template keeps the value type; inside a string it interpolates', () => {
    const out = renderTemplates(
      { n: '${{ matrix.n }}', s: 'n=${{matrix.n}}, lr=${{ vars.lr }}', deep: ['${{ vars.obj }}'] },
      { n: 400 },
      { lr: 0.001, obj: { a: 1 } },
    );
    expect(out).toEqual({ n: 400, s: 'n=400, lr=0.001', deep: [{ a: 1 }] });
  });

  it('scan finds matrix variables and bad references', () => {
    const scan = scanTemplates(
      { a: '${{ matrix.x }}', b: ['${{ vars.nope }}', '${{ secrets.k }}'] },
      { matrix: ['x', 'y'], vars: [] },
    );
    expect([...scan.matrix]).toEqual(['x']);
    expect(scan.problems.map((p) => p.path)).toEqual([
      ['b', 0],
      ['b', 1],
    ]);
  });
});

describe('dag', () => {
  it('orders deterministically, following the given order where free', () => {
    const needs: Record<string, string[]> = { d: ['b'], a: [], b: ['a'], c: [] };
    expect(topoOrder(['d', 'a', 'b', 'c'], (id) => needs[id])).toEqual(['a', 'b', 'd', 'c']);
  });

  it('names a cycle', () => {
    const needs: Record<string, string[]> = { a: ['b'], b: ['c'], c: ['a'], x: [] };
    expect(findCycle(['x', 'a', 'b', 'c'], (id) => needs[id])).toEqual(['a', 'b', 'c', 'a']);
    expect(() => topoOrder(['a', 'b', 'c'], (id) => needs[id])).toThrow(CycleError);
    expect(findCycle(['a'], () => ['a'])).toEqual(['a', 'a']);
  });
});

describe('expand', () => {
  const spec = (
    id: string,
    needs: string[],
    uses: string[],
    across = false,
    w: Record<string, string | number> = {},
  ): StageSpec => ({
    id,
    stage: gen as never,
    needs,
    with: w,
    across,
    uses: new Set(uses),
  });

  it('runs per combination of the variables a stage depends on (directly or upstream)', () => {
    const matrix = [
      ['a', [1, 2]],
      ['b', ['x', 'y']],
    ] as const;
    const runs = expandRuns(
      [
        spec('kb', [], ['a'], false, { n: '${{ matrix.a }}' }),
        spec('other', [], []),
        spec('m', ['kb', 'other'], ['b']),
        spec('r', ['m'], [], true),
      ],
      matrix,
      {},
    );
    expect(runs.map((r) => r.id)).toEqual([
      'kb[a=1]',
      'kb[a=2]',
      'other',
      'm[a=1,b=x]',
      'm[a=1,b=y]',
      'm[a=2,b=x]',
      'm[a=2,b=y]',
      'r',
    ]);
    expect(runs[0].params).toEqual({ n: 1 });
    const m = runs[4];
    expect(m.inputs.map((i) => i.id)).toEqual(['kb[a=1]', 'other']);
    expect(runs[7].inputs.map((i) => i.id)).toEqual(['m[a=1,b=x]', 'm[a=1,b=y]', 'm[a=2,b=x]', 'm[a=2,b=y]']);
    expect(upstreamRuns(m).map((u) => u.id)).toEqual(['kb[a=1]', 'other']);
  });

  it('across dedupes upstream runs that depend on fewer variables', () => {
    const runs = expandRuns(
      [spec('kb', [], ['a']), spec('r', ['kb'], [], true)],
      [
        ['a', [1, 2]],
        ['b', [0, 1, 2]],
      ],
      {},
    );
    expect(runs.at(-1)?.inputs.map((i) => i.id)).toEqual(['kb[a=1]', 'kb[a=2]']);
  });

  it('ids and combinations', () => {
    expect(runId('model', { entities: 400, seed: 1 })).toBe('model[entities=400,seed=1]');
    expect(runId('kb', {})).toBe('kb');
    expect(
      combinations(
        [
          ['a', [1, 2]],
          ['b', [3]],
        ],
        new Set(['b']),
      ),
    ).toEqual([{ b: 3 }]);
  });

  it('check sees upstream params nearest first', () => {
    const seen: string[][] = [];
    const probe = {
      ...scale,
      name: 'probe',
      check: (_p: unknown, up: readonly { stage: string }[]) => {
        seen.push(up.map((u) => u.stage));
        return [];
      },
    };
    const registry = createRegistry([...fakeStages, probe as never]);
    const loaded = parsePipelineText(
      'stages:\n  g: { uses: gen }\n  s: { uses: scale, needs: [g] }\n  p: { uses: probe, needs: [s] }\n',
      'p.yaml',
    );
    compileLoaded(loaded, registry);
    expect(seen).toEqual([['scale', 'gen']]);
  });
});

describe('overrides', () => {
  it('sets nested fields, creates missing objects, parses YAML scalars', () => {
    const loaded = parsePipelineText(
      'vars: { x: 1 }\nstages:\n  m:\n    uses: train\n    with:\n      opt: { lr: 0.1 }\n',
      'p.yaml',
    );
    const o = applyOverrides(loaded, ['m.with.opt.lr=3e-4', 'm.with.model.arch=gpt2', 'vars.x=true']);
    expect(o.data).toEqual({
      vars: { x: true },
      stages: { m: { uses: 'train', with: { opt: { lr: 0.0003 }, model: { arch: 'gpt2' } } } },
    });
    expect(o.locate(['stages', 'm', 'with', 'opt', 'lr'])).toBe('--set m.with.opt.lr=3e-4');
    expect(o.locate(['stages', 'm', 'uses'])).toBe('p.yaml:4:11');
    expect(loaded.data).toEqual({ vars: { x: 1 }, stages: { m: { uses: 'train', with: { opt: { lr: 0.1 } } } } });
  });

  it('rejects malformed arguments, naming them', () => {
    const loaded = parsePipelineText('stages:\n  m: { uses: train, with: { n: 1 } }\n', 'p.yaml');
    expect(() => applyOverrides(loaded, ['m.with.n'])).toThrow('--set m.with.n: expected');
    expect(() => applyOverrides(loaded, ['m.with.n.x=1', 'q.with.a=1'])).toThrow(
      /--set m\.with\.n\.x=1: .*\n--set q\.with\.a=1: unknown stage "q"/,
    );
  });
});

describe('hashing', () => {
  it('content hash ignores output order; canonical JSON sorts keys', () => {
    const a = contentHash([
      { name: 'b', hash: '2' },
      { name: 'a', hash: '1' },
    ]);
    expect(a).toBe(
      contentHash([
        { name: 'a', hash: '1' },
        { name: 'b', hash: '2' },
      ]),
    );
    expect(a).not.toBe(
      contentHash([
        { name: 'a', hash: '2' },
        { name: 'b', hash: '1' },
      ]),
    );
    expect(canonicalJson({ b: 1, a: [1e-3, 20000.0] })).toBe('{"a":[0.001,20000],"b":1}');
  });

  it('key depends on stage, version, params and inputs, not on key order', () => {
    const base = {
      stage: 'train',
      version: '1',
      params: { a: 1, b: { c: 2 } },
      inputs: [{ stage: 'tokenize', content_hash: 'h' }],
    };
    const k = stageKey(base);
    expect(stageKey({ ...base, params: { b: { c: 2 }, a: 1 } })).toBe(k);
    expect(stageKey({ ...base, version: '2' })).not.toBe(k);
    expect(stageKey({ ...base, inputs: [{ stage: 'tokenize', content_hash: 'h2' }] })).not.toBe(k);
    expect(stageKey({ ...base, inputs: [{ stage: 'tokenize', content_hash: 'h', matrix: { s: 1 } }] })).not.toBe(k);
  });

  it('key = hashJson of {stage, version, params, inputs}, also when runs share a params object', () => {
    const params = { z: [1.5e-7, -0, 'é\u2028"\\'], a: { y: null, x: true }, model: { d_model: 64 } };
    const cases: KeyComponents[] = [
      { stage: 'train', version: '3', params, inputs: [{ stage: 'tokenize', content_hash: 'h' }] },
      { stage: 'train', version: '3', params, inputs: [{ stage: 'tokenize', content_hash: 'h2' }] },
      {
        stage: 'analyze',
        version: '1.2',
        params: {},
        inputs: [{ stage: 'evaluate', content_hash: 'c', matrix: { seed: 1, n: 'x' } }],
      },
      { stage: 'generate', version: '1', params: { seed: 0 }, inputs: [] },
    ];
    for (const c of cases)
      expect(stageKey(c)).toBe(hashJson({ stage: c.stage, version: c.version, params: c.params, inputs: c.inputs }));
  });
});

describe('why', () => {
  const manifest = (
    version: string,
    params: Record<string, unknown>,
    inputs: { stage: string; content_hash: string }[],
  ): Manifest =>
    ({
      format: 1,
      stage: 'train',
      key: 'k',
      content_hash: 'c',
      components: { stage: 'train', version, params_hash: hashJson(params), inputs },
      params,
      inputs: [],
      outputs: [],
      info: {},
      versions: {},
      timings: { started: '', finished: '', seconds: 0 },
      host: '',
      pipeline: { file: '', id: '' },
    }) as unknown as Manifest;

  it('lists changed leaves', () => {
    expect(
      paramChanges(
        { optimizer: { lr: 0.001, wd: 0.1 }, arch: 'gpt2' },
        { optimizer: { lr: 0.0003, wd: 0.1 }, arch: 'llama', extra: 1 },
      ),
    ).toEqual(['with.optimizer.lr 0.001 -> 0.0003', 'with.arch gpt2 -> llama', 'with.extra (unset) -> 1']);
  });

  it('explains against the nearest manifest', () => {
    const inputs = [{ stage: 'tokenize', content_hash: 'h1' }];
    const now = { components: { stage: 'train', version: '2', params: { lr: 1 }, inputs }, inputIds: ['tokens'] };
    expect(explainMiss(now, [])).toBe('no cached entry of stage train');
    expect(
      explainMiss(now, [
        manifest('1', { lr: 1 }, inputs),
        manifest('2', { lr: 5 }, [{ stage: 'tokenize', content_hash: 'h0' }]),
      ]),
    ).toBe('code version 1 -> 2');
    expect(explainMiss(now, [manifest('2', { lr: 5 }, [{ stage: 'tokenize', content_hash: 'h0' }])])).toBe(
      'with.lr 5 -> 1; upstream tokens changed',
    );
  });
});

describe('store and locks', () => {
  it('lookup: absent, hit, and corrupt when a file is missing or the manifest is damaged', async () => {
    const store = new Store(tempDir());
    expect(await store.lookup('gen', 'abc')).toEqual({ hit: false });
    const dir = store.artifactDir('gen', 'abc');
    mkdirSync(dir, { recursive: true });
    expect(await store.lookup('gen', 'abc')).toEqual({ hit: false, reason: 'corrupt: manifest.json missing' });
    writeFileSync(join(dir, 'manifest.json'), '{"format":1');
    expect(await store.lookup('gen', 'abc')).toEqual({ hit: false, reason: 'corrupt: manifest.json' });
  });

  it('cleanStale removes temporaries of dead processes only', async () => {
    const store = new Store(tempDir());
    const dead = (await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])).stdout;
    const mine = await store.createTemp('aa');
    const stale = join(store.tmpDir, `bb.${dead}.0123abcd`);
    mkdirSync(stale);
    writeFileSync(`${stale}.task.json`, '{}');
    expect((await store.cleanStale()).sort()).toEqual([`bb.${dead}.0123abcd`, `bb.${dead}.0123abcd.task.json`]);
    expect(existsSync(mine)).toBe(true);
  });

  it("cleanStale removes the job file of a dead process, and keeps a live one's", async () => {
    const store = new Store(tempDir());
    const dead = (await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])).stdout;
    const mine = await store.createTemp('aa');
    writeFileSync(jobFilePath(mine), '{}');
    const stale = join(store.tmpDir, `cc.${dead}.4567abcd`);
    mkdirSync(stale);
    writeFileSync(jobFilePath(stale), '{}');
    expect((await store.cleanStale()).sort()).toEqual([`cc.${dead}.4567abcd`, `cc.${dead}.4567abcd.job.json`]);
    expect(existsSync(jobFilePath(mine))).toBe(true);
    await store.discard(mine);
    expect(existsSync(jobFilePath(mine))).toBe(false);
  });

  it('a lock held by a dead process is taken over at once; a live holder makes others wait', async () => {
    const dir = tempDir();
    const dead = (await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])).stdout;
    mkdirSync(join(dir, 'k.lock'));
    writeFileSync(join(dir, 'k.owner'), JSON.stringify({ pid: Number(dead), host: hostname() }));
    const release = await acquireLock(dir, 'k');
    let waited = false;
    const controller = new AbortController();
    const second = acquireLock(dir, 'k', { signal: controller.signal, onWait: () => (waited = true) });
    await new Promise((r) => setTimeout(r, 150));
    expect(waited).toBe(true);
    await release();
    const release2 = await second;
    await release2();
    const third = acquireLock(dir, 'k', { signal: AbortSignal.abort(new Error('stop')) });
    await expect(third).rejects.toThrow('stop');
  });
});

describe('progress', () => {
  it('formats progress with metrics and ETA; plain lines are throttled per run', () => {
    const eta = new EtaTracker();
    expect(eta.update({ step: 100, total: 1000 }, 0)).toBeUndefined();
    const ms = eta.update({ step: 200, total: 1000 }, 10_000) as number;
    expect(ms).toBe(80_000);
    expect(formatProgress({ step: 200, total: 1000, metrics: { loss: 0.41234, id: 0.93, ood: 0.1 } }, ms)).toBe(
      'step 200/1000 loss 0.412 id 0.93 ood 0.1 eta 1m',
    );
    let out = '';
    const r = new PlainReporter({ write: (s: string) => (out += s) }, 60_000);
    for (let step = 1; step <= 5; step++) r.event('model', { kind: 'progress', update: { step, total: 5 } });
    r.event('model', { kind: 'log', message: 'hello' });
    expect(out.split('\n').filter(Boolean)).toEqual(['[model] step 1/5', '[model] step 5/5', '[model] hello']);
  });

  it('the limiter bounds concurrency', async () => {
    const limit = createLimiter(2);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        limit(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });
});

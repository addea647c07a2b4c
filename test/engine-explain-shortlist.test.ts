/**
 * The shortlist of manifests that explains a miss in a large store (`engine/explain/shortlist.ts`):
 * on a store larger than `SHORTLIST_MAX`, `diffMiss` and `nearestByOwn` find the same nearest entry
 * as a comparison with every manifest where the nearest is in the top tier.
 */
import { describe, expect, it } from 'vitest';
import { hashJson } from '../src/engine/cache/hash.js';
import type { KeyInput } from '../src/engine/cache/hash.js';
import type { Manifest } from '../src/engine/cache/manifest.js';
import { diffMiss, nearestByOwn } from '../src/engine/explain/why.js';
import { inputsDigest, shortlist, SHORTLIST_MAX } from '../src/engine/explain/shortlist.js';

/** A manifest of stage `train` for `seed`, with one input whose content is `data`. */
function manifest(seed: number, version: string, data: string, finished: string): Manifest {
  const params = { seed, lr: 0.001 };
  const inputs: KeyInput[] = [{ stage: 'tokenize', content_hash: data }];
  return {
    format: 1,
    stage: 'train',
    key: hashJson({ seed, version, data }),
    content_hash: hashJson({ out: seed }),
    components: { stage: 'train', version, params_hash: hashJson(params), inputs },
    params,
    timings: { finished },
  } as unknown as Manifest;
}

const N = SHORTLIST_MAX * 4;
/** 1,024 runs of code version 1, seeds 0..1023 on data `a`, finished in seed order. */
const store = Array.from({ length: N }, (_, s) => manifest(s, '1', 'a', `2026-11-30T00:${String(s).padStart(5, '0')}`));

describe('shortlist', () => {
  it('finds the run that differs only in code version among 1,024', () => {
    const params = { seed: 700, lr: 0.001 };
    const inputs: KeyInput[] = [{ stage: 'tokenize', content_hash: 'a' }];
    const d = diffMiss({ components: { stage: 'train', version: '2', params, inputs }, inputIds: ['tokens'] }, store);
    expect(d?.nearest.key).toBe(store[700].key);
    expect(d?.own).toEqual(['code version 1 -> 2']);
    expect(d?.changed).toEqual([]);
  });

  it('names the changed upstream when version and params are equal', () => {
    const params = { seed: 5, lr: 0.001 };
    const inputs: KeyInput[] = [{ stage: 'tokenize', content_hash: 'b' }];
    const d = diffMiss({ components: { stage: 'train', version: '1', params, inputs }, inputIds: ['tokens'] }, store);
    expect(d?.nearest.key).toBe(store[5].key);
    expect(d?.own).toEqual([]);
    expect(d?.changed).toEqual([0]);
  });

  it('keeps the newest of a tier larger than SHORTLIST_MAX', () => {
    const probe = { version: '1', paramsHash: hashJson({ seed: -1 }), inputsDigest: inputsDigest([]) };
    const list = shortlist(probe, store);
    expect(list).toHaveLength(SHORTLIST_MAX);
    expect(list[0].key).toBe(store[N - 1].key);
    expect(list.at(-1)?.key).toBe(store[N - SHORTLIST_MAX].key);
  });

  it('gives an unkeyed run the manifest with its own params, as a full scan does', () => {
    const near = nearestByOwn({ stage: 'train', version: '2', params: { seed: 321, lr: 0.001 } }, store);
    expect(near?.nearest.key).toBe(store[321].key);
    expect(near?.own).toEqual(['code version 1 -> 2']);
  });

  it('compares a small store in full', () => {
    const small = store.slice(0, 10);
    expect(shortlist({ version: '9', paramsHash: 'x' }, small)).toEqual(small);
  });

  it('digests across-matrix inputs as a set', () => {
    const a: KeyInput = { stage: 'evaluate', content_hash: 'h1', matrix: { seed: 0 } };
    const b: KeyInput = { stage: 'evaluate', content_hash: 'h2', matrix: { seed: 1 } };
    expect(inputsDigest([a, b])).toBe(inputsDigest([b, a]));
    expect(inputsDigest([a, b])).not.toBe(inputsDigest([a, { ...b, content_hash: 'h3' }]));
    expect(inputsDigest([a])).not.toBe(inputsDigest([{ stage: 'evaluate', content_hash: 'h1' }]));
  });
});

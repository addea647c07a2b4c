/**
 * The split of a knowledge base into training and test facts (Wang et al. 2024; docs/design.md §4):
 *
 * - per attribute, `n_id` ID entities, the rest OOD (`domains.ts`);
 * - training: every atomic fact (ID and OOD), then `k = round(phi × #ID atomic)` inferred facts
 *   drawn uniformly without replacement from the training pool: the ordered ID-ID pairs whose
 *   unordered pair the pair hash sends to training (`pair-hash.ts`; probability `1 - id_test_fraction`);
 * - test: up to `test_size` each of `train_inferred` (a sample of the training inferred facts),
 *   `id_atomic`, `ood_atomic`, `id_inferred` (ID-ID pairs on the test side: never in training, in
 *   either order) and `ood_inferred` (OOD-OOD pairs). Mixed ID-OOD pairs are never used.
 *
 * No pair list is ever built for a large pool: pairs are drawn by index (`pair-space.ts`,
 * `sample.ts`). Every random choice comes from a stream named by ('split', seed, input hash,
 * purpose), so the result is a pure function of the KB, the params and the seed, and the training
 * set does not depend on `test_size`.
 */
import type { FactColumns } from './facts.js';
import { TEST_TYPES, TRAIN_TYPES, allocFacts } from './facts.js';
import type { Domains } from './domains.js';
import { drawDomains } from './domains.js';
import type { KnowledgeBase } from './kb.js';
import { compareValues } from './labels.js';
import type { PairHashKeys } from './pair-hash.js';
import { pairGoesToTest, testThreshold } from './pair-hash.js';
import { PairSpace } from './pair-space.js';
import { openStream, streamWords } from './streams.js';
import type { IndexPool } from './sample.js';
import { sampleDistinct, sampleFromPool } from './sample.js';
import type { SplitPlan, SplitSizeParams } from './split-plan.js';
import { planSplit } from './split-plan.js';

/** Params of a split (see `schemas/stages/split.schema.json`). */
export interface SplitParams extends SplitSizeParams {
  /** Rows per test type at most (>= 1). */
  readonly test_size: number;
  /** Seed of the split's random choices (integer >= 0). */
  readonly seed: number;
}

/** What `splitKnowledgeBase` returns. */
export interface SplitResult {
  /** The sizes fixed before drawing. */
  readonly plan: SplitPlan;
  /** The ID/OOD partition. */
  readonly domains: Domains;
  /**
   * Training facts: `A × N` atomic facts ordered by attribute then entity, then the `k` inferred
   * facts ordered by attribute, e1, e2.
   */
  readonly train: FactColumns;
  /** Test facts: grouped by type in `TEST_TYPES` order, each group ordered by attribute, e1, e2. */
  readonly test: FactColumns;
  /** Exact size of the training pool when it had to be counted, else `undefined` (only expected). */
  readonly trainPoolSize: number | undefined;
}

/** Thrown when the training pool drawn is smaller than the number of training inferred facts asked for. */
export class PoolTooSmallError extends Error {
  override name = 'PoolTooSmallError';
}

/** The ordered ID-ID pairs on one side of the pair hash, as an `IndexPool` over `space`. */
function idPairPool(
  space: PairSpace,
  keys: PairHashKeys,
  threshold: number,
  testSide: boolean,
  rate: number,
): IndexPool {
  const out = new Int32Array(3);
  return {
    space: space.size,
    rate,
    contains(idx: number): boolean {
      space.decode(idx, out);
      return pairGoesToTest(keys, threshold, out[0], out[1], out[2]) === testSide;
    },
    enumerate(): Float64Array {
      const found: number[] = [];
      const m = space.m;
      for (let a = 0; a < space.attributes; a++) {
        const base = a * m;
        for (let i = 0; i < m; i++) {
          for (let j = i + 1; j < m; j++) {
            const e1 = space.members[base + i];
            const e2 = space.members[base + j];
            if (pairGoesToTest(keys, threshold, a, e1, e2) === testSide)
              found.push(space.indexOf(a, i, j), space.indexOf(a, j, i));
          }
        }
      }
      return Float64Array.from(found);
    },
  };
}

/** Writes the inferred facts of the sorted pair `indices` of `space` into `facts` from row `start`. */
function putInferred(
  facts: FactColumns,
  start: number,
  type: number,
  space: PairSpace,
  indices: Float64Array,
  kb: KnowledgeBase,
): void {
  const out = new Int32Array(3);
  const n = kb.entities;
  for (let t = 0; t < indices.length; t++) {
    space.decode(indices[t], out);
    const r = start + t;
    const a = out[0];
    facts.type[r] = type;
    facts.attribute[r] = a;
    facts.e1[r] = out[1];
    facts.e2[r] = out[2];
    facts.label[r] = compareValues(kb.value[a * n + out[1]], kb.value[a * n + out[2]]);
  }
}

/** Writes atomic facts of the sorted positions `indices` into a member list (`m` per attribute). */
function putAtomic(
  facts: FactColumns,
  start: number,
  type: number,
  members: Int32Array,
  m: number,
  indices: Float64Array,
  kb: KnowledgeBase,
): void {
  for (let t = 0; t < indices.length; t++) {
    const idx = indices[t];
    const a = Math.floor(idx / m);
    const e = members[idx];
    const r = start + t;
    facts.type[r] = type;
    facts.attribute[r] = a;
    facts.e1[r] = e;
    facts.e2[r] = -1;
    facts.label[r] = kb.value[a * kb.entities + e];
  }
}

/**
 * Splits `kb` (docs/design.md §4; see the module comment). `inputHash` identifies the KB's content
 * (its table's logical hash) and seeds every random choice together with `params.seed`.
 * @throws RangeError when a param is out of range (see `planSplit`).
 * @throws PoolTooSmallError when the training pool drawn holds fewer than `round(phi × #ID atomic)`
 *   ordered pairs (the message gives the pool size and the largest phi it allows).
 */
export function splitKnowledgeBase(kb: KnowledgeBase, params: SplitParams, inputHash: string): SplitResult {
  const plan = planSplit(kb, params);
  const stream = (purpose: string) => openStream('split', params.seed, inputHash, purpose);
  const { attributes: numAttr, entities: n } = kb;

  const domains = drawDomains(n, numAttr, plan.idEntities, stream('domains'));
  const idSpace = new PairSpace(domains.id, domains.nId, numAttr);
  const oodSpace = new PairSpace(domains.ood, domains.nOod, numAttr);
  const words = streamWords(['split', params.seed, inputHash, 'pair-side']);
  const keys: PairHashKeys = { a: words[0], b: words[1] };
  const threshold = testThreshold(params.id_test_fraction);
  const p = params.id_test_fraction;

  // Training inferred facts: k ordered pairs of the training pool, uniformly without replacement.
  const k = plan.trainInferred;
  const trainDraw = sampleFromPool(stream('train-inferred'), idPairPool(idSpace, keys, threshold, false, 1 - p), k);
  if (trainDraw.indices.length < k) {
    const pool = trainDraw.indices.length;
    const max = Math.floor((pool / plan.idAtomic) * 1e4) / 1e4;
    throw new PoolTooSmallError(
      `the training pool drawn holds ${pool} ordered ID-ID pairs (expected about ${Math.round(plan.expectedTrainPool)}), ` +
        `fewer than the ${k} training inferred facts phi ${params.phi} asks for; lower phi to at most ${max} or change the seed`,
    );
  }

  const train = allocFacts(TRAIN_TYPES, n * numAttr + k);
  for (let r = 0; r < n * numAttr; r++) {
    train.type[r] = 0;
    train.attribute[r] = Math.floor(r / n);
    train.e1[r] = r % n;
    train.e2[r] = -1;
    train.label[r] = kb.value[r];
  }
  putInferred(train, n * numAttr, 1, idSpace, trainDraw.indices, kb);

  // Test sets, in TEST_TYPES order; each draws from its own stream.
  const size = params.test_size;
  const trainInferredRows = sampleDistinct(stream('test-train_inferred'), k, Math.min(size, k));
  const idAtomic = sampleDistinct(stream('test-id_atomic'), plan.idAtomic, Math.min(size, plan.idAtomic));
  const oodAtomic = sampleDistinct(stream('test-ood_atomic'), plan.oodAtomic, Math.min(size, plan.oodAtomic));
  const idInferred = sampleFromPool(
    stream('test-id_inferred'),
    idPairPool(idSpace, keys, threshold, true, p),
    size,
  ).indices;
  const oodInferred = sampleDistinct(stream('test-ood_inferred'), oodSpace.size, Math.min(size, oodSpace.size));

  const test = allocFacts(
    TEST_TYPES,
    trainInferredRows.length + idAtomic.length + oodAtomic.length + idInferred.length + oodInferred.length,
  );
  let r = 0;
  const base = n * numAttr;
  for (let t = 0; t < trainInferredRows.length; t++, r++) {
    const src = base + trainInferredRows[t];
    test.type[r] = 0;
    test.attribute[r] = train.attribute[src];
    test.e1[r] = train.e1[src];
    test.e2[r] = train.e2[src];
    test.label[r] = train.label[src];
  }
  putAtomic(test, r, 1, domains.id, domains.nId, idAtomic, kb);
  r += idAtomic.length;
  putAtomic(test, r, 2, domains.ood, domains.nOod, oodAtomic, kb);
  r += oodAtomic.length;
  putInferred(test, r, 3, idSpace, idInferred, kb);
  r += idInferred.length;
  putInferred(test, r, 4, oodSpace, oodInferred, kb);

  return { plan, domains, train, test, trainPoolSize: trainDraw.poolSize };
}

/**
 * The sizes a split will have, computed from the task sizes and the split params alone, before
 * any random draw (used by `split`'s `check` and `run`).
 *
 * Rounding rules (docs/design.md §4, stated here once):
 * - ID entities per attribute: `n_id = Math.round(id_fraction × N)` (half up, in double precision),
 *   the same number for every attribute; the other `N - n_id` entities are OOD.
 * - Training inferred facts: `k = Math.round(phi × A × n_id)`, i.e. phi times the number of ID
 *   atomic facts.
 * - Ordered ID-ID pairs: `A × n_id × (n_id - 1)`; each unordered pair goes to the ID-test pool with
 *   probability `id_test_fraction`, so the training pool's *expected* size is
 *   `(1 - id_test_fraction) × A × n_id × (n_id - 1)` = `(1 - p) × 2 × C(n_id, 2) × A` ordered pairs.
 *   Its actual size is random (a sum of binomials) around that.
 * - OOD-test pool: every ordered OOD-OOD pair, `A × n_ood × (n_ood - 1)`, exact.
 */

/** The split params the plan depends on (see `schemas/stages/split.schema.json`). */
export interface SplitSizeParams {
  /** Fraction of entities that are ID, per attribute, in (0, 1). */
  readonly id_fraction: number;
  /** Inferred-to-atomic ratio: training inferred facts per ID atomic fact (>= 0). */
  readonly phi: number;
  /** Probability that an unordered ID-ID pair is held out for the ID test, in [0, 1). */
  readonly id_test_fraction: number;
}

/** Sizes of a split (counts of facts or entities; all integers except the expectations). */
export interface SplitPlan {
  /** ID entities per attribute, `n_id`. */
  readonly idEntities: number;
  /** OOD entities per attribute, `N - n_id`. */
  readonly oodEntities: number;
  /** ID atomic facts, `A × n_id`. */
  readonly idAtomic: number;
  /** OOD atomic facts, `A × (N - n_id)`. */
  readonly oodAtomic: number;
  /** Training inferred facts to draw, `round(phi × idAtomic)`. */
  readonly trainInferred: number;
  /** Ordered ID-ID pairs over all attributes, `A × n_id × (n_id - 1)`. */
  readonly idPairs: number;
  /** Expected training pool (ordered pairs), `(1 - id_test_fraction) × idPairs`. */
  readonly expectedTrainPool: number;
  /** Expected ID-test pool (ordered pairs), `id_test_fraction × idPairs`. */
  readonly expectedIdTestPool: number;
  /** OOD-test pool (ordered OOD-OOD pairs), `A × n_ood × (n_ood - 1)`. */
  readonly oodPool: number;
  /**
   * Largest phi whose `trainInferred` fits the expected training pool:
   * `floor(expectedTrainPool) / idAtomic` (Infinity when there is no ID atomic fact).
   */
  readonly maxPhi: number;
}

/**
 * Computes the sizes of a split of a KB with `entities` N and `attributes` A (rules above).
 * @throws RangeError when a size or param is out of its range.
 */
export function planSplit(dims: { entities: number; attributes: number }, params: SplitSizeParams): SplitPlan {
  const { entities: n, attributes: a } = dims;
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`entities must be an integer >= 2, got ${n}`);
  if (!Number.isInteger(a) || a < 1) throw new RangeError(`attributes must be an integer >= 1, got ${a}`);
  if (!(params.id_fraction > 0 && params.id_fraction < 1))
    throw new RangeError(`id_fraction must be in (0, 1), got ${params.id_fraction}`);
  if (!(params.phi >= 0 && Number.isFinite(params.phi)))
    throw new RangeError(`phi must be a finite number >= 0, got ${params.phi}`);
  const p = params.id_test_fraction;
  if (!(p >= 0 && p < 1)) throw new RangeError(`id_test_fraction must be in [0, 1), got ${p}`);
  const idEntities = Math.round(params.id_fraction * n);
  const oodEntities = n - idEntities;
  const idAtomic = a * idEntities;
  const idPairs = a * idEntities * Math.max(0, idEntities - 1);
  const expectedTrainPool = (1 - p) * idPairs;
  return {
    idEntities,
    oodEntities,
    idAtomic,
    oodAtomic: a * oodEntities,
    trainInferred: Math.round(params.phi * idAtomic),
    idPairs,
    expectedTrainPool,
    expectedIdTestPool: p * idPairs,
    oodPool: a * oodEntities * Math.max(0, oodEntities - 1),
    maxPhi: idAtomic === 0 ? Infinity : Math.floor(expectedTrainPool) / idAtomic,
  };
}

/**
 * The problem with `phi` for this plan, or `undefined` when the training inferred facts it asks
 * for fit the expected training pool. The message gives the largest phi allowed (rounded down to
 * 4 decimals).
 */
export function phiProblem(plan: SplitPlan, phi: number): string | undefined {
  if (plan.trainInferred <= plan.expectedTrainPool) return undefined;
  const max = Math.floor(plan.maxPhi * 1e4) / 1e4;
  return (
    `phi ${phi} asks for round(${phi} × ${plan.idAtomic} ID atomic facts) = ${plan.trainInferred} training inferred facts, ` +
    `but the training pool holds about ${Math.floor(plan.expectedTrainPool)} ordered ID-ID pairs ` +
    `((1 - id_test_fraction) × A × n_id × (n_id - 1), with n_id = ${plan.idEntities} ID entities per attribute); ` +
    `phi must be at most ${max}`
  );
}

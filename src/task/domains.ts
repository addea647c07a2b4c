/**
 * The per-attribute partition of entities into in-distribution (ID) and out-of-distribution (OOD)
 * (Wang et al. 2024; docs/design.md §4, `split`): for each attribute separately, a uniformly random set
 * of `n_id` entities is ID and the rest OOD, so an entity can be ID for one attribute and OOD for
 * another. `n_id` is fixed by `planSplit` (`Math.round(id_fraction × N)`).
 */
import type { Table } from '../table/table.js';
import type { RandomGenerator } from './streams.js';
import { below } from './streams.js';

/** An ID/OOD partition of N entities for each of A attributes. */
export interface Domains {
  /** Number of entities N. */
  readonly entities: number;
  /** Number of attributes A. */
  readonly attributes: number;
  /** ID entities per attribute, `n_id`. */
  readonly nId: number;
  /** OOD entities per attribute, `N - n_id`. */
  readonly nOod: number;
  /** ID entities of attribute `a` at `[a × nId, (a + 1) × nId)`, ascending. */
  readonly id: Int32Array;
  /** OOD entities of attribute `a` at `[a × nOod, (a + 1) × nOod)`, ascending. */
  readonly ood: Int32Array;
  /** 1 when entity `e` is ID for attribute `a`, else 0, at index `a × N + e`. */
  readonly isId: Uint8Array;
}

/**
 * Draws the partition: for each attribute in order, `nId` entities by a partial Fisher-Yates
 * shuffle of `0 .. N-1` (every nId-subset equally likely), from `rng`.
 * @throws RangeError when `nId` is not an integer in `[0, entities]`.
 */
export function drawDomains(entities: number, attributes: number, nId: number, rng: RandomGenerator): Domains {
  if (!Number.isInteger(nId) || nId < 0 || nId > entities)
    throw new RangeError(`cannot pick ${nId} ID entities of ${entities}`);
  const nOod = entities - nId;
  const isId = new Uint8Array(entities * attributes);
  const id = new Int32Array(attributes * nId);
  const ood = new Int32Array(attributes * nOod);
  const perm = new Int32Array(entities);
  for (let a = 0; a < attributes; a++) {
    for (let e = 0; e < entities; e++) perm[e] = e;
    for (let t = 0; t < nId; t++) {
      const r = t + below(rng, entities - t);
      const tmp = perm[t];
      perm[t] = perm[r];
      perm[r] = tmp;
      isId[a * entities + perm[t]] = 1;
    }
    let ni = a * nId;
    let no = a * nOod;
    for (let e = 0; e < entities; e++) {
      if (isId[a * entities + e]) id[ni++] = e;
      else ood[no++] = e;
    }
  }
  return { entities, attributes, nId, nOod, id, ood, isId };
}

/**
 * `entities.parquet`: `attribute INT32, entity INT32, domain STRING ('id' | 'ood')`, one row per
 * (attribute, entity), ordered by attribute then entity (docs/artifacts.md).
 */
export function domainsToTable(d: Domains): Table {
  const rows = d.entities * d.attributes;
  const attribute = new Int32Array(rows);
  const entity = new Int32Array(rows);
  const domain = new Array<string>(rows);
  for (let r = 0; r < rows; r++) {
    attribute[r] = Math.floor(r / d.entities);
    entity[r] = r % d.entities;
    domain[r] = d.isId[r] ? 'id' : 'ood';
  }
  return {
    columns: [
      { name: 'attribute', type: 'INT32', data: attribute },
      { name: 'entity', type: 'INT32', data: entity },
      { name: 'domain', type: 'STRING', data: domain },
    ],
  };
}

/**
 * The shortlist of cached manifests worth comparing with a missed run, so that explaining every
 * miss of a large sweep does not compare every run with every manifest.
 *
 * `why.ts` scores a candidate by how many of its three key components equal the run's (code
 * version, params, inputs) and only then looks at the details (which params, which inputs). The
 * best candidates are therefore in the highest non-empty score tier, which maps over the
 * components find without a scan: after a code version bump the one manifest with equal params
 * and inputs, for instance. Without this, `grokpipe status` on 10,000 runs whose analyze stage
 * changed version compared 10,000 × 10,000 manifests (8 minutes, measured 2026-11-30).
 *
 * A store with at most `SHORTLIST_MAX` manifests of the stage type is compared in full, as
 * before. Beyond that the explanation is the nearest among the shortlist, a bounded approximation
 * of the nearest of all: a tier holding more than `SHORTLIST_MAX` manifests is cut to its newest
 * ones, and for a run without a key (`nearestByOwn`, which counts differing params rather than
 * components) a manifest outside the tier can have fewer differences.
 */
import { canonicalJson, hashJson } from '../cache/hash.js';
import type { KeyInput } from '../cache/hash.js';
import type { Manifest } from '../cache/manifest.js';

/** Most manifests of one tier that are compared in detail (the newest first). */
export const SHORTLIST_MAX = 256;

/** Which key components a shortlist matches on. */
export interface Probe {
  readonly version: string;
  readonly paramsHash: string;
  /** `inputsDigest` of the run's inputs; absent when they are not known (the run is unkeyed). */
  readonly inputsDigest?: string;
}

/**
 * A digest of key inputs that is equal exactly when `why.ts`'s `diffInputs` finds no difference:
 * by position, or (when any input is `across: matrix`) as a set of stage, matrix values and
 * content hash.
 */
export function inputsDigest(inputs: readonly KeyInput[]): string {
  if (!inputs.some((i) => i.matrix !== undefined)) return hashJson(inputs.map((i) => canonicalJson(i)));
  const pairs = new Map(inputs.map((i) => [canonicalJson({ stage: i.stage, matrix: i.matrix ?? {} }), i.content_hash]));
  return hashJson([...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `inputsDigest` of each manifest's inputs, computed once per manifest (a store's lists are rebuilt per commit). */
const digests = new WeakMap<Manifest, string>();

function manifestInputsDigest(m: Manifest): string {
  let d = digests.get(m);
  if (d === undefined) {
    d = inputsDigest(m.components.inputs);
    digests.set(m, d);
  }
  return d;
}

/** Candidates of one stage type, newest first, with maps from component values to positions. */
interface Index {
  readonly newest: readonly Manifest[];
  readonly by: Map<string, number[]>;
}

const indexes = new WeakMap<readonly Manifest[], Index>();

const V = (v: string) => `v\0${v}`;
const P = (p: string) => `p\0${p}`;
const I = (i: string) => `i\0${i}`;

function indexOf(candidates: readonly Manifest[]): Index {
  let index = indexes.get(candidates);
  if (index) return index;
  const newest = [...candidates].sort((a, b) => (b.timings?.finished ?? '').localeCompare(a.timings?.finished ?? ''));
  const by = new Map<string, number[]>();
  const add = (k: string, at: number) => {
    const list = by.get(k);
    if (list) list.push(at);
    else by.set(k, [at]);
  };
  newest.forEach((m, at) => {
    const v = V(m.components.version);
    const p = P(m.components.params_hash);
    const i = I(manifestInputsDigest(m));
    for (const k of [v, p, i, v + p, v + i, p + i, v + p + i]) add(k, at);
  });
  index = { newest, by };
  indexes.set(candidates, index);
  return index;
}

/**
 * The candidates in the highest score tier for `probe` (the most key components equal), at most
 * `SHORTLIST_MAX`, newest first. Without `inputsDigest` only version and params count.
 * @param candidates manifests of one stage type; the same array (e.g. `Store.manifests`) is
 *   indexed once.
 */
export function shortlist(probe: Probe, candidates: readonly Manifest[]): Manifest[] {
  if (candidates.length <= SHORTLIST_MAX) return [...candidates];
  const { newest, by } = indexOf(candidates);
  const v = V(probe.version);
  const p = P(probe.paramsHash);
  const i = probe.inputsDigest === undefined ? undefined : I(probe.inputsDigest);
  const tiers: string[][] = i === undefined ? [[v + p], [v, p]] : [[v + p + i], [v + p, v + i, p + i], [v, p, i]];
  for (const tier of tiers) {
    const at = [...new Set(tier.flatMap((k) => by.get(k) ?? []))].sort((a, b) => a - b);
    if (at.length > 0) return at.slice(0, SHORTLIST_MAX).map((n) => newest[n]);
  }
  return newest.slice(0, SHORTLIST_MAX);
}

/**
 * **The explain wing** (`engine/explain/`): why a run must run, what would run, and whether a
 * cached result still comes out the same. `why.ts` (this module) compares a run's key with the
 * nearest cached entry of its stage type; `cause.ts` reduces a cascade of misses to its root
 * causes; `resolve.ts` is the step `run` and `plan` share (key, lookup, explanation of a miss);
 * `plan.ts` plans a pipeline against the store without running anything; `verify.ts` recomputes
 * cached runs into scratch folders and compares their outputs, tables column by column with
 * `table-diff.ts`. Apart from `verify`'s scratch folders, the wing only reads the store.
 *
 * Why a stage run must run: its key compared with the nearest cached manifest of the same stage
 * type (the one with most key components equal), e.g.
 * `with.optimizer.lr 0.001 -> 0.0003; upstream tokens changed`.
 */
import { canonicalJson, hashJson } from '../cache/hash.js';
import type { KeyComponents, KeyInput } from '../cache/hash.js';
import type { Manifest } from '../cache/manifest.js';
import type { Json } from '../stage.js';
import { inputsDigest, shortlist } from './shortlist.js';

/** Formats a list for a message: `a, b, c and 2 more`. */
export function formatList(items: readonly string[], max = 3): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/** The changed leaves between two params objects: `with.a.b 1 -> 2`, in the order of `after`. */
export function paramChanges(before: Json | undefined, after: Json | undefined, prefix = 'with'): string[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...Object.keys(after), ...Object.keys(before).filter((k) => !(k in after))];
    return keys.flatMap((k) => paramChanges(before[k], after[k], `${prefix}.${k}`));
  }
  if (same(before, after)) return [];
  return [`${prefix} ${show(before)} -> ${show(after)}`];
}

function isObject(v: unknown): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function same(a: Json | undefined, b: Json | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJson(a) === canonicalJson(b);
}

function show(v: Json | undefined): string {
  if (v === undefined) return '(unset)';
  const s = typeof v === 'string' && /^[^\s"',;]+$/.test(v) ? v : JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** What we know of a run that must run. */
export interface Planned {
  /** Its key components. */
  readonly components: KeyComponents;
  /** Run ids of its inputs, in order (for naming changed upstreams). */
  readonly inputIds: readonly string[];
}

interface Scored {
  manifest: Manifest;
  score: number;
  paramDiffs: string[];
  inputs: InputDiff;
}

/** How a run's inputs differ from a manifest's: indexes into the new inputs, and a removed count. */
interface InputDiff {
  changed: number[];
  added: number[];
  removed: number;
}

function diffInputs(old: readonly KeyInput[], now: readonly KeyInput[]): InputDiff {
  const across = now.some((i) => i.matrix !== undefined) || old.some((i) => i.matrix !== undefined);
  if (!across) {
    const changed: number[] = [];
    for (let i = 0; i < now.length; i++) {
      if (i >= old.length || canonicalJson(old[i]) !== canonicalJson(now[i])) changed.push(i);
    }
    return { changed, added: [], removed: Math.max(0, old.length - now.length) };
  }
  // Across the matrix: match inputs by stage and matrix values, not position.
  const identity = (i: KeyInput) => canonicalJson({ stage: i.stage, matrix: i.matrix ?? {} });
  const before = new Map<string, string>(old.map((i) => [identity(i), i.content_hash]));
  const diff: InputDiff = { changed: [], added: [], removed: 0 };
  const seen = new Set<string>();
  now.forEach((input, i) => {
    const id = identity(input);
    seen.add(id);
    const hash = before.get(id);
    if (hash === undefined) diff.added.push(i);
    else if (hash !== input.content_hash) diff.changed.push(i);
  });
  diff.removed = [...before.keys()].filter((k) => !seen.has(k)).length;
  return diff;
}

/** How a run's key differs from its nearest cached entry of the same stage type. */
export interface MissDiff {
  /** The nearest entry (most key components equal, then fewest differences, then newest). */
  readonly nearest: Manifest;
  /** Its own differences: `code version 1 -> 2`, `with.lr 5 -> 1` (at most 3, then `and N more`). */
  readonly own: readonly string[];
  /** Indexes (into the run's inputs) of inputs whose content differs from the entry's. */
  readonly changed: readonly number[];
  /** Indexes of inputs the entry did not have (`across: matrix`). */
  readonly added: readonly number[];
  /** How many of the entry's inputs the run no longer has. */
  readonly removed: number;
}

/**
 * Compares a run's key components with the nearest of `candidates` (manifests of the same stage
 * type; of a large store, the nearest of its `shortlist`). @returns undefined when there is no candidate.
 */
export function diffMiss(planned: Planned, candidates: readonly Manifest[]): MissDiff | undefined {
  const c = planned.components;
  if (candidates.length === 0) return undefined;
  const paramsHash = hashJson(c.params);
  const near = shortlist({ version: c.version, paramsHash, inputsDigest: inputsDigest(c.inputs) }, candidates);
  const scored: Scored[] = near.map((m) => {
    const paramDiffs = m.components.params_hash === paramsHash ? [] : paramChanges(m.params, c.params);
    const inputs = diffInputs(m.components.inputs, c.inputs);
    const inputsEqual = inputs.changed.length + inputs.added.length + inputs.removed === 0;
    const score =
      (m.components.version === c.version ? 1 : 0) +
      (m.components.params_hash === paramsHash ? 1 : 0) +
      (inputsEqual ? 1 : 0);
    return { manifest: m, score, paramDiffs, inputs };
  });
  const inputCost = (d: InputDiff) => d.changed.length + d.added.length + d.removed;
  scored.sort(
    (a, b) =>
      b.score - a.score ||
      a.paramDiffs.length - b.paramDiffs.length ||
      inputCost(a.inputs) - inputCost(b.inputs) ||
      (b.manifest.timings?.finished ?? '').localeCompare(a.manifest.timings?.finished ?? ''),
  );
  const best = scored[0];
  const own: string[] = [];
  if (best.manifest.components.version !== c.version)
    own.push(`code version ${best.manifest.components.version} -> ${c.version}`);
  if (best.paramDiffs.length > 0) {
    own.push(
      best.paramDiffs.length <= 3
        ? best.paramDiffs.join(', ')
        : `${best.paramDiffs.slice(0, 3).join(', ')} and ${best.paramDiffs.length - 3} more params`,
    );
  } else if (best.manifest.components.params_hash !== paramsHash) {
    own.push('params changed');
  }
  return { nearest: best.manifest, own, ...best.inputs };
}

/**
 * Explains a miss against `candidates` (manifests of the same stage type), naming changed inputs
 * only by run id (see `cause.ts` for the root-cause form the CLI prints).
 * @returns e.g. `no cached entry of stage train`, `code version 1 -> 2`,
 *   `with.max_steps 500 -> 1000`, `upstream tokens changed` (parts joined with `; `).
 */
export function explainMiss(planned: Planned, candidates: readonly Manifest[]): string {
  const d = diffMiss(planned, candidates);
  if (!d) return `no cached entry of stage ${planned.components.stage}`;
  const parts = [...d.own];
  const name = (i: number) => planned.inputIds[i] ?? `#${i}`;
  if (d.changed.length > 0) parts.push(`upstream ${formatList([...new Set(d.changed.map(name))])} changed`);
  parts.push(...inputChangeParts(d, name, false));
  return parts.length > 0 ? parts.join('; ') : 'key changed';
}

/** The `new upstream ...` and `N upstream runs removed` parts of a diff (and changed ones when asked). */
export function inputChangeParts(
  d: Pick<MissDiff, 'changed' | 'added' | 'removed'>,
  name: (i: number) => string,
  withChanged: boolean,
): string[] {
  const parts: string[] = [];
  if (withChanged && d.changed.length > 0)
    parts.push(`upstream ${formatList([...new Set(d.changed.map(name))])} changed`);
  if (d.added.length > 0) parts.push(`new upstream ${formatList(d.added.map(name))}`);
  if (d.removed > 0) parts.push(`${d.removed} upstream run${d.removed === 1 ? '' : 's'} removed`);
  return parts;
}

/**
 * Changes of a run's own code version and params against the most similar manifest, for a run
 * whose key is not known yet (an upstream run must run first). Empty when some manifest has the
 * same version and params, or there is none.
 */
export function ownChanges(
  components: Pick<KeyComponents, 'stage' | 'version' | 'params'>,
  candidates: readonly Manifest[],
): string[] {
  return nearestByOwn(components, candidates)?.own ?? [];
}

/**
 * The manifest most similar to a run in code version and params (fewest differences, the newest
 * among equals; of a large store, among its `shortlist`), with those differences.
 * @returns undefined when there is no candidate.
 */
export function nearestByOwn(
  components: Pick<KeyComponents, 'stage' | 'version' | 'params'>,
  candidates: readonly Manifest[],
): { nearest: Manifest; own: string[] } | undefined {
  const paramsHash = hashJson(components.params);
  let best: { nearest: Manifest; own: string[] } | undefined;
  for (const m of shortlist({ version: components.version, paramsHash }, candidates)) {
    const parts: string[] = [];
    if (m.components.version !== components.version)
      parts.push(`code version ${m.components.version} -> ${components.version}`);
    if (m.components.params_hash !== paramsHash) {
      const diffs = paramChanges(m.params, components.params);
      parts.push(...(diffs.length > 3 ? [...diffs.slice(0, 3), `and ${diffs.length - 3} more params`] : diffs));
    }
    const newer =
      best !== undefined &&
      parts.length === best.own.length &&
      (m.timings?.finished ?? '') > (best.nearest.timings?.finished ?? '');
    if (best === undefined || parts.length < best.own.length || newer) best = { nearest: m, own: parts };
  }
  return best;
}

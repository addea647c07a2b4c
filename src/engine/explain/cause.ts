/**
 * Root causes of recomputation. A run that must run either has reasons of its own (its code
 * version or params differ from its nearest cached entry, it has no entry, its entry is corrupt)
 * or runs because an upstream run produces a different artifact. A cascade names its roots, not a
 * wall of misses: `upstream model[seed=1] changed (with.max_steps 500 -> 800)`.
 *
 * When a changed input is cached (not recomputed now), the change is traced through the store's
 * manifests: the input's current entry against the one the nearest entry was computed from, e.g.
 * `upstream kb changed (with.seed 2 -> 1)`.
 */
import { formatList, diffMiss, inputChangeParts, nearestByOwn, paramChanges } from './why.js';
import type { KeyComponents } from '../cache/hash.js';
import type { Manifest } from '../cache/manifest.js';
import type { Json } from '../stage.js';
import { canonicalJson } from '../cache/hash.js';

/** A run that must run for reasons of its own. */
export interface RootCause {
  /** Its run id (`model[seed=1]`). */
  readonly id: string;
  /** Its own reason (`with.seed 1 -> 2`, `no cached entry of stage gen`, `corrupt: x`). */
  readonly reason: string;
}

/** Why a run must run: the line shown to people, and the roots it reduces to. */
export interface Explanation {
  /** e.g. `with.factor 2 -> 3; upstream g changed (with.seed 1 -> 2)`. */
  readonly reason: string;
  /** The runs at the root of it (the run itself when it has reasons of its own). */
  readonly roots: readonly RootCause[];
  /** The nearest cached entry of the same stage type it was compared with, if any. */
  readonly nearest?: Manifest;
}

/** What `explainRun` needs to know of one input of the run. */
export interface InputState {
  /** Run id of the input. */
  readonly id: string;
  /** Matrix values of the input run. */
  readonly matrix: Readonly<Record<string, Json>>;
  /** Roots of the input when it runs (or will run) in this invocation; absent when cached. */
  readonly roots?: readonly RootCause[];
  /** Its artifact's content hash, when its artifact exists (cached or ran). */
  readonly content_hash?: string;
  /** Its manifest, when its artifact exists (cached or ran); may be read only when first used. */
  readonly manifest?: Manifest;
}

/** Everything `explainRun` looks at. */
export interface ExplainArgs {
  /** Run id. */
  readonly id: string;
  /** Stage type, code version and params of the run. */
  readonly own: Pick<KeyComponents, 'stage' | 'version' | 'params'>;
  /** Its key components, when its inputs' contents are known (else an upstream run must run first). */
  readonly components?: KeyComponents;
  /** Its inputs, in order. */
  readonly inputs: readonly InputState[];
  /** Why the store lookup missed when the entry exists but is damaged (`corrupt: x`). */
  readonly lookupReason?: string;
  /** Manifests of the same stage type in the store. */
  readonly candidates: readonly Manifest[];
  /** Finds a manifest in the store by stage type and key (for tracing cached inputs). */
  readonly find: (stage: string, key: string) => Promise<Manifest | undefined>;
  /** `plan`: nothing has run yet (`upstream g will run (...)`); `run`: upstream runs are done. */
  readonly mode: 'plan' | 'run';
}

const DIFF_PREFIX = /^(no cached entry|corrupt)/;

/**
 * Formats roots grouped by reason, in order of first appearance:
 * `upstream a, b changed (with.x 1 -> 2)`; roots without an entry of their own read
 * `upstream a will run (no cached entry of stage gen)` (`ran` in `run` mode). At most 3 groups.
 */
export function formatRoots(roots: readonly RootCause[], mode: 'plan' | 'run'): string[] {
  const groups = new Map<string, string[]>();
  for (const r of roots) {
    const ids = groups.get(r.reason) ?? [];
    if (!ids.includes(r.id)) ids.push(r.id);
    groups.set(r.reason, ids);
  }
  const parts = [...groups].map(([reason, ids]) => {
    const verb = DIFF_PREFIX.test(reason) ? (mode === 'plan' ? 'will run' : 'ran') : 'changed';
    return `upstream ${formatList(ids)} ${verb} (${reason})`;
  });
  return parts.length > 3 ? [...parts.slice(0, 3), `and ${parts.length - 3} more upstream causes`] : parts;
}

/** Removes repeated roots (same id and reason), keeping the first. */
export function uniqueRoots(roots: readonly RootCause[]): RootCause[] {
  const seen = new Set<string>();
  return roots.filter((r) => {
    const k = `${r.id}\n${r.reason}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Explains why a run must run, naming root causes (see the module comment).
 * @throws Error only when `find` throws.
 */
export async function explainRun(a: ExplainArgs): Promise<Explanation> {
  const self = (reason: string): RootCause => ({ id: a.id, reason });
  if (a.lookupReason) return { reason: a.lookupReason, roots: [self(a.lookupReason)] };
  if (!a.components) {
    // An upstream run must run first: the key is unknown; compare own params, name the roots.
    const near = nearestByOwn(a.own, a.candidates);
    const own = near?.own ?? [];
    const upstream = uniqueRoots(a.inputs.flatMap((i) => i.roots ?? []));
    const reason = [...own, ...formatRoots(upstream, a.mode)].join('; ') || 'upstream changed';
    const roots = uniqueRoots([...upstream, ...(own.length > 0 ? [self(own.join('; '))] : [])]);
    return { reason, roots, ...(near ? { nearest: near.nearest } : {}) };
  }
  const d = diffMiss({ components: a.components, inputIds: a.inputs.map((i) => i.id) }, a.candidates);
  if (!d) {
    const reason = `no cached entry of stage ${a.own.stage}`;
    return { reason, roots: [self(reason)] };
  }
  const across = a.components.inputs.some((i) => i.matrix !== undefined);
  const upstream: RootCause[] = [];
  const traced: { id: string; detail: string }[] = [];
  const plain: string[] = [];
  for (const i of d.changed) {
    const input = a.inputs[i];
    if (input.roots && input.roots.length > 0) {
      upstream.push(...input.roots);
      continue;
    }
    const oldKey = previousInputKey(d.nearest, i, across, input);
    const detail = input.manifest && oldKey ? await traceChange(input.manifest, oldKey, a.find, 0) : undefined;
    if (detail) traced.push({ id: input.id, detail });
    else if (!plain.includes(input.id)) plain.push(input.id);
  }
  const name = (i: number) => a.inputs[i]?.id ?? `#${i}`;
  const rest = [
    ...(plain.length > 0 ? [`upstream ${formatList(plain)} changed`] : []),
    ...inputChangeParts(d, name, false),
  ];
  // As a line: `upstream g changed (with.seed 2 -> 1)`; as a root named by a dependent, shorter:
  // `upstream s changed (upstream g: with.seed 2 -> 1)`.
  const selfParts = [...d.own, ...traced.map((t) => `upstream ${t.id}: ${t.detail}`), ...rest];
  const ups = uniqueRoots(upstream);
  const parts = [
    ...d.own,
    ...formatRoots(ups, a.mode),
    ...traced.map((t) => `upstream ${t.id} changed (${t.detail})`),
    ...rest,
  ];
  const reason = parts.length > 0 ? parts.join('; ') : 'key changed';
  const roots = uniqueRoots([
    ...ups,
    ...(selfParts.length > 0 || ups.length === 0 ? [self(selfParts.join('; ') || reason)] : []),
  ]);
  return { reason, roots, nearest: d.nearest };
}

/** The key of the entry the nearest manifest used in place of input `i`. */
function previousInputKey(nearest: Manifest, i: number, across: boolean, input: InputState): string | undefined {
  if (!across) return nearest.inputs[i]?.key;
  const id = canonicalJson(input.matrix);
  const stage = input.manifest?.stage;
  return nearest.inputs.find((x) => (stage === undefined || x.stage === stage) && canonicalJson(x.matrix) === id)?.key;
}

/**
 * What differs between a current entry and an earlier one of the same stage: code version or
 * params, else (recursively, a few levels up) an upstream entry's. @returns undefined when unknown.
 */
async function traceChange(
  now: Manifest,
  oldKey: string,
  find: ExplainArgs['find'],
  depth: number,
): Promise<string | undefined> {
  const old = now.key === oldKey ? undefined : await find(now.stage, oldKey);
  if (!old) return undefined;
  const parts: string[] = [];
  if (old.components.version !== now.components.version)
    parts.push(`code version ${old.components.version} -> ${now.components.version}`);
  if (old.components.params_hash !== now.components.params_hash) {
    const diffs = paramChanges(old.params, now.params);
    parts.push(...(diffs.length > 3 ? [...diffs.slice(0, 3), `and ${diffs.length - 3} more params`] : diffs));
  }
  if (parts.length > 0) return parts.join(', ');
  let inputsDiffer = false;
  for (let j = 0; j < now.inputs.length; j++) {
    const cur = now.inputs[j];
    const prev = old.inputs[j];
    if (!prev || prev.content_hash === cur.content_hash) continue;
    inputsDiffer = true;
    if (depth >= 4) continue;
    const upNow = await find(cur.stage, cur.key);
    const deeper = upNow ? await traceChange(upNow, prev.key, find, depth + 1) : undefined;
    if (deeper) return `upstream ${cur.id}: ${deeper}`;
  }
  if (!inputsDiffer && now.inputs.length === old.inputs.length) return 'same params and inputs, different output';
  return undefined;
}

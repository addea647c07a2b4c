/**
 * `--set` overrides, applied to the parsed pipeline before validation (the syntax, after Hydra's,
 * is parsed by `override-syntax.ts`):
 *
 * - `<stage>.with.<path>=<value>`, `vars.<name>=<value>`, `matrix.<axis>=[...]`: set a value. A
 *   mapping is deep-merged into the mapping already there (`--set model.with.optimizer={lr: 0.01}`
 *   keeps the file's `batch_size`); anything else replaces it. Missing mappings on the way are
 *   created.
 * - `<stage>.with.<path>=a,b` (or `choice(a,b)`, `range(start,stop[,step])`): a sweep. The value
 *   becomes `${{ matrix.<axis> }}` and the values a new matrix axis, named after the path's last
 *   field (`lr`), or more of the path when that name is taken (`optimizer_lr`, `model_optimizer_lr`);
 *   so only that stage and what follows it run once per value. `matrix.<axis>=a,b` gives an
 *   axis its values.
 * - `~<stage>.with.<path>` (or `~vars.<name>`, `~matrix.<axis>`) deletes a key (the stage's
 *   default applies again); `~<key>=<value>` deletes it only when it holds that value.
 */
import { isDeepStrictEqual } from 'node:util';
import { InputError, formatPath } from '../errors.js';
import type { Issue, JsonPath } from '../errors.js';
import type { Json } from '../stage.js';
import type { LoadedPipeline, Locate } from './load.js';
import { parseOverride } from './override-syntax.js';
import { getOwn, setOwn } from './safe-object.js';
import type { OverrideSyntax } from './override-syntax.js';

/** One applied `--set` argument. */
export interface Override {
  /** The argument as given (`model.with.max_steps=500`). */
  readonly arg: string;
  /** Paths in the pipeline document it wrote (`['stages', 'model', 'with', 'max_steps']`). */
  readonly paths: readonly (readonly string[])[];
}

/** A matrix axis name (the pipeline schema's rule for `matrix` keys). */
const AXIS_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * Applies `--set` arguments to a loaded pipeline. Returns a new pipeline whose `locate` names the
 * `--set` argument for any path it wrote (or below it).
 * @throws InputError naming `--set <arg>` for a malformed argument, an unknown stage, a path into
 *   something that is not an object, a value that is not valid YAML, a sweep that is not a list
 *   of distinct scalars, or a key to delete that is not there.
 */
export function applyOverrides(loaded: LoadedPipeline, args: readonly string[]): LoadedPipeline {
  if (args.length === 0) return loaded;
  const issues: Issue[] = [];
  const data = structuredClone(loaded.data) as unknown;
  const applied: Override[] = [];
  const sweepAxes = new Map<string, string>();
  for (const arg of args) {
    const fail = (message: string) => issues.push({ where: `--set ${arg}`, path: '', message });
    const syntax = parseOverride(arg);
    if ('problem' in syntax) {
      fail(syntax.problem);
      continue;
    }
    const target = documentPath(data, syntax.key);
    if ('problem' in target) {
      fail(target.problem);
      continue;
    }
    const done = applyOne(data, target.path, syntax, sweepAxes);
    if ('problem' in done) fail(done.problem);
    else applied.push({ arg, paths: done.paths });
  }
  if (issues.length > 0) throw new InputError(issues);
  const locate: Locate = (p: JsonPath, options) => {
    for (let i = applied.length - 1; i >= 0; i--) {
      const o = applied[i];
      if (o.paths.some((path) => path.every((seg, j) => j < p.length && String(p[j]) === seg))) return `--set ${o.arg}`;
      // A field the argument created on its way (`a.with.nope.x=1` creates `nope`).
      const created = o.paths.some(
        (path) => p.length < path.length && p.every((seg, j) => String(seg) === path[j]) && !inDocument(loaded.data, p),
      );
      if (created) return `--set ${o.arg}`;
    }
    return loaded.locate(p, options);
  };
  return { file: loaded.file, data, locate };
}

/** True when `path` names an existing (own) field or item of `root`. */
function inDocument(root: unknown, path: JsonPath): boolean {
  let node = root;
  for (const seg of path) {
    if (node === null || typeof node !== 'object') return false;
    node = getOwn(node, String(seg));
    if (node === undefined) return false;
  }
  return true;
}

/** Applies one parsed override at `path`; returns the paths it wrote, or a problem. */
function applyOne(
  data: unknown,
  path: readonly string[],
  syntax: OverrideSyntax,
  sweepAxes: Map<string, string>,
): { paths: string[][] } | { problem: string } {
  const problem = (p: string | undefined) => (p === undefined ? { paths: [[...path]] } : { problem: p });
  if (syntax.kind === 'delete') return problem(deleteIn(data, path, syntax.value));
  if (syntax.kind === 'set') return problem(mergeIn(data, path, syntax.value));
  if (path[0] === 'matrix') return problem(mergeIn(data, path, [...syntax.values]));
  if (path[0] === 'vars') {
    return {
      problem:
        'vars cannot be swept: sweep the fields that use it (<stage>.with.<path>=a,b) or a matrix axis (matrix.<axis>=a,b)',
    };
  }
  const key = path.join('.');
  const axis = sweepAxes.get(key) ?? newAxisName(data, path);
  const set = mergeIn(data, path, `\${{ matrix.${axis} }}`);
  if (set !== undefined) return { problem: set };
  const root = data as Record<string, unknown>;
  if (!isObject(root.matrix)) root.matrix = {};
  setOwn(root.matrix as Record<string, unknown>, axis, [...syntax.values]);
  sweepAxes.set(key, axis);
  return { paths: [[...path], ['matrix', axis]] };
}

/**
 * The document path of an override key: `vars.<name>` and `matrix.<axis>` as they are,
 * `<stage>.with.<path>` under `stages`.
 */
function documentPath(data: unknown, key: string): { path: string[] } | { problem: string } {
  const parts = key.split('.');
  if (parts.some((p) => p === '')) return { problem: `empty path segment in "${key}"` };
  if (parts[0] === 'vars' || parts[0] === 'matrix') {
    return parts.length === 2 ? { path: parts } : { problem: `expected ${parts[0]}.<name>=<value>` };
  }
  const stages = isObject(data) && isObject(data.stages) ? data.stages : {};
  if (!Object.prototype.hasOwnProperty.call(stages, parts[0])) {
    const known = Object.keys(stages);
    return { problem: `unknown stage "${parts[0]}" (stages: ${known.join(', ') || 'none'}; or vars.<name>)` };
  }
  if (parts[1] !== 'with' || parts.length < 3) return { problem: `only <stage>.with.<path> can be set (got "${key}")` };
  return { path: ['stages', ...parts] };
}

/**
 * The name of a new sweep axis for `path` (`['stages', stage, 'with', ...fields]`): the last field,
 * else the fields joined by `_`, else the stage and the fields; `_2`, `_3`... when all are taken.
 */
function newAxisName(data: unknown, path: readonly string[]): string {
  const matrix = isObject(data) && isObject(data.matrix) ? data.matrix : {};
  const taken = (name: string) => Object.prototype.hasOwnProperty.call(matrix, name);
  const fields = path.slice(3);
  const candidates = [fields[fields.length - 1], fields.join('_'), [path[1], ...fields].join('_')];
  for (const name of candidates) if (AXIS_NAME.test(name) && !taken(name)) return name;
  const base = candidates[2].replace(/[^A-Za-z0-9_-]/g, '_');
  let n = 2;
  while (taken(`${base}_${n}`)) n++;
  return `${base}_${n}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The field path as people read it in messages (`model.with.optimizer`, without `stages.`). */
function shown(path: readonly string[], upTo: number): string {
  return formatPath(path.slice(0, upTo).filter((_, j) => !(path[0] === 'stages' && j === 0)));
}

/**
 * The container that holds `path`'s last segment, creating missing mappings on the way when
 * `create`; a problem when something on the way is not an object or a list index is out of range.
 */
function parentOf(
  root: unknown,
  path: readonly string[],
  create: boolean,
): { node: Record<string, unknown> | unknown[] } | { problem: string } {
  if (!isObject(root)) return { problem: 'the pipeline file is not a mapping' };
  let node: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i];
    let next: unknown;
    if (Array.isArray(node)) {
      const idx = Number(seg);
      if (!Number.isInteger(idx) || idx < 0 || idx >= node.length)
        return { problem: `${shown(path, i + 1)}: no such list item` };
      next = node[idx];
    } else {
      next = getOwn(node, seg);
      if ((next === undefined || next === null) && create) {
        next = {};
        setOwn(node, seg, next);
      }
    }
    if (next === null || typeof next !== 'object') {
      if (!create && next === undefined) return { problem: `${shown(path, i + 1)} is not there, nothing to delete` };
      return {
        problem: `${shown(path, i + 1)} is not an object (it is ${JSON.stringify(next)}), cannot set a field inside it`,
      };
    }
    node = next as Record<string, unknown> | unknown[];
  }
  return { node };
}

/**
 * Sets `path` in `root` to `value`, deep-merging a mapping into a mapping already there; returns a
 * problem description or undefined.
 */
function mergeIn(root: unknown, path: readonly string[], value: unknown): string | undefined {
  const parent = parentOf(root, path, true);
  if ('problem' in parent) return parent.problem;
  const { node } = parent;
  const last = path[path.length - 1];
  if (Array.isArray(node)) {
    const idx = Number(last);
    if (!Number.isInteger(idx) || idx < 0 || idx >= node.length) return `${formatPath(path)}: no such list item`;
    node[idx] = deepMerge(node[idx], value);
  } else {
    setOwn(node, last, deepMerge(getOwn(node, last), value));
  }
  return undefined;
}

/** `value` merged into `base`: mappings key by key (recursively), anything else replaced. */
function deepMerge(base: unknown, value: unknown): unknown {
  if (!isObject(base) || !isObject(value)) return value;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(value)) setOwn(out, k, deepMerge(getOwn(out, k), v));
  return out;
}

/**
 * Deletes `path` from `root` (only when it holds `expected`, if given); returns a problem
 * description or undefined.
 */
function deleteIn(root: unknown, path: readonly string[], expected?: unknown): string | undefined {
  const parent = parentOf(root, path, false);
  if ('problem' in parent) return parent.problem;
  const { node } = parent;
  const last = path[path.length - 1];
  if (Array.isArray(node) || !Object.prototype.hasOwnProperty.call(node, last)) {
    return `${shown(path, path.length)} is not there, nothing to delete`;
  }
  if (expected !== undefined && !isDeepStrictEqual(node[last] as Json, expected)) {
    return `${shown(path, path.length)} is ${JSON.stringify(node[last])}, not ${JSON.stringify(expected)}: not deleted`;
  }
  delete node[last];
  return undefined;
}

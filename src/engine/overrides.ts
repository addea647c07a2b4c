/**
 * `--set` overrides: `--set <stage>.with.<path>=<value>`, `--set vars.<name>=<value>` and
 * `--set matrix.<name>=[...]`, applied to the parsed pipeline before validation. Values are parsed
 * as YAML (`500` is a number, `gpt2` a string, `[0, 1]` a list).
 */
import { parse } from 'yaml';
import { InputError, formatPath } from './errors.js';
import type { Issue, JsonPath } from './errors.js';
import type { LoadedPipeline, Locate } from './load.js';
import { getOwn, setOwn } from './safe-object.js';

/** One parsed `--set` argument. */
export interface Override {
  /** The argument as given (`model.with.max_steps=500`). */
  readonly arg: string;
  /** Path in the pipeline document (`['stages', 'model', 'with', 'max_steps']`). */
  readonly path: readonly string[];
  /** Parsed value. */
  readonly value: unknown;
}

/**
 * Applies `--set` arguments to a loaded pipeline. Returns a new pipeline whose `locate` names the
 * `--set` argument for any path it set (or below it).
 * @throws InputError naming `--set <arg>` for a malformed argument, an unknown stage, a path into
 *   something that is not an object, or a value that is not valid YAML.
 */
export function applyOverrides(loaded: LoadedPipeline, args: readonly string[]): LoadedPipeline {
  if (args.length === 0) return loaded;
  const issues: Issue[] = [];
  const data = structuredClone(loaded.data) as unknown;
  const applied: Override[] = [];
  for (const arg of args) {
    const fail = (message: string) => issues.push({ where: `--set ${arg}`, path: '', message });
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      fail('expected <stage>.with.<path>=<value> or vars.<name>=<value>');
      continue;
    }
    const key = arg.slice(0, eq);
    let value: unknown;
    try {
      value = parse(arg.slice(eq + 1));
    } catch (err) {
      fail(`value is not valid YAML (${(err as Error).message.split('\n')[0]})`);
      continue;
    }
    const parts = key.split('.');
    if (parts.some((p) => p === '')) {
      fail(`empty path segment in "${key}"`);
      continue;
    }
    let path: string[];
    if (parts[0] === 'vars' || parts[0] === 'matrix') {
      if (parts.length !== 2) {
        fail(`expected ${parts[0]}.<name>=<value>`);
        continue;
      }
      path = parts;
    } else {
      const stages = isObject(data) && isObject(data.stages) ? data.stages : {};
      if (!Object.prototype.hasOwnProperty.call(stages, parts[0])) {
        const known = Object.keys(stages);
        fail(`unknown stage "${parts[0]}" (stages: ${known.join(', ') || 'none'}; or vars.<name>)`);
        continue;
      }
      if (parts[1] !== 'with' || parts.length < 3) {
        fail(`only <stage>.with.<path> can be set (got "${key}")`);
        continue;
      }
      path = ['stages', ...parts];
    }
    const problem = setIn(data, path, value);
    if (problem) fail(problem);
    else applied.push({ arg, path, value });
  }
  if (issues.length > 0) throw new InputError(issues);
  const locate: Locate = (p: JsonPath, options) => {
    for (let i = applied.length - 1; i >= 0; i--) {
      const o = applied[i];
      if (o.path.every((seg, j) => j < p.length && String(p[j]) === seg)) return `--set ${o.arg}`;
      // A field the argument created on its way (`a.with.nope.x=1` creates `nope`).
      const created = p.length < o.path.length && p.every((seg, j) => String(seg) === o.path[j]) && !inDocument(loaded.data, p);
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

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Sets `path` in `root`, creating missing objects; returns a problem description or undefined. */
function setIn(root: unknown, path: readonly string[], value: unknown): string | undefined {
  if (!isObject(root)) return 'the pipeline file is not a mapping';
  let node: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i];
    const shown = formatPath(path.slice(0, i + 1).filter((_, j) => !(path[0] === 'stages' && j === 0)));
    let next: unknown;
    if (Array.isArray(node)) {
      const idx = Number(seg);
      if (!Number.isInteger(idx) || idx < 0 || idx >= node.length) return `${shown}: no such list item`;
      next = node[idx];
    } else {
      next = getOwn(node, seg);
      if (next === undefined || next === null) {
        next = {};
        setOwn(node, seg, next);
      }
    }
    if (next === null || typeof next !== 'object') {
      return `${shown} is not an object (it is ${JSON.stringify(next)}), cannot set a field inside it`;
    }
    node = next as Record<string, unknown> | unknown[];
  }
  const last = path[path.length - 1];
  if (Array.isArray(node)) {
    const idx = Number(last);
    if (!Number.isInteger(idx) || idx < 0 || idx >= node.length) return `${formatPath(path)}: no such list item`;
    node[idx] = value;
  } else {
    setOwn(node, last, value);
  }
  return undefined;
}

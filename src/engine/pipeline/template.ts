/**
 * `${{ matrix.x }}` and `${{ vars.x }}`: the only templating in a pipeline's `with:` values.
 *
 * A string that is exactly one template takes the value with its type (`"${{ matrix.n }}"` -> 400);
 * templates inside a longer string are interpolated as text.
 */
import type { JsonPath } from '../errors.js';
import type { Json } from '../stage.js';
import { setOwn } from './safe-object.js';

const TEMPLATE = /\$\{\{\s*(.*?)\s*\}\}/g;
const EXACT = /^\$\{\{\s*(.*?)\s*\}\}$/;
const REFERENCE = /^(matrix|vars)\.([A-Za-z_][A-Za-z0-9_-]*)$/;

/** Names a template may refer to. */
export interface TemplateScope {
  /** Matrix variable names (in matrix order). */
  readonly matrix: readonly string[];
  /** Names of `vars`. */
  readonly vars: readonly string[];
}

/** A problem in a template, at `path` (relative to the scanned value). */
export interface TemplateProblem {
  readonly path: JsonPath;
  readonly message: string;
}

/** What `scanTemplates` found. */
export interface TemplateScan {
  /** Matrix variables referenced, as a set. */
  readonly matrix: Set<string>;
  /** Problems: unknown names, unsupported expressions. */
  readonly problems: TemplateProblem[];
}

/** Walks `value` and lists the matrix variables its templates use, and any bad template. */
export function scanTemplates(value: unknown, scope: TemplateScope): TemplateScan {
  const matrix = new Set<string>();
  const problems: TemplateProblem[] = [];
  walk(value, [], (s, path) => {
    for (const m of s.matchAll(TEMPLATE)) {
      const ref = REFERENCE.exec(m[1]);
      if (!ref) {
        problems.push({
          path,
          message: `unsupported template "${m[0]}" (only \${{ matrix.<name> }} and \${{ vars.<name> }})`,
        });
        continue;
      }
      const [, kind, name] = ref;
      const known = kind === 'matrix' ? scope.matrix : scope.vars;
      if (!known.includes(name)) {
        const list = known.length > 0 ? known.join(', ') : 'none defined';
        problems.push({ path, message: `unknown ${kind} variable "${name}" (${kind}: ${list})` });
      } else if (kind === 'matrix') {
        matrix.add(name);
      }
    }
  });
  return { matrix, problems };
}

/**
 * Replaces every template in `value` (deep copy; `value` is not changed). Call after a clean
 * `scanTemplates`. Unknown names are left as written.
 */
export function renderTemplates(
  value: Json,
  matrix: Readonly<Record<string, Json>>,
  vars: Readonly<Record<string, Json>>,
): Json {
  const lookup = (expr: string): Json | undefined => {
    const ref = REFERENCE.exec(expr);
    if (!ref) return undefined;
    const source = ref[1] === 'matrix' ? matrix : vars;
    return Object.prototype.hasOwnProperty.call(source, ref[2]) ? source[ref[2]] : undefined;
  };
  const render = (v: Json): Json => {
    if (typeof v === 'string') {
      const exact = EXACT.exec(v);
      if (exact && !exact[1].includes('}}')) {
        const found = lookup(exact[1]);
        return found === undefined ? v : structuredClone(found);
      }
      return v.replace(TEMPLATE, (whole, expr: string) => {
        const found = lookup(expr);
        if (found === undefined) return whole;
        return typeof found === 'object' && found !== null ? JSON.stringify(found) : String(found);
      });
    }
    if (Array.isArray(v)) return v.map(render);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, Json> = {};
      for (const [k, x] of Object.entries(v)) setOwn(out, k, render(x));
      return out;
    }
    return v;
  };
  return render(value);
}

/** True when `value` contains any `${{ ... }}` template. */
export function hasTemplates(value: unknown): boolean {
  let found = false;
  walk(value, [], (s) => {
    if (s.includes('${{')) found = true;
  });
  return found;
}

function walk(value: unknown, path: (string | number)[], visit: (s: string, path: JsonPath) => void): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i], visit));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) walk(v, [...path, k], visit);
  }
}

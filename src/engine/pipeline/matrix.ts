/**
 * The sweep matrix: axes, `include` and `exclude`, expanded into the list of combinations with
 * GitHub Actions' semantics (docs.github.com, "Running variations of jobs in a workflow",
 * sections "Expanding or adding matrix configurations" and "Excluding matrix configurations"):
 *
 * 1. the cartesian product of the axes (first axis slowest), no combination when there is no axis;
 * 2. `exclude` removes every combination that matches all the key-value pairs of an entry (an
 *    entry may name only some axes: a partial match removes all the combinations it matches);
 * 3. each `include` entry, in order, is added to every combination of step 2 whose *original*
 *    (axis) values it does not overwrite: its keys are added, and values added by an earlier
 *    entry may be overwritten; an entry that fits no combination becomes a combination of its own.
 *
 * Entries of `include` never extend combinations created by other `include` entries. A
 * combination is one full run of the pipeline; a stage runs once per distinct combination of the
 * variables it depends on (see `expand.ts`).
 */
import type { JsonPath } from '../errors.js';
import type { Json } from '../stage.js';
import { setOwn } from './safe-object.js';

/** The matrix axes: variables and their values, in the order written. */
export type Matrix = readonly (readonly [name: string, values: readonly Json[]])[];

/** Values of the matrix variables for one full run of the pipeline. */
export type Combination = Readonly<Record<string, Json>>;

/** A `matrix:` mapping as written: axes, plus the reserved `include` and `exclude` lists. */
export interface RawMatrix {
  readonly include?: readonly Record<string, Json>[];
  readonly exclude?: readonly Record<string, Json>[];
  readonly [axis: string]: readonly Json[] | readonly Record<string, Json>[] | undefined;
}

/** The expanded sweep. */
export interface Sweep {
  /** Every matrix variable: the axes in the order written, then keys only `include` adds (first seen first). */
  readonly names: readonly string[];
  /** The combinations, in order: the product (minus `exclude`), then the combinations `include` adds. */
  readonly combos: readonly Combination[];
  /** Where each combination comes from: `-1` the product, `i` the `include` entry `i` that created it. */
  readonly origins: readonly number[];
  /** Where each variable is written: `['matrix', axis]` or `['matrix', 'include', i, key]` (first entry). */
  readonly sources: ReadonlyMap<string, JsonPath>;
}

/** A problem of the matrix, at a path of the pipeline document. */
export interface MatrixProblem {
  readonly path: JsonPath;
  readonly message: string;
}

/**
 * The sweep of a plain list of axes (no `include`, no `exclude`): their cartesian product. With no
 * axis it is the one empty combination (a pipeline without a sweep runs once).
 */
export function productSweep(axes: Matrix): Sweep {
  let combos: Record<string, Json>[] = [{}];
  for (const [name, values] of axes) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [name]: v })));
  const sources = new Map<string, JsonPath>(axes.map(([n]) => [n, ['matrix', n]]));
  return { names: axes.map(([n]) => n), combos, origins: combos.map(() => -1), sources };
}

/** True when `combo` has every key-value pair of `entry`. */
function matches(combo: Combination, entry: Readonly<Record<string, Json>>): boolean {
  return Object.entries(entry).every(([k, v]) => k in combo && combo[k] === v);
}

/**
 * Expands a `matrix:` mapping (already checked against the pipeline schema) into its sweep.
 * Problems: an `exclude` key that is not an axis (as GitHub Actions), and a matrix whose every
 * combination is excluded.
 */
export function expandMatrix(raw: RawMatrix | undefined): { sweep: Sweep; problems: MatrixProblem[] } {
  const problems: MatrixProblem[] = [];
  const axes: [string, Json[]][] = [];
  for (const [name, values] of Object.entries(raw ?? {})) {
    if (name !== 'include' && name !== 'exclude') axes.push([name, values as Json[]]);
  }
  const product = productSweep(axes);
  const axisNames = new Set(product.names);
  const exclude = raw?.exclude ?? [];
  exclude.forEach((entry, i) => {
    for (const key of Object.keys(entry)) {
      if (!axisNames.has(key)) {
        const list = product.names.join(', ') || 'none';
        problems.push({
          path: ['matrix', 'exclude', i, key],
          message: `"${key}" is not a matrix axis (axes: ${list})`,
        });
      }
    }
  });
  // With no axis, `include` entries are the combinations (GitHub Actions: an include-only matrix).
  const kept = axes.length === 0 ? [] : product.combos.filter((c) => !exclude.some((e) => matches(c, e)));
  if (axes.length > 0 && kept.length === 0 && (raw?.include ?? []).length === 0) {
    problems.push({ path: ['matrix', 'exclude'], message: 'every combination of the matrix is excluded' });
  }
  const originals = kept.map((c) => ({ ...c }));
  const added: Record<string, Json>[] = [];
  const origins: number[] = originals.map(() => -1);
  const sources = new Map(product.sources);
  const names = [...product.names];
  (raw?.include ?? []).forEach((entry, i) => {
    for (const key of Object.keys(entry)) {
      if (!sources.has(key)) {
        sources.set(key, ['matrix', 'include', i, key]);
        names.push(key);
      }
    }
    let fitted = false;
    kept.forEach((original, j) => {
      if (Object.entries(entry).every(([k, v]) => !axisNames.has(k) || original[k] === v)) {
        for (const [k, v] of Object.entries(entry)) setOwn(originals[j], k, v); // a key `__proto__` stays a field
        fitted = true;
      }
    });
    if (!fitted) {
      added.push({ ...entry });
      origins.push(i);
    }
  });
  if (axes.length === 0 && added.length === 0) return { sweep: product, problems };
  return { sweep: { names, combos: [...originals, ...added], origins, sources }, problems };
}

/**
 * Checks the sweep against the variables the stages use (`used`: every variable some stage's
 * `with:` refers to): a variable no stage uses is an error (it would change nothing), and so is a
 * combination that gives no value to a variable a stage uses.
 */
export function checkSweep(sweep: Sweep, used: ReadonlySet<string>): MatrixProblem[] {
  const problems: MatrixProblem[] = [];
  for (const name of sweep.names) {
    if (!used.has(name)) {
      problems.push({
        path: sweep.sources.get(name) ?? ['matrix', name],
        message: `matrix variable "${name}" is not used by any stage (refer to it with \${{ matrix.${name} }})`,
      });
    }
  }
  const reported = new Set<string>();
  sweep.combos.forEach((combo, i) => {
    const missing = [...used].filter((n) => !(n in combo));
    if (missing.length === 0) return;
    const origin = sweep.origins[i];
    const path: JsonPath = origin >= 0 ? ['matrix', 'include', origin] : ['matrix'];
    const message =
      `the combination ${JSON.stringify(combo)} gives no value to ${missing.map((m) => `"${m}"`).join(', ')}, ` +
      'used by the stages (give it in the include entry, or add the axis)';
    if (!reported.has(message)) problems.push({ path, message });
    reported.add(message);
  });
  return problems;
}

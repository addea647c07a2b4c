/**
 * Expands a pipeline's stages into stage runs: templating and the sweep matrix.
 *
 * A stage depends on a matrix variable when its `with:` refers to it or any upstream stage depends
 * on it; it gets one run per combination of the variables it depends on, so a stage that uses none
 * is one run shared by the whole sweep. A stage with `across: matrix` is one run whose inputs are
 * the upstream runs of every matrix combination, in matrix order.
 */
import type { Json, StageDefinition } from '../stage.js';
import { productSweep } from './matrix.js';
import type { Matrix, Sweep } from './matrix.js';
import { RunLimitError } from './limits.js';
import { setOwn } from './safe-object.js';
import { renderTemplates } from './template.js';

export type { Matrix } from './matrix.js';

/** A stage as written in the pipeline (after `--set`), its `uses` resolved. */
export interface StageSpec {
  /** Stage id: its name in the file (`kb`). */
  readonly id: string;
  /** Stage type definition named by `uses`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly stage: StageDefinition<any>;
  /** Ids of the stages it needs, in order. */
  readonly needs: readonly string[];
  /** Its `with:` as written (templates not yet rendered); `{}` when absent. */
  readonly with: Record<string, Json>;
  /** True for `across: matrix`. */
  readonly across: boolean;
  /** Matrix variables its `with:` refers to directly. */
  readonly uses: ReadonlySet<string>;
}

/** One run of a stage: the stage for one combination of the matrix variables it depends on. */
export interface StageRun {
  /** Run id: `model[entities=400,seed=1]`, or the stage id when it depends on no variable. */
  readonly id: string;
  /** Stage id in the file (`model`). */
  readonly stageId: string;
  /** Stage type definition. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly stage: StageDefinition<any>;
  /** Values of the matrix variables this run depends on (matrix order). */
  readonly matrix: Readonly<Record<string, Json>>;
  /** Params: templates rendered; after validation, defaults filled in. */
  params: Record<string, Json>;
  /** Upstream runs whose outputs it reads, in `needs:` order (across: every run, matrix order). */
  readonly inputs: readonly StageRun[];
  /** True for a stage with `across: matrix`. */
  readonly across: boolean;
}

/** Run id for a stage and the matrix values it depends on: `model[entities=400,seed=1]`. */
export function runId(stageId: string, matrix: Readonly<Record<string, Json>>): string {
  return `${stageId}${matrixSuffix(matrix)}`;
}

/** The `[entities=400,seed=1]` of a run id; empty for no values. */
function matrixSuffix(matrix: Readonly<Record<string, Json>>): string {
  const parts = Object.entries(matrix).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.length === 0 ? '' : `[${parts.join(',')}]`;
}

/**
 * The distinct combinations of the variables `names` over the sweep's combinations (a plain list
 * of axes is its cartesian product, first axis slowest), in order of first appearance, as value
 * records in matrix order.
 */
export function combinations(matrix: Matrix | Sweep, names: ReadonlySet<string>): Record<string, Json>[] {
  const sweep = toSweep(matrix);
  const seen = new Map<string, Record<string, Json>>();
  for (const combo of sweep.combos) {
    const out: Record<string, Json> = {};
    for (const n of sweep.names) if (names.has(n) && Object.hasOwn(combo, n)) setOwn(out, n, combo[n]);
    const id = JSON.stringify(out);
    if (!seen.has(id)) seen.set(id, out);
  }
  return [...seen.values()];
}

/**
 * `combinations` over `sweep`, computed once per set of variables: stages that depend on the same
 * variables share their combinations (read-only records).
 */
function sharedCombinations(sweep: Sweep): (names: ReadonlySet<string>) => Record<string, Json>[] {
  const combosOf = new Map<string, Record<string, Json>[]>();
  return (names) => {
    const id = JSON.stringify(sweep.names.filter((n) => names.has(n)));
    let combos = combosOf.get(id);
    if (!combos) combosOf.set(id, (combos = combinations(sweep, names)));
    return combos;
  };
}

/**
 * `runId` for the combination records of `sharedCombinations` (never changed, shared by stages):
 * each record's `[...]` is made once.
 */
function sharedRunIds(): (stageId: string, combo: Readonly<Record<string, Json>>) => string {
  const suffixes = new Map<object, string>();
  return (stageId, combo) => {
    let suffix = suffixes.get(combo);
    if (suffix === undefined) suffixes.set(combo, (suffix = matrixSuffix(combo)));
    return `${stageId}${suffix}`;
  };
}

function toSweep(matrix: Matrix | Sweep): Sweep {
  return Array.isArray(matrix) ? productSweep(matrix as Matrix) : (matrix as Sweep);
}

/**
 * Expands stages (given in dependency order) into runs, in dependency order and, within a stage,
 * matrix order. Params are rendered but not validated. Assumes templates were checked
 * (`scanTemplates`) and `needs` point at earlier stages.
 * @param maxRuns most runs in all (`limits.ts`), checked before a stage's runs are built.
 * @throws RunLimitError when the runs would be more than `maxRuns`.
 */
export function expandRuns(
  stages: readonly StageSpec[],
  matrix: Matrix | Sweep,
  vars: Readonly<Record<string, Json>>,
  maxRuns = Infinity,
): StageRun[] {
  const sweep = toSweep(matrix);
  const deps = new Map<string, Set<string>>();
  const runsOf = new Map<string, Map<string, StageRun>>();
  const all = new Set(sweep.names);
  const runs: StageRun[] = [];
  const combinationsOf = sharedCombinations(sweep);
  const idOf = sharedRunIds();
  const project = (combo: Readonly<Record<string, Json>>, names: ReadonlySet<string>): Record<string, Json> => {
    const out: Record<string, Json> = {};
    for (const n of sweep.names) if (names.has(n) && Object.hasOwn(combo, n)) setOwn(out, n, combo[n]);
    return out;
  };
  const upstreamRun = (needId: string, combo: Readonly<Record<string, Json>>): StageRun => {
    const id = runId(needId, project(combo, deps.get(needId) ?? new Set()));
    const run = runsOf.get(needId)?.get(id);
    if (!run) throw new Error(`internal: no run ${id}`);
    return run;
  };
  for (const spec of stages) {
    const mine = new Set<string>();
    if (!spec.across) {
      for (const v of spec.uses) mine.add(v);
      for (const n of spec.needs) for (const v of deps.get(n) ?? []) mine.add(v);
    }
    deps.set(spec.id, mine);
    const combos = combinationsOf(mine);
    if (runs.length + combos.length > maxRuns) throw new RunLimitError(spec.id, combos.length, maxRuns);
    const byId = new Map<string, StageRun>();
    runsOf.set(spec.id, byId);
    // A need that depends on exactly these variables has one run per combination, in the same
    // order: its i-th run is the input of our i-th (no run id to build and look up).
    const sameOrder = new Map(
      spec.needs.map((n) => {
        const theirs = deps.get(n) ?? new Set<string>();
        const same = !spec.across && theirs.size === mine.size && [...theirs].every((v) => mine.has(v));
        return [n, same ? [...(runsOf.get(n)?.values() ?? [])] : undefined] as const;
      }),
    );
    // Params without matrix templates are the same for every run of the stage: rendered once.
    const shared = spec.uses.size === 0 ? (renderTemplates(spec.with, {}, vars) as Record<string, Json>) : undefined;
    for (const [i, combo] of combos.entries()) {
      let inputs: StageRun[];
      if (spec.across) {
        inputs = [];
        for (const n of spec.needs) {
          const seen = new Set<string>();
          for (const full of combinationsOf(all)) {
            const up = upstreamRun(n, full);
            if (!seen.has(up.id)) {
              seen.add(up.id);
              inputs.push(up);
            }
          }
        }
      } else {
        inputs = spec.needs.map((n) => sameOrder.get(n)?.[i] ?? upstreamRun(n, combo));
      }
      const run: StageRun = {
        id: idOf(spec.id, combo),
        stageId: spec.id,
        stage: spec.stage,
        matrix: combo,
        params: shared ?? (renderTemplates(spec.with, combo, vars) as Record<string, Json>),
        inputs,
        across: spec.across,
      };
      byId.set(run.id, run);
      runs.push(run);
    }
  }
  return runs;
}

/**
 * **The pipeline wing** (`engine/pipeline/`): from a pipeline file to the stage runs the runner can
 * plan and run, or to every problem at once, each with `file:line:col` and its field path.
 * `load.ts` parses the YAML keeping positions; `overrides.ts` applies `--set`; `validate.ts` checks
 * the document and each run's params against their JSON Schemas (compiled validators cached on disk
 * by `validator-cache.ts`); `template.ts` resolves `${{ matrix.x }}` and `${{ vars.x }}`; `dag.ts`
 * orders the stages and finds cycles; `expand.ts` expands the sweep matrix into stage runs. This
 * module chains those steps. The wing knows stages only through the stage contract (`../stage.ts`)
 * and the registry.
 *
 * Compiles a pipeline file into stage runs ready to plan or run: load (positions kept), apply
 * `--set`, validate the document against `schemas/pipeline.schema.json`, resolve `uses`/`needs`,
 * find cycles, expand the matrix, validate every run's params against its stage's schema
 * (defaults filled in) and run each stage's `check`. Every problem is collected and reported at
 * once, each with `file:line:col` and the field path.
 */
import { IssueList } from '../errors.js';
import type { JsonPath } from '../errors.js';
import { expandRuns } from './expand.js';
import type { StageRun, StageSpec } from './expand.js';
import { findCycle, topoOrder } from './dag.js';
import { RunLimitError, inputLimits } from './limits.js';
import type { InputLimits } from './limits.js';
import { loadPipeline } from './load.js';
import type { LoadedPipeline, Locate } from './load.js';
import { checkSweep, expandMatrix } from './matrix.js';
import type { RawMatrix, Sweep } from './matrix.js';
import { applyOverrides } from './overrides.js';
import { checkRunName, runNames } from './run-names.js';
import type { StageRegistry } from '../registry.js';
import type { Json, UpstreamParams } from '../stage.js';
import { hasTemplates, scanTemplates } from './template.js';
import { ParamsValidator, pointerToPath, validatePipelineDocument } from './validate.js';

/** A compiled pipeline: its runs in dependency order, params validated with defaults filled in. */
export interface Pipeline {
  /** The pipeline file as given. */
  readonly file: string;
  /** `name:` of the pipeline, or the file name. */
  readonly name: string;
  /** `description:`, if any. */
  readonly description?: string;
  /** Every stage run, dependencies first; within a stage, in matrix order. */
  readonly runs: readonly StageRun[];
  /** Location of a field of the (overridden) pipeline document. */
  readonly locate: Locate;
  /** The name of each named run (`--name`, see `run-names.ts`). */
  readonly runNames: ReadonlyMap<StageRun, string>;
}

/** Options of `compilePipeline`. */
export interface CompileOptions {
  /** `--set` arguments (`model.with.max_steps=500`, `vars.n=3`). */
  readonly sets?: readonly string[];
  /** `--name`: names the runs (`${{ matrix.<axis> }}` and `${{ vars.<name> }}` allowed). */
  readonly runName?: string;
  /** Limits on runs, problems listed, file size and aliases (default: those in force, `limits.ts`). */
  readonly limits?: InputLimits;
}

/**
 * Loads and compiles a pipeline file.
 * @throws InputError listing every problem (syntax, schema, unknown stage type, missing `needs`
 *   target, cycle, templates, params, `check`), each with location and field path.
 */
export function compilePipeline(file: string, registry: StageRegistry, options: CompileOptions = {}): Pipeline {
  return compileLoaded(loadPipeline(file, options.limits), registry, options);
}

interface RawStage {
  uses: string;
  needs?: string | string[];
  with?: Record<string, Json> | null;
  across?: 'matrix';
}

interface RawPipeline {
  name?: string;
  description?: string;
  matrix?: RawMatrix;
  vars?: Record<string, Json>;
  stages: Record<string, RawStage>;
}

/** Records a problem at a field of the pipeline document (`atKey`: at the field's name, not its value). */
type Report = (path: JsonPath, message: string, atKey?: boolean) => void;

/**
 * Compiles an already loaded pipeline (see `compilePipeline`): the document's shape, then its
 * stages (types, needs, cycles, templates), then the matrix expansion, then each run's params and
 * semantic checks. Each step reports every problem it finds; the next runs only when they allow.
 * @throws InputError as `compilePipeline`.
 */
export function compileLoaded(
  loadedFile: LoadedPipeline,
  registry: StageRegistry,
  options: CompileOptions = {},
): Pipeline {
  const loaded = applyOverrides(loadedFile, options.sets ?? []);
  const { locate } = loaded;
  const limits = options.limits ?? inputLimits();
  const issues = new IssueList(limits.maxErrors);
  const at: Report = (path, message, atKey = false) => issues.add(locate(path, { key: atKey }), path, message);
  const doc = checkShape(loaded.data, at, issues);
  const graph = resolveStages(doc, registry, at);
  issues.throwIfAny();
  const runs = expandWithin(graph, doc.vars ?? {}, limits.maxRuns, at, issues);
  const valid = validateParams(runs, doc, at);
  checkRuns(runs, valid, at);
  const template = options.runName;
  if (template !== undefined) {
    const scope = { matrix: [...graph.sweep.names], vars: Object.keys(doc.vars ?? {}) };
    for (const p of checkRunName(template, scope)) issues.add(`--name ${template}`, '', p.message);
  }
  issues.throwIfAny();
  const name = doc.name ?? loaded.file;
  const names = template === undefined ? new Map<StageRun, string>() : runNames(template, runs, doc.vars ?? {});
  return { file: loaded.file, name, description: doc.description, runs, locate, runNames: names };
}

/**
 * The document's shape against the pipeline schema.
 * @throws InputError when the document is not a mapping, or `stages`, `matrix` or `vars` are
 *   malformed (problems in `name`, `description` or unknown top-level fields do not stop the other
 *   checks).
 */
function checkShape(data: unknown, at: Report, issues: IssueList): RawPipeline {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    at([], 'a pipeline file must be a mapping with at least `stages:`');
    issues.throwIfAny();
  }
  const shape = validatePipelineDocument(data);
  for (const p of shape) at(p.path, p.message, p.atKey);
  if (shape.some((p) => p.path.length === 0 || ['stages', 'matrix', 'vars'].includes(String(p.path[0]))))
    issues.throwIfAny();
  return data as RawPipeline;
}

/** The stages of a document as the matrix expansion needs them. */
interface StageGraph {
  /** Stage ids in file order. */
  readonly ids: readonly string[];
  /** The matrix expanded into its combinations (`include`/`exclude` applied). */
  readonly sweep: Sweep;
  /** The `needs` of each stage id. */
  readonly needsOf: ReadonlyMap<string, readonly string[]>;
  /** The spec of each stage id whose `uses` names a known stage type. */
  readonly specs: ReadonlyMap<string, StageSpec>;
}

/** Resolves `uses` and `needs`, scans templates, finds cycles; reports each problem. */
function resolveStages(doc: RawPipeline, registry: StageRegistry, at: Report): StageGraph {
  const ids = Object.keys(doc.stages);
  const { sweep, problems } = expandMatrix(doc.matrix);
  for (const p of problems) at(p.path, p.message);
  const vars = doc.vars ?? {};
  const scope = { matrix: [...sweep.names], vars: Object.keys(vars) };
  const needsOf = new Map<string, string[]>();
  const specs = new Map<string, StageSpec>();
  for (const [name, value] of Object.entries(vars)) {
    if (hasTemplates(value)) at(['vars', name], 'templates are not allowed in vars');
  }
  const known = [...registry.keys()].sort();
  for (const id of ids) {
    const raw = doc.stages[id];
    const stage = registry.get(raw.uses);
    if (!stage) {
      at(['stages', id, 'uses'], `unknown stage type "${raw.uses}" (known: ${known.join(', ') || 'none'})`);
    }
    const needs = raw.needs === undefined ? [] : typeof raw.needs === 'string' ? [raw.needs] : raw.needs;
    needsOf.set(id, needs);
    needs.forEach((n, i) => {
      const where: JsonPath = typeof raw.needs === 'string' ? ['stages', id, 'needs'] : ['stages', id, 'needs', i];
      if (!Object.prototype.hasOwnProperty.call(doc.stages, n)) {
        at(where, `needs unknown stage "${n}" (stages: ${ids.join(', ')})`);
      }
    });
    const withValue = raw.with ?? {};
    const scan = scanTemplates(withValue, scope);
    for (const p of scan.problems) at(['stages', id, 'with', ...p.path], p.message);
    if (raw.across === 'matrix' && scan.matrix.size > 0) {
      at(
        ['stages', id, 'across'],
        `a stage with across: matrix runs once over the whole sweep and cannot use \${{ matrix.${[...scan.matrix][0]} }}`,
      );
    }
    if (raw.across === 'matrix' && needs.length === 0) {
      at(['stages', id, 'across'], 'across: matrix needs at least one upstream stage (`needs:`)');
    }
    if (stage) specs.set(id, { id, stage, needs, with: withValue, across: raw.across === 'matrix', uses: scan.matrix });
  }
  const cycle = findCycle(ids, (id) => needsOf.get(id) ?? []);
  if (cycle) at(['stages', cycle[0], 'needs'], `cycle: ${cycle.join(' -> ')}`);
  if (specs.size === ids.length) {
    const used = new Set([...specs.values()].flatMap((s) => [...s.uses]));
    for (const p of checkSweep(sweep, used))
      at(p.path, p.message, typeof p.path.at(-1) === 'string' && p.path.length > 1);
  }
  return { ids, sweep, needsOf, specs };
}

/**
 * Expands the matrix into stage runs, at most `maxRuns` of them (checked before they are built).
 * @throws InputError at `matrix` naming `--max-runs` when there would be more.
 */
function expandWithin(
  graph: StageGraph,
  vars: Readonly<Record<string, Json>>,
  maxRuns: number,
  at: Report,
  issues: IssueList,
): StageRun[] {
  const order = topoOrder(graph.ids, (id) => graph.needsOf.get(id) ?? []);
  try {
    return expandRuns(
      order.map((id) => graph.specs.get(id) as StageSpec),
      graph.sweep,
      vars,
      maxRuns,
    );
  } catch (err) {
    if (!(err instanceof RunLimitError)) throw err;
    at(['matrix'], err.message, true);
    throw issues.error();
  }
}

/**
 * Validates every run's params against its stage's schema, filling in defaults (`run.params` is
 * replaced); reports each problem.
 * @returns the runs whose params are valid.
 */
function validateParams(runs: readonly StageRun[], doc: RawPipeline, at: Report): Set<StageRun> {
  const validator = new ParamsValidator();
  const valid = new Set<StageRun>();
  // Runs of a stage whose `with:` uses no matrix variable have equal params: they are validated
  // once and share the validated object (never modified afterwards), so that its key text is
  // made once too (`stageKey`); 10,000 runs of a sweep have few distinct params per stage.
  type Validated = ReturnType<ParamsValidator['validate']>;
  const seen = new Map<StageRun['stage'], Map<string, Validated>>();
  // Runs that share one params object (rendered once, `expandRuns`) need no text to find it.
  const byObject = new Map<object, Validated>();
  for (const run of runs) {
    const rawWith = doc.stages[run.stageId].with ?? {};
    let known = byObject.get(run.params);
    if (!known) {
      const text = JSON.stringify(run.params);
      const ofStage = seen.get(run.stage) ?? new Map<string, Validated>();
      seen.set(run.stage, ofStage);
      known = ofStage.get(text) ?? validator.validate(run.stage, run.params);
      ofStage.set(text, known);
      byObject.set(run.params, known);
    }
    const { params, problems } = known;
    run.params = params;
    for (const p of problems) {
      const path: JsonPath = ['stages', run.stageId, 'with', ...p.path];
      at(path, p.message + runSuffix(run, rawWith, p.path), p.atKey);
    }
    if (problems.length === 0) valid.add(run);
  }
  return valid;
}

/** Runs each stage's `check` on the runs whose params, and whose upstream runs' params, are valid. */
function checkRuns(runs: readonly StageRun[], valid: ReadonlySet<StageRun>, at: Report): void {
  for (const run of runs) {
    if (!run.stage.check || !valid.has(run)) continue;
    const upstream = upstreamRuns(run);
    if (!upstream.every((u) => valid.has(u))) continue;
    const given: UpstreamParams[] = upstream.map((u) => ({ stage: u.stage.name, params: u.params }));
    let problems: { path: string; message: string }[];
    try {
      problems = run.stage.check(run.params, given);
    } catch (err) {
      problems = [{ path: '', message: `check failed: ${(err as Error).message}` }];
    }
    for (const p of problems) {
      const rel = pointerToPath(p.path);
      at(['stages', run.stageId, 'with', ...rel], p.message + (run.id !== run.stageId ? ` (in ${run.id})` : ''));
    }
  }
}

/** Transitive upstream runs, nearest first (breadth-first, each once). */
export function upstreamRuns(run: StageRun): StageRun[] {
  const out: StageRun[] = [];
  const seen = new Set<StageRun>();
  let frontier: readonly StageRun[] = run.inputs;
  while (frontier.length > 0) {
    const next: StageRun[] = [];
    for (const r of frontier) {
      if (seen.has(r)) continue;
      seen.add(r);
      out.push(r);
      for (const i of r.inputs) next.push(i);
    }
    frontier = next;
  }
  return out;
}

/** ` (in kb[entities=0])` when the offending value comes from a template, else empty. */
function runSuffix(run: StageRun, rawWith: unknown, path: readonly (string | number)[]): string {
  if (run.id === run.stageId) return '';
  let node: unknown = rawWith;
  for (const seg of path) {
    if (node === null || typeof node !== 'object') {
      node = undefined;
      break;
    }
    node = (node as Record<string, unknown>)[seg as string];
  }
  return node === undefined || hasTemplates(node) ? ` (in ${run.id})` : '';
}

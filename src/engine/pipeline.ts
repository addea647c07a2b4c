/**
 * Compiles a pipeline file into stage runs ready to plan or run: load (positions kept), apply
 * `--set`, validate the document against `schemas/pipeline.schema.json`, resolve `uses`/`needs`,
 * find cycles, expand the matrix, validate every run's params against its stage's schema
 * (defaults filled in) and run each stage's `check`. Every problem is collected and reported at
 * once, each with `file:line:col` and the field path.
 */
import { IssueList } from './errors.js';
import type { JsonPath } from './errors.js';
import { expandRuns } from './expand.js';
import type { Matrix, StageRun, StageSpec } from './expand.js';
import { findCycle, topoOrder } from './dag.js';
import { RunLimitError, inputLimits } from './limits.js';
import type { InputLimits } from './limits.js';
import { loadPipeline } from './load.js';
import type { LoadedPipeline, Locate } from './load.js';
import { applyOverrides } from './overrides.js';
import type { StageRegistry } from './registry.js';
import type { Json, UpstreamParams } from './stage.js';
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
}

/** Options of `compilePipeline`. */
export interface CompileOptions {
  /** `--set` arguments (`model.with.max_steps=500`, `vars.n=3`). */
  readonly sets?: readonly string[];
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
  matrix?: Record<string, Json[]>;
  vars?: Record<string, Json>;
  stages: Record<string, RawStage>;
}

/**
 * Compiles an already loaded pipeline (see `compilePipeline`).
 * @throws InputError as `compilePipeline`.
 */
export function compileLoaded(loadedFile: LoadedPipeline, registry: StageRegistry, options: CompileOptions = {}): Pipeline {
  const loaded = applyOverrides(loadedFile, options.sets ?? []);
  const { locate } = loaded;
  const limits = options.limits ?? inputLimits();
  const issues = new IssueList(limits.maxErrors);
  const at = (path: JsonPath, message: string, atKey = false) => issues.add(locate(path, { key: atKey }), path, message);

  // 1. The document's shape.
  if (loaded.data === null || typeof loaded.data !== 'object' || Array.isArray(loaded.data)) {
    at([], 'a pipeline file must be a mapping with at least `stages:`');
    issues.throwIfAny();
  }
  const shape = validatePipelineDocument(loaded.data);
  for (const p of shape) at(p.path, p.message, p.atKey);
  // Problems in `name`, `description` or unknown top-level fields do not stop the other checks.
  if (shape.some((p) => p.path.length === 0 || ['stages', 'matrix', 'vars'].includes(String(p.path[0])))) issues.throwIfAny();
  const doc = loaded.data as RawPipeline;

  // 2. Stage types, needs, cycles, templates.
  const ids = Object.keys(doc.stages);
  const matrix: Matrix = Object.entries(doc.matrix ?? {});
  const vars = doc.vars ?? {};
  const scope = { matrix: matrix.map(([n]) => n), vars: Object.keys(vars) };
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
      at(['stages', id, 'across'], `a stage with across: matrix runs once over the whole sweep and cannot use \${{ matrix.${[...scan.matrix][0]} }}`);
    }
    if (raw.across === 'matrix' && needs.length === 0) {
      at(['stages', id, 'across'], 'across: matrix needs at least one upstream stage (`needs:`)');
    }
    if (stage) specs.set(id, { id, stage, needs, with: withValue, across: raw.across === 'matrix', uses: scan.matrix });
  }
  const cycle = findCycle(ids, (id) => needsOf.get(id) ?? []);
  if (cycle) at(['stages', cycle[0], 'needs'], `cycle: ${cycle.join(' -> ')}`);
  issues.throwIfAny();

  // 3. Expand the matrix.
  const order = topoOrder(ids, (id) => needsOf.get(id) ?? []);
  let runs: StageRun[];
  try {
    runs = expandRuns(
      order.map((id) => specs.get(id) as StageSpec),
      matrix,
      vars,
      limits.maxRuns,
    );
  } catch (err) {
    if (!(err instanceof RunLimitError)) throw err;
    at(['matrix'], err.message, true);
    throw issues.error();
  }

  // 4. Params of every run, then semantic checks.
  const validator = new ParamsValidator();
  const valid = new Set<StageRun>();
  for (const run of runs) {
    const rawWith = doc.stages[run.stageId].with ?? {};
    const { params, problems } = validator.validate(run.stage, run.params);
    run.params = params;
    for (const p of problems) {
      const path: JsonPath = ['stages', run.stageId, 'with', ...p.path];
      at(path, p.message + runSuffix(run, rawWith, p.path), p.atKey);
    }
    if (problems.length === 0) valid.add(run);
  }
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
  issues.throwIfAny();
  const name = doc.name ?? loaded.file;
  return { file: loaded.file, name, description: doc.description, runs, locate };
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

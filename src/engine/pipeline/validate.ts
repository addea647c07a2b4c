/**
 * JSON Schema validation (ajv, draft-07, all errors, defaults filled in) of the pipeline document
 * and of each stage's params, with errors turned into a field path and a message people can act on.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { FormatsPlugin } from 'ajv-formats';
import type { Json, StageDefinition } from '../stage.js';
import { compileCached } from './validator-cache.js';

// ajv is loaded on first compile only: with every validator in the cache (`validator-cache.ts`),
// a CLI start loads none of its ~60 modules.
const require = createRequire(import.meta.url);

/** One schema violation: where (path relative to the validated value) and what. */
export interface SchemaProblem {
  readonly path: (string | number)[];
  readonly message: string;
  /** True when the problem is the key itself (unknown field, bad name), not its value. */
  readonly atKey?: boolean;
}

/** grokpipe's ajv options (draft-07, all errors, defaults filled in, error data kept). */
const AJV_OPTIONS = { allErrors: true, useDefaults: true, verbose: true, strict: false, code: { source: true } };

/** A new ajv instance with grokpipe's settings (draft-07, allErrors, useDefaults, formats). */
export function createAjv(): Ajv {
  const { Ajv: AjvClass } = require('ajv') as { Ajv: new (options: object) => Ajv };
  const formats = require('ajv-formats') as FormatsPlugin | { default: FormatsPlugin };
  const addFormats = typeof formats === 'function' ? formats : formats.default;
  const ajv = new AjvClass(AJV_OPTIONS);
  addFormats(ajv);
  return ajv;
}

/** Schema path prefix of errors inside the template branch of a knob (`definitions.template`). */
const TEMPLATE_BRANCH = '#/definitions/template/';

/** True when instance path `path` is `at` or below it. */
function isAtOrBelow(path: string, at: string): boolean {
  return path === at || path.startsWith(`${at}/`);
}

/**
 * ajv reports a failed `anyOf` as the errors of each branch followed by the `anyOf` error itself,
 * the branch errors being the errors just before it at or below its instance path (the `anyOf`s
 * of grokpipe's schemas stand alone in their subschema, so no other keyword's errors sit there).
 * People need the reason, once: when every branch failed on its type, one `type` error listing
 * the types ("must be string or array"); else the errors of the branches the value's type fits.
 * The template branch of a knob (`definitions.template`, editor schema) is never the reason.
 */
export function collapseAnyOf(errors: readonly ErrorObject[]): ErrorObject[] {
  const out: ErrorObject[] = [];
  for (const e of errors) {
    if (e.keyword !== 'anyOf') {
      out.push(e);
      continue;
    }
    let start = out.length;
    while (start > 0 && isAtOrBelow(out[start - 1].instancePath, e.instancePath)) start--;
    const branches = out.splice(start).filter((b) => !b.schemaPath.startsWith(TEMPLATE_BRANCH));
    const typeErrors = branches.filter((b) => b.keyword === 'type' && b.instancePath === e.instancePath);
    if (branches.length === 0) {
      out.push(e);
    } else if (typeErrors.length === branches.length) {
      const types = typeErrors.map((b) => String((b.params as { type: unknown }).type));
      out.push({ ...typeErrors[0], params: { type: types.join(',') } });
    } else {
      out.push(...branches.filter((b) => !typeErrors.includes(b)));
    }
  }
  return out;
}

/** Turns ajv errors into `SchemaProblem`s (one per error, noise removed, `anyOf`s collapsed). */
export function toProblems(errors: readonly ErrorObject[] | null | undefined): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  for (const e of collapseAnyOf(errors ?? [])) {
    if (e.keyword === 'propertyNames' || e.keyword === 'if') continue;
    const path = pointerToPath(e.instancePath);
    const params = e.params as Record<string, unknown>;
    const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
    if (propertyName !== undefined) {
      problems.push({
        path: [...path, propertyName],
        message: `invalid name "${propertyName}": ${e.message ?? 'invalid'}`,
        atKey: true,
      });
      continue;
    }
    switch (e.keyword) {
      case 'required':
        problems.push({ path, message: `missing required field "${String(params.missingProperty)}"` });
        break;
      case 'additionalProperties': {
        const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
        const allowed = props ? ` (allowed: ${Object.keys(props).join(', ')})` : '';
        problems.push({
          path: [...path, String(params.additionalProperty)],
          message: `unknown field${allowed}`,
          atKey: true,
        });
        break;
      }
      case 'enum':
        problems.push({
          path,
          message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} (got ${show(e.data)})`,
        });
        break;
      case 'type':
        problems.push({ path, message: `must be ${String(params.type).replace(/,/g, ' or ')} (got ${show(e.data)})` });
        break;
      default:
        problems.push({
          path,
          message: isScalar(e.data) ? `${e.message ?? 'invalid'} (got ${show(e.data)})` : (e.message ?? 'invalid'),
        });
    }
  }
  return problems;
}

/** Converts a JSON pointer (`/optimizer/lr`, `/0`) into path segments (array indexes as numbers). */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .replace(/^\//, '')
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function isScalar(v: unknown): boolean {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

let pipelineValidator: ValidateFunction | undefined;
let shared: Ajv | undefined;

/**
 * The process-wide ajv instance: compiling ajv's meta-schema and each schema costs tens of
 * milliseconds, so they are compiled once per process, not per pipeline (`status` start-up).
 */
function sharedAjv(): Ajv {
  shared ??= createAjv();
  return shared;
}

/** Compiled params validators by schema object, for every `ParamsValidator` of the process. */
const compiledParams = new WeakMap<object, ValidateFunction>();

/** Path of the published pipeline schema (`schemas/pipeline.schema.json`). */
export const PIPELINE_SCHEMA_URL = new URL('../../../schemas/pipeline.schema.json', import.meta.url);

/** The parts of `schemas/pipeline.schema.json` that `documentSchema` rewrites. */
interface PipelineSchema {
  definitions: Record<string, unknown>;
}

/**
 * The pipeline schema as the engine checks a document: without the editor's part that
 * `scripts/pipeline-schema.mjs` generates (`uses` among the built-in stage types, `with` checked
 * against each one's schema, templates allowed in every knob). The engine knows the stage types
 * of its registry, which may not be the built-in ones, and checks each run's params after
 * templates are rendered (`ParamsValidator`), with defaults filled in.
 */
export function documentSchema(schema: PipelineSchema): object {
  const { params: _params, template: _template, ...definitions } = schema.definitions;
  return { ...schema, definitions: { ...definitions, stageTypes: {} } };
}

/**
 * Validates a parsed pipeline document against `schemas/pipeline.schema.json` (`documentSchema`).
 * Returns every problem (empty when valid). Does not modify `data`.
 * @throws Error when the schema file itself cannot be read (a broken installation).
 */
export function validatePipelineDocument(data: unknown): SchemaProblem[] {
  if (!pipelineValidator) {
    const schema = documentSchema(JSON.parse(readFileSync(PIPELINE_SCHEMA_URL, 'utf8')) as PipelineSchema);
    pipelineValidator = compileCached(sharedAjv, schema, AJV_OPTIONS);
  }
  if (pipelineValidator(structuredClone(data))) return [];
  return toProblems(pipelineValidator.errors);
}

/** Validates stage params against each stage's schema, compiling each schema once per process. */
export class ParamsValidator {
  private readonly compiled = compiledParams;

  /**
   * Validates a copy of `params` against `stage.schema`, filling in defaults.
   * Returns the filled params and the problems (paths relative to `with`).
   * @throws Error when the stage's schema itself is invalid (a bug in the stage module).
   */
  validate(stage: StageDefinition<never>, params: Json): { params: Record<string, Json>; problems: SchemaProblem[] } {
    let fn = this.compiled.get(stage.schema);
    if (!fn) {
      try {
        fn = compileCached(sharedAjv, stage.schema, AJV_OPTIONS);
      } catch (err) {
        throw new Error(`stage "${stage.name}" has an invalid params schema: ${(err as Error).message}`);
      }
      this.compiled.set(stage.schema, fn);
    }
    const copy = structuredClone(params ?? {}) as Record<string, Json>;
    const ok = fn(copy);
    return { params: copy, problems: ok ? [] : toProblems(fn.errors) };
  }
}

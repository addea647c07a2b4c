/** Types of `pipeline-schema.mjs` (the generator of the editor part of `schemas/pipeline.schema.json`). */

/** A copy of a stage schema in which every knob and list item also accepts a template. */
export function withTemplates(schema: unknown): unknown;
/** The pipeline schema `base` with its generated definitions made from `stages` (name, schema). */
export function pipelineSchema(base: object, stages: [string, object][]): object;
/** The stage schemas of `schemas/stages/`, as [stage type, schema], in file name order. */
export function readStageSchemas(): [string, object][];
/** The text `schemas/pipeline.schema.json` should have. */
export function expectedPipelineSchemaText(): string;
/** The schema of a template value (`${{ matrix.<name> }}`, `${{ vars.<name> }}`). */
export const TEMPLATE_SCHEMA: object;

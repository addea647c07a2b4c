/**
 * Stage `generate`: draws the knowledge base of the comparison task (Wang et al. 2024;
 * docs/design.md §4): every entity gets a value for every attribute, uniform and independent in
 * `[0, values)`. Output `kb.parquet` (docs/artifacts.md). No input.
 */
import { readFileSync } from 'node:fs';
import type { StageDefinition } from '../engine/stage.js';
import { drawKnowledgeBase, kbToTable } from '../task/kb.js';
import { openStream } from '../task/streams.js';

/** Validated params of `generate` (`schemas/stages/generate.schema.json`). */
export interface GenerateParams {
  /** Number of entities N (>= 2). */
  entities: number;
  /** Number of attributes A (>= 1). */
  attributes: number;
  /** Number of values V per attribute (>= 2). */
  values: number;
  /** Seed (integer >= 0): the KB is a pure function of the seed and the three sizes. */
  seed: number;
}

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/generate.schema.json', import.meta.url), 'utf8'),
) as object;

/**
 * The `generate` stage. Its values come from the stream ('generate', seed, N, A, V) (`src/task/streams.ts`),
 * drawn in row order (attribute, then entity); so runs of a sweep over N are independent KBs.
 */
export const generateStage: StageDefinition<GenerateParams> = {
  name: 'generate',
  version: '1',
  description: 'Draw the knowledge base: a uniform random value for every (entity, attribute).',
  schema,
  async run(ctx) {
    const { entities, attributes, values, seed } = ctx.params;
    const kb = drawKnowledgeBase(
      { entities, attributes, values },
      openStream('generate', seed, entities, attributes, values),
    );
    await ctx.writeTable('kb.parquet', kbToTable(kb));
    ctx.record('atomic_facts', kb.value.length);
    ctx.log(`knowledge base: ${entities} entities × ${attributes} attributes, ${values} values`);
  },
};

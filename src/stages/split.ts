/**
 * Stage `split`: splits the knowledge base into training and test facts (Wang et al. 2024;
 * docs/design.md §4; the algorithm is in `src/task/split.ts`). Input: a `generate` artifact. Outputs
 * (docs/artifacts.md): `entities.parquet`, `train.parquet`, `test.parquet`, and `task.json` (the
 * task's sizes, for `tokenize`; see `src/task/task-file.ts`). A test set whose pool is smaller
 * than `test_size` holds its whole pool; the run says so (log and `warnings`).
 */
import { readFileSync } from 'node:fs';
import type { StageDefinition } from '../engine/stage.js';
import { domainsToTable } from '../task/domains.js';
import { countByType, factsToTable } from '../task/facts.js';
import { kbFromTable } from '../task/kb.js';
import { splitKnowledgeBase } from '../task/split.js';
import { phiProblem, planSplit } from '../task/split-plan.js';
import { TASK_FILE, formatTaskFile } from '../task/task-file.js';
import { tableHash } from '../table/table.js';

/** Validated params of `split` (`schemas/stages/split.schema.json`). */
export interface SplitStageParams {
  /** Fraction of entities that are ID, per attribute, in (0, 1); `n_id = Math.round(id_fraction × N)`. */
  id_fraction: number;
  /** Inferred-to-atomic ratio: training inferred facts = `round(phi × #ID atomic facts)`. */
  phi: number;
  /** Rows per test type at most. */
  test_size: number;
  /** Probability an unordered ID-ID pair is held out in the ID test pool, in [0, 1). */
  id_test_fraction: number;
  /** Seed (integer >= 0); the split also depends on the KB's content hash. */
  seed: number;
}

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/split.schema.json', import.meta.url), 'utf8'),
) as object;

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/**
 * The note that some test sets hold fewer than `test_size` facts (their whole pool: the KB has no
 * more facts of that type), or undefined when none does.
 * @param counts facts per test type.
 */
export function cappedTestSets(counts: Readonly<Record<string, number>>, testSize: number): string | undefined {
  const short = Object.entries(counts).filter(([, n]) => n < testSize);
  if (short.length === 0) return undefined;
  const list = short.map(([type, n]) => `${n} ${type}`).join(', ');
  return `test_size ${testSize} capped: the knowledge base has only ${list} facts to test on (each such test set holds them all)`;
}

/** The `split` stage. */
export const splitStage: StageDefinition<SplitStageParams> = {
  name: 'split',
  version: '1',
  description: 'Split the knowledge base into ID/OOD entities, training facts (atomic + phi × inferred) and test sets.',
  schema,

  /**
   * Rejects (path `/phi`) a phi whose `round(phi × A × n_id)` exceeds the expected training pool
   * `(1 - id_test_fraction) × A × n_id × (n_id - 1)`, computed from the nearest upstream
   * `generate`'s `entities` and `attributes` (rules in `src/task/split-plan.ts`); the message gives
   * the largest phi allowed. Says nothing when no `generate` is upstream.
   */
  check(params, upstream) {
    const gen = upstream.find((u) => u.stage === 'generate');
    const entities = positiveInt(gen?.params.entities);
    const attributes = positiveInt(gen?.params.attributes);
    if (entities === undefined || attributes === undefined) return [];
    let problem: string | undefined;
    try {
      problem = phiProblem(planSplit({ entities, attributes }, params), params.phi);
    } catch (err) {
      return [{ path: '', message: (err as Error).message }];
    }
    return problem === undefined ? [] : [{ path: '/phi', message: problem }];
  },

  async run(ctx) {
    const input = ctx.input('generate');
    const values = positiveInt(input.params.values);
    if (values === undefined) throw new Error(`split: upstream generate "${input.id}" has no integer "values" param`);
    const table = await input.readTable('kb.parquet');
    const kb = kbFromTable(table, values);
    const result = splitKnowledgeBase(kb, ctx.params, tableHash(table));
    const { plan, domains } = result;
    await ctx.writeTable('entities.parquet', domainsToTable(domains));
    await ctx.writeTable('train.parquet', factsToTable(result.train));
    await ctx.writeTable('test.parquet', factsToTable(result.test));
    await ctx.writeFile(
      TASK_FILE,
      formatTaskFile({
        entities: kb.entities,
        attributes: kb.attributes,
        values: kb.values,
        id_entities: domains.nId,
        ood_entities: domains.nOod,
      }),
    );
    ctx.record('id_entities_per_attribute', domains.nId);
    ctx.record('train', countByType(result.train));
    ctx.record('test', countByType(result.test));
    ctx.record('expected_train_pool', plan.expectedTrainPool);
    if (result.trainPoolSize !== undefined) ctx.record('train_pool', result.trainPoolSize);
    ctx.log(
      `split: ${domains.nId} ID / ${domains.nOod} OOD entities per attribute; ` +
        `${plan.idAtomic + plan.oodAtomic} atomic + ${plan.trainInferred} inferred training facts; ${result.test.type.length} test facts`,
    );
    const capped = cappedTestSets(countByType(result.test), ctx.params.test_size);
    if (capped) {
      ctx.log(`split: ${capped}`);
      ctx.record('warnings', [capped]);
    }
  },
};

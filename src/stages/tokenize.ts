/**
 * Stage `tokenize`: turns the split's facts into token id sequences (docs/design.md §4; layout in
 * docs/artifacts.md; the encoding is in `src/task/vocab.ts` and `src/task/tokens.ts`). Input: a
 * `split` artifact (its `train.parquet`, `test.parquet` and `task.json`). Outputs `vocab.parquet`,
 * `train.parquet`, `test.parquet`; row `i` of each tokenized table is row `i` of the split's table.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { InputArtifact, StageDefinition } from '../engine/stage.js';
import { column } from '../table/table.js';
import { TASK_FILE, parseTaskFile } from '../task/task-file.js';
import { SEQ_LEN, tokenizeFacts } from '../task/tokens.js';
import type { LabelMode, Vocabulary } from '../task/vocab.js';
import { buildVocabulary, vocabToTable } from '../task/vocab.js';

/** Validated params of `tokenize` (`schemas/stages/tokenize.schema.json`). */
export interface TokenizeParams {
  /** Comparison label tokens: per attribute (as in the original code) or shared. */
  labels: LabelMode;
}

const schema = JSON.parse(
  readFileSync(new URL('../../schemas/stages/tokenize.schema.json', import.meta.url), 'utf8'),
) as object;

async function tokenizeFile(input: InputArtifact, file: string, vocab: Vocabulary) {
  const table = await input.readTable(file);
  return tokenizeFacts(
    {
      type: column(table, 'type', 'STRING'),
      attribute: column(table, 'attribute', 'INT32'),
      e1: column(table, 'e1', 'INT32'),
      e2: column(table, 'e2', 'INT32'),
      label: column(table, 'label', 'INT32'),
    },
    vocab,
  );
}

/** The `tokenize` stage. */
export const tokenizeStage: StageDefinition<TokenizeParams> = {
  name: 'tokenize',
  version: '1',
  description: 'Tokenize the facts: vocabulary, and input token ids with the target token of every fact.',
  schema,
  async run(ctx) {
    const input = ctx.input('split');
    if (!input.files.includes(TASK_FILE)) throw new Error(`tokenize: upstream split "${input.id}" has no ${TASK_FILE}`);
    const task = parseTaskFile(await readFile(input.path(TASK_FILE), 'utf8'));
    const vocab = buildVocabulary(task, ctx.params.labels);
    await ctx.writeTable('vocab.parquet', vocabToTable(vocab));
    await ctx.writeTable('train.parquet', await tokenizeFile(input, 'train.parquet', vocab));
    await ctx.writeTable('test.parquet', await tokenizeFile(input, 'test.parquet', vocab));
    ctx.record('vocab_size', vocab.tokens.length);
    ctx.record('seq_len', SEQ_LEN);
    ctx.log(
      `tokenize: vocabulary of ${vocab.tokens.length} tokens (${ctx.params.labels} labels), inputs of ${SEQ_LEN} tokens`,
    );
  },
};

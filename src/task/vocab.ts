/**
 * The vocabulary of the comparison task (docs/design.md §4, `tokenize`; layout in docs/artifacts.md):
 * one token per symbol. Ids: `<pad>` 0, `<q>` 1, `<mask>` 2, `</a>` 3, then the entities
 * `<e_0> .. <e_{N-1}>`, the attributes `<attr_0> .. <attr_{A-1}>`, the values `<v_0> .. <v_{V-1}>`,
 * then the comparison labels: shared `<lt> <eq> <gt>`, or per attribute (as in Wang et al. 2024's
 * original code) `<attr_0_lt> <attr_0_eq> <attr_0_gt> <attr_1_lt> ..`.
 */
import type { Table } from '../table/table.js';
import type { TaskDims } from './kb.js';
import { checkDims } from './kb.js';
import { LABEL_NAMES, NUM_LABELS } from './labels.js';

/** How comparison labels are tokenized: one set of three per attribute, or one shared set. */
export type LabelMode = 'per_attribute' | 'shared';

/** Id of `<pad>` (right padding of inputs). */
export const PAD_ID = 0;
/** Id of `<q>` (the comparison query marker). */
export const QUERY_ID = 1;
/** Id of `<mask>` (between the two entities of an inferred input). */
export const MASK_ID = 2;
/** Id of `</a>` (end of answer; in the vocabulary for models that append it, unused in inputs). */
export const END_ID = 3;
/** The special tokens, by id. */
export const SPECIAL_TOKENS: readonly string[] = ['<pad>', '<q>', '<mask>', '</a>'];

/** A vocabulary: its token strings by id and the first id of each block. */
export interface Vocabulary extends TaskDims {
  /** Label mode the vocabulary was built for. */
  readonly labels: LabelMode;
  /** Token string of each id (`tokens[id]`); `tokens.length` is the vocabulary size. */
  readonly tokens: readonly string[];
  /** Id of `<e_0>`. */
  readonly entityBase: number;
  /** Id of `<attr_0>`. */
  readonly attributeBase: number;
  /** Id of `<v_0>`. */
  readonly valueBase: number;
  /** Id of the first label token (`<lt>` or `<attr_0_lt>`). */
  readonly labelBase: number;
}

/**
 * Builds the vocabulary for a task of size `dims` (layout in the module comment).
 * Size: `4 + N + A + V + 3` (shared) or `4 + N + A + V + 3A` (per attribute).
 * @throws RangeError when `dims` are invalid (see `checkDims`) or `labels` is unknown.
 */
export function buildVocabulary(dims: TaskDims, labels: LabelMode): Vocabulary {
  checkDims(dims);
  if (labels !== 'per_attribute' && labels !== 'shared') throw new RangeError(`unknown label mode "${String(labels)}"`);
  const tokens: string[] = [...SPECIAL_TOKENS];
  const entityBase = tokens.length;
  for (let e = 0; e < dims.entities; e++) tokens.push(`<e_${e}>`);
  const attributeBase = tokens.length;
  for (let a = 0; a < dims.attributes; a++) tokens.push(`<attr_${a}>`);
  const valueBase = tokens.length;
  for (let v = 0; v < dims.values; v++) tokens.push(`<v_${v}>`);
  const labelBase = tokens.length;
  if (labels === 'shared') {
    for (const name of LABEL_NAMES) tokens.push(`<${name}>`);
  } else {
    for (let a = 0; a < dims.attributes; a++) for (const name of LABEL_NAMES) tokens.push(`<attr_${a}_${name}>`);
  }
  return {
    entities: dims.entities,
    attributes: dims.attributes,
    values: dims.values,
    labels,
    tokens,
    entityBase,
    attributeBase,
    valueBase,
    labelBase,
  };
}

/** Id of the token of comparison label `label` (0/1/2) for attribute `attribute` (ignored when shared). */
export function labelTokenId(vocab: Vocabulary, attribute: number, label: number): number {
  return vocab.labels === 'shared' ? vocab.labelBase + label : vocab.labelBase + attribute * NUM_LABELS + label;
}

/** `vocab.parquet`: `id INT32, token STRING`, one row per id, ascending (docs/artifacts.md). */
export function vocabToTable(vocab: Vocabulary): Table {
  return {
    columns: [
      { name: 'id', type: 'INT32', data: Int32Array.from(vocab.tokens, (_, i) => i) },
      { name: 'token', type: 'STRING', data: [...vocab.tokens] },
    ],
  };
}

/**
 * Token sequences of facts (docs/design.md §4, `tokenize`; table layout in docs/artifacts.md):
 * atomic `(e, a) -> v`: input `<e_e> <attr_a>`, target `<v_v>`; inferred `(a, e1, e2) -> label`:
 * input `<attr_a> <q> <e_e1> <mask> <e_e2>`, target the label token. Inputs are right-padded with
 * `<pad>` to `SEQ_LEN` columns `t0 .. t4`; `length` is the number of input tokens and the model
 * predicts `target` at position `length - 1`.
 */
import type { Table } from '../table/table.js';
import { NUM_LABELS } from './labels.js';
import type { Vocabulary } from './vocab.js';
import { MASK_ID, PAD_ID, QUERY_ID, labelTokenId } from './vocab.js';

/** Number of input token columns `t0 .. t{SEQ_LEN-1}`: the longest input (inferred), 5 tokens. */
export const SEQ_LEN = 5;

/** Input length of an atomic fact (tokens). */
export const ATOMIC_LENGTH = 2;
/** Input length of an inferred fact (tokens). */
export const INFERRED_LENGTH = 5;

/** Facts to tokenize: the columns of `split`'s `train.parquet` / `test.parquet`, equally long. */
export interface FactRows {
  /** Type name of each row, copied to the output. */
  readonly type: readonly string[];
  /** Attribute index of each row. */
  readonly attribute: ArrayLike<number>;
  /** Entity (atomic) or first entity (inferred) of each row. */
  readonly e1: ArrayLike<number>;
  /** -1 marks an atomic fact (docs/artifacts.md); otherwise the second entity of an inferred fact. */
  readonly e2: ArrayLike<number>;
  /** Value (atomic) or comparison label 0/1/2 (inferred). */
  readonly label: ArrayLike<number>;
}

/**
 * Tokenizes `facts` with `vocab` into the table `type STRING, t0 .. t4 INT32, length INT32,
 * target INT32`, one row per fact in the same order. A row with `e2 = -1` is atomic, else inferred.
 * @throws RangeError naming the row when an entity, attribute, value or label is outside the vocabulary.
 */
export function tokenizeFacts(facts: FactRows, vocab: Vocabulary): Table {
  const n = facts.type.length;
  const t = Array.from({ length: SEQ_LEN }, () => new Int32Array(n).fill(PAD_ID));
  const length = new Int32Array(n);
  const target = new Int32Array(n);
  const [t0, t1, t2, t3, t4] = t;
  const { entities, attributes, values } = vocab;
  for (let r = 0; r < n; r++) {
    const a = facts.attribute[r];
    const e1 = facts.e1[r];
    const e2 = facts.e2[r];
    const y = facts.label[r];
    if (!(a >= 0 && a < attributes) || !(e1 >= 0 && e1 < entities)) {
      throw new RangeError(
        `row ${r}: attribute ${a} or entity ${e1} outside the vocabulary (A = ${attributes}, N = ${entities})`,
      );
    }
    if (e2 === -1) {
      if (!(y >= 0 && y < values)) throw new RangeError(`row ${r}: value ${y} outside [0, ${values})`);
      t0[r] = vocab.entityBase + e1;
      t1[r] = vocab.attributeBase + a;
      length[r] = ATOMIC_LENGTH;
      target[r] = vocab.valueBase + y;
    } else {
      if (!(e2 >= 0 && e2 < entities)) throw new RangeError(`row ${r}: entity ${e2} outside [0, ${entities})`);
      if (!(y >= 0 && y < NUM_LABELS))
        throw new RangeError(`row ${r}: comparison label ${y} outside [0, ${NUM_LABELS})`);
      t0[r] = vocab.attributeBase + a;
      t1[r] = QUERY_ID;
      t2[r] = vocab.entityBase + e1;
      t3[r] = MASK_ID;
      t4[r] = vocab.entityBase + e2;
      length[r] = INFERRED_LENGTH;
      target[r] = labelTokenId(vocab, a, y);
    }
  }
  return {
    columns: [
      { name: 'type', type: 'STRING', data: Array.from(facts.type) },
      ...t.map((data, i) => ({ name: `t${i}`, type: 'INT32' as const, data })),
      { name: 'length', type: 'INT32', data: length },
      { name: 'target', type: 'INT32', data: target },
    ],
  };
}

/**
 * Comparison labels of inferred facts (docs/artifacts.md): `(a, e1, e2) -> value(e1, a) ? value(e2, a)`
 * coded `0` for `<`, `1` for `=`, `2` for `>` (Wang et al. 2024, comparison task).
 */

/** Label code of `<`. */
export const LESS = 0;
/** Label code of `=`. */
export const EQUAL = 1;
/** Label code of `>`. */
export const GREATER = 2;

/** Number of comparison labels (3). */
export const NUM_LABELS = 3;

/** Short names of the labels by code, as used in token names (`<lt>`, `<attr_3_gt>`). */
export const LABEL_NAMES: readonly string[] = ['lt', 'eq', 'gt'];

/** The label code (0, 1 or 2) of comparing value `v1` of e1 with value `v2` of e2. */
export function compareValues(v1: number, v2: number): number {
  return v1 < v2 ? LESS : v1 === v2 ? EQUAL : GREATER;
}

/**
 * Index arithmetic on ordered pairs of distinct entities of one domain (ID or OOD), over all
 * attributes, so that pairs can be drawn by index without ever being listed (docs/design.md §4: N = 1000
 * gives ~15 M ordered pairs).
 *
 * With `m` members per attribute (the attribute's ID, or OOD, entities, ascending), the ordered pair
 * of member positions `(i, j)`, `i != j`, of attribute `a` has index
 * `a × m(m-1) + i × (m-1) + (j < i ? j : j - 1)`. Indices are therefore ordered by attribute, then
 * first entity, then second entity, and the space has `A × m(m-1)` indices.
 */

/** The ordered pairs of distinct members of per-attribute entity lists. */
export class PairSpace {
  /** Number of indices, `A × m × (m - 1)` (a safe integer). */
  readonly size: number;
  private readonly perAttribute: number;

  /**
   * @param members entity ids, `m` per attribute: attribute `a`'s at `[a × m, (a + 1) × m)`, ascending.
   * @param m members per attribute (>= 0).
   * @param attributes number of attributes A; `members.length` must be `A × m`.
   * @throws RangeError when `members.length !== attributes × m`.
   */
  constructor(
    readonly members: Int32Array,
    readonly m: number,
    readonly attributes: number,
  ) {
    if (members.length !== attributes * m)
      throw new RangeError(`${members.length} members for ${attributes} attributes × ${m}`);
    this.perAttribute = m * Math.max(0, m - 1);
    this.size = attributes * this.perAttribute;
  }

  /**
   * Decodes index `idx` (an integer in `[0, size)`) into `out`: `out[0]` the attribute, `out[1]`
   * the first entity e1, `out[2]` the second entity e2 (entity ids, not positions).
   */
  decode(idx: number, out: Int32Array): void {
    const a = Math.floor(idx / this.perAttribute);
    const r = idx - a * this.perAttribute;
    const i = Math.floor(r / (this.m - 1));
    let j = r - i * (this.m - 1);
    if (j >= i) j++;
    const base = a * this.m;
    out[0] = a;
    out[1] = this.members[base + i];
    out[2] = this.members[base + j];
  }

  /** Index of the ordered pair of member positions `(i, j)` of attribute `a`; `i != j`, both in `[0, m)`. */
  indexOf(a: number, i: number, j: number): number {
    return a * this.perAttribute + i * (this.m - 1) + (j < i ? j : j - 1);
  }
}

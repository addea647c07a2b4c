/**
 * Where the labels of the grokking curve's vertical rules go, so that none is drawn over another.
 *
 * A label is written upwards along its rule (rotated 270°), from near the bottom of the panel, on
 * the rule's left (`side: 'left'`) or right (`'right'`). Rules closer than `CLUSTER_PX` on the
 * symlog step axis (the same step, as when memorisation and ID generalisation fall on one
 * evaluation, or neighbouring ones) form a cluster: its first label goes on the left of its rule,
 * its last on the right of its own, and any others are stacked along the rule above those, where
 * they fit in the panel's height. When they do not, the cluster's labels are merged into one
 * (`memorised, ID ≥0.9 @700`), in a neutral colour, on the left. Rules at exactly the same step
 * interleave their dashes (`dash`, a key of `RULE_DASHES`), so that each colour shows.
 * Label lengths are estimated by `textWidth` (`./style.ts`).
 */
import type { StepExtent } from './style.js';
import { textWidth } from './style.js';

/** A vertical rule to label: its step, its series (for the colour) and its text. */
export interface RuleMark {
  /** Optimizer step (steps). */
  step: number;
  /** Legend label of the series the rule marks (`train (inferred)`), which colours it. */
  series: string;
  /** What the rule marks (`memorised`, `ID ≥0.9`). */
  what: string;
}

/** A placed label: where along the rule it starts and on which side, and the rule's dash pattern. */
export interface PlacedRule extends RuleMark {
  /** The text drawn (`memorised @700`; a merged label names every rule of its cluster). */
  label: string;
  /** Whether the label is drawn (a merged cluster draws its text once). */
  show: boolean;
  /** Side of the rule the label is written on. */
  side: 'left' | 'right';
  /** Start of the label along the rule, as a fraction of the panel height from the bottom. */
  labelY: number;
  /** Colour override of a merged label (neutral); absent: the series colour. */
  neutral: boolean;
  /** The rule's dash pattern, as a key of `RULE_DASHES` (`k/n`: the `k`-th of `n` rules at its step). */
  dash: string;
}

/** Font size of the labels (pixels). */
export const LABEL_FONT_SIZE = 10;
/**
 * Rules closer than this many pixels form one cluster: a label on the right of one rule and one
 * on the left of the next need two label heights and their gaps from the rules.
 */
export const CLUSTER_PX = 30;
/** Where the lowest label starts, as a fraction of the panel height from the bottom. */
const BOTTOM = 0.03;
/** Gap between labels stacked along a rule (pixels). */
const GAP_PX = 8;
/** Neutral colour of a merged label. */
export const NEUTRAL_LABEL_COLOR = '#333333';

/**
 * x position (pixels from the panel's left edge) of `step` on the symlog step axis of `width`
 * pixels: `width · log1p(step / c) / log1p(max / c)` with `c = max(1, minPositive)` (`stepEncoding`
 * in `./style.ts`, Vega's `symlog` scale with that constant and domain `[0, max]`).
 */
export function stepPixel(step: number, extent: StepExtent, width: number): number {
  const c = Math.max(1, extent.minPositive);
  return (width * Math.log1p(step / c)) / Math.log1p(Math.max(1, extent.max) / c);
}

/** Most rules a panel has at one step: memorisation, ID and OOD generalisation. */
const MAX_AT_ONE_STEP = 3;

/**
 * Dash pattern of the `k`-th of `n` rules at one step: dashes of 5 px with gaps of 3 px, the
 * rules' dashes taking turns (one colour after another).
 */
function dashOf(k: number, n: number): number[] {
  return n === 1 ? [5, 3] : [0, 8 * k, 5, 8 * (n - k) - 5];
}

/**
 * Every dash key (`k/n`: the `k`-th of `n` rules at one step) and its pattern, the same in every
 * panel (a Vega-Lite scale shared by the panels of a grid must have one domain and range).
 */
export const RULE_DASHES: readonly { key: string; dash: number[] }[] = Array.from({ length: MAX_AT_ONE_STEP }, (_, n) =>
  Array.from({ length: n + 1 }, (_, k) => ({ key: `${k}/${n + 1}`, dash: dashOf(k, n + 1) })),
).flat();

/** Places the labels of one cluster (rules sorted by x) in a panel `height` pixels high. */
function placeCluster(rules: readonly (RuleMark & { x: number })[], height: number, width: number): PlacedRule[] {
  const text = (r: RuleMark) => `${r.what} @${r.step}`;
  const room = height * (1 - BOTTOM) - 2;
  const len = (r: RuleMark) => textWidth(text(r), LABEL_FONT_SIZE) + GAP_PX;
  const base = (r: RuleMark, side: 'left' | 'right', labelY: number): PlacedRule => ({
    step: r.step,
    series: r.series,
    what: r.what,
    label: text(r),
    show: true,
    side,
    labelY,
    neutral: false,
    dash: '0/1',
  });
  const last = rules[rules.length - 1];
  const rightFits = last.x + LABEL_FONT_SIZE + 4 <= width;
  const left = rules.length > 1 && rightFits ? rules.slice(0, -1) : rules;
  const right = left === rules ? [] : [last];
  const stack = (group: readonly RuleMark[], side: 'left' | 'right') => {
    let used = 0;
    return group.map((r) => {
      const placed = base(r, side, BOTTOM + used / height);
      used += len(r);
      return placed;
    });
  };
  const leftUsed = left.reduce((s, r) => s + len(r), 0);
  if (leftUsed <= room) return [...stack(left, 'left'), ...stack(right, 'right')];
  // Too many to stack: one label naming them all, steps shared when they are equal.
  const sameStep = rules.every((r) => r.step === rules[0].step);
  const merged = sameStep ? `${rules.map((r) => r.what).join(', ')} @${rules[0].step}` : rules.map(text).join(', ');
  return rules.map((r, i) => ({ ...base(r, 'left', BOTTOM), label: merged, show: i === 0, neutral: true }));
}

/**
 * Places the labels of `rules` in a panel of `width` × `height` pixels on the step axis `extent`
 * (see the module comment). Returns one entry per rule, in the order given.
 */
export function placeRuleLabels(
  rules: readonly RuleMark[],
  extent: StepExtent,
  width: number,
  height: number,
): PlacedRule[] {
  const indexed = rules.map((r, i) => ({ ...r, i, x: stepPixel(r.step, extent, width) }));
  const sorted = [...indexed].sort((a, b) => a.x - b.x || a.i - b.i);
  const out: PlacedRule[] = new Array<PlacedRule>(rules.length);
  let start = 0;
  for (let j = 1; j <= sorted.length; j++) {
    if (j < sorted.length && sorted[j].x - sorted[j - 1].x < CLUSTER_PX) continue;
    const cluster = sorted.slice(start, j);
    placeCluster(cluster, height, width).forEach((p, k) => (out[cluster[k].i] = p));
    start = j;
  }
  for (const r of indexed) {
    const same = indexed.filter((o) => o.step === r.step);
    out[r.i].dash = `${Math.min(same.indexOf(r), MAX_AT_ONE_STEP - 1)}/${Math.min(same.length, MAX_AT_ONE_STEP)}`;
  }
  return out;
}

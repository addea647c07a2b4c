/**
 * The plots stay readable: rule labels never drawn over each other, a step axis labelled within
 * every decade, steps never written `0.4k`, sweep colours with distinct hues and seeds told apart
 * by dashes, final accuracy zoomed to the data and saying so. Checked on the specs and on the SVG
 * that Vega renders from them (label positions, tick texts, stroke colours and dash patterns).
 */
import { describe, expect, it } from 'vitest';
import type { Curve, CurvePoint } from '../src/analysis/metrics.js';
import { buildCurve, computeRunMetrics } from '../src/analysis/metrics.js';
import type { AnalyzedRun } from '../src/analysis/tables.js';
import { sweepKnobs } from '../src/analysis/tables.js';
import { grokkingSpec } from '../src/plot/grokking.js';
import { accuracyFloor } from '../src/plot/measures.js';
import { renderChart } from '../src/plot/render.js';
import type { RuleMark } from '../src/plot/rule-labels.js';
import { CLUSTER_PX, LABEL_FONT_SIZE, placeRuleLabels, stepPixel } from '../src/plot/rule-labels.js';
import { stepTicks, textWidth } from '../src/plot/style.js';
import { metricsSpec, overlaySpec } from '../src/plot/sweep.js';

const STEPS = Array.from({ length: 31 }, (_, i) => i * 100);

/**
 * A run whose train, ID and OOD accuracies first reach 1 at `mem`, `id`, `ood` (null: never) and
 * stay there, on steps 0..3000; `final` gives evaluate's final accuracies.
 */
function run(
  matrix: Record<string, number>,
  mem: number,
  id: number | null,
  ood: number | null,
  final: Record<string, number> = {},
): AnalyzedRun {
  const up = (at: number | null, low: number) => STEPS.map((s) => (at !== null && s >= at ? 1 : low));
  const points: CurvePoint[] = [];
  const series: Record<string, number[]> = {
    train_batch: up(mem, 0.2),
    train_inferred: up(mem, 0.2),
    id_inferred: up(id, 0.3),
    ood_inferred: up(ood, 0.4),
  };
  for (const [type, acc] of Object.entries(series))
    acc.forEach((a, i) => points.push({ type, step: STEPS[i], epoch: STEPS[i] / 10, accuracy: a, loss: 1.01 - a }));
  const curve: Curve = buildCurve(points);
  const name = Object.entries(matrix)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return { name, matrix, curve, metrics: computeRunMetrics(curve), evaluated: final };
}

/** A text element of a Vega SVG: its text, anchor, rotation, baseline offset (rotated frame) and colour. */
interface SvgText {
  text: string;
  x: number;
  y: number;
  angle: number;
  /** Vega's `translate(0, dy)` after the rotation: where the baseline lies from the anchor. */
  dy: number;
  fill: string;
}

/** Every `<text>` of `svg` with its absolute position (group translations summed). */
function svgTexts(svg: string): SvgText[] {
  const out: SvgText[] = [];
  const stack: [number, number][] = [[0, 0]];
  const tag = /<(\/?)(g|text)\b([^>]*)>([^<]*)/g;
  for (let m = tag.exec(svg); m; m = tag.exec(svg)) {
    const [, close, name, attrs, body] = m;
    const [ox, oy] = stack[stack.length - 1];
    const tr =
      /transform="translate\(([-\d.e]+),\s*([-\d.e]+)\)(?:\s*rotate\(([-\d.e]+)\))?(?:\s*translate\(([-\d.e]+),\s*([-\d.e]+)\))?"/.exec(
        attrs,
      );
    if (name === 'g') {
      if (close) stack.pop();
      else if (!attrs.trimEnd().endsWith('/')) stack.push(tr ? [ox + Number(tr[1]), oy + Number(tr[2])] : [ox, oy]);
    } else if (!close && tr) {
      const fill = /fill="([^"]*)"/.exec(attrs)?.[1] ?? '';
      const text = body.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
      out.push({
        text,
        x: ox + Number(tr[1]),
        y: oy + Number(tr[2]),
        angle: Number(tr[3] ?? 0),
        dy: Number(tr[5] ?? 0),
        fill,
      });
    }
  }
  return out;
}

/**
 * The axis-aligned box of an upward label (`rotate(270)`): its baseline lies `dy` pixels right of
 * the anchor (the rotated frame's y is the page's x), its glyphs rise 8 px above it (leftwards)
 * and descend 2 px; its length (estimated) runs up the page from the anchor.
 */
function upwardBox(t: SvgText): { x0: number; x1: number; y0: number; y1: number } {
  const baseline = t.x + t.dy;
  return { x0: baseline - 8, x1: baseline + 2, y0: t.y - textWidth(t.text, LABEL_FONT_SIZE), y1: t.y };
}

const overlapArea = (a: ReturnType<typeof upwardBox>, b: ReturnType<typeof upwardBox>) =>
  Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0)) * Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));

const EXTENT = { max: 3000, minPositive: 100 };

describe('rule labels', () => {
  /** Boxes of the shown labels, in panel pixels: [x0, x1] across the rule, [y0, y1] along it from the bottom. */
  function boxes(rules: RuleMark[], width: number, height: number) {
    return placeRuleLabels(rules, EXTENT, width, height)
      .filter((p) => p.show)
      .map((p) => {
        const x = stepPixel(p.step, EXTENT, width);
        const y0 = p.labelY * height;
        const across = p.side === 'left' ? [x - 3 - LABEL_FONT_SIZE, x - 3] : [x + 3, x + 3 + LABEL_FONT_SIZE];
        return { p, x0: across[0], x1: across[1], y0, y1: y0 + textWidth(p.label, LABEL_FONT_SIZE) };
      });
  }
  const disjoint = (bs: ReturnType<typeof boxes>) => {
    for (let i = 0; i < bs.length; i++)
      for (let j = i + 1; j < bs.length; j++) {
        const [a, b] = [bs[i], bs[j]];
        const apart = a.x1 <= b.x0 || b.x1 <= a.x0 || a.y1 <= b.y0 || b.y1 <= a.y0;
        expect(apart, `${a.p.label} / ${b.p.label}`).toBe(true);
      }
  };
  const mem = (step: number): RuleMark => ({ step, series: 'train (inferred)', what: 'memorised' });
  const id = (step: number): RuleMark => ({ step, series: 'ID test (inferred)', what: 'ID ≥0.9' });
  const ood = (step: number): RuleMark => ({ step, series: 'OOD test (inferred)', what: 'OOD ≥0.9' });

  it('two rules at one step: one label each side of the rule, dashes taking turns', () => {
    for (const [w, h] of [
      [340, 170],
      [560, 280],
    ]) {
      const placed = placeRuleLabels([mem(400), id(400)], EXTENT, w, h);
      expect(placed.map((p) => [p.label, p.side, p.show])).toEqual([
        ['memorised @400', 'left', true],
        ['ID ≥0.9 @400', 'right', true],
      ]);
      expect(placed.map((p) => p.dash)).toEqual(['0/2', '1/2']);
      disjoint(boxes([mem(400), id(400)], w, h));
    }
  });

  it('neighbouring steps, three rules at one step, a rule at the last step: never drawn over each other', () => {
    const cases: RuleMark[][] = [
      [mem(900), id(1000), ood(1100)],
      [mem(1000), id(1000), ood(1000)],
      [mem(400), id(500), ood(3000)],
      [mem(2900), id(3000), ood(3000)],
      [mem(300), id(400), ood(500)],
    ];
    for (const rules of cases) {
      for (const [w, h] of [
        [340, 170],
        [560, 280],
      ])
        disjoint(boxes(rules, w, h));
    }
    // three at one step in a grid panel do not fit stacked: one merged label in a neutral colour
    const merged = placeRuleLabels([mem(1000), id(1000), ood(1000)], EXTENT, 340, 170);
    expect(merged.filter((p) => p.show).map((p) => [p.label, p.neutral])).toEqual([
      ['memorised, ID ≥0.9, OOD ≥0.9 @1000', true],
    ]);
    expect(merged.map((p) => p.dash)).toEqual(['0/3', '1/3', '2/3']);
    // rules far apart: each its own label on the left
    const apart = placeRuleLabels([mem(300), ood(2000)], EXTENT, 340, 170);
    expect(stepPixel(2000, EXTENT, 340) - stepPixel(300, EXTENT, 340)).toBeGreaterThan(CLUSTER_PX);
    expect(apart.map((p) => [p.side, p.labelY, p.dash])).toEqual([
      ['left', 0.03, '0/1'],
      ['left', 0.03, '0/1'],
    ]);
  });

  it('in the rendered grid, labels of rules at the same step do not overlap', async () => {
    const runs = [
      run({ entities: 200, seed: 1 }, 400, 400, 2300),
      run({ entities: 1000, seed: 1 }, 1000, 600, 1000),
      run({ entities: 1000, seed: 0 }, 700, 700, 1100),
    ];
    const svg = (await renderChart(grokkingSpec(runs, { threshold: 0.9 }), { formats: ['svg'] })).svg;
    const labels = svgTexts(svg).filter((t) => / @\d+$/.test(t.text));
    expect(labels.map((t) => t.text).sort()).toEqual(
      [
        'memorised @400',
        'ID ≥0.9 @400',
        'OOD ≥0.9 @2300',
        'memorised @1000',
        'ID ≥0.9 @600',
        'OOD ≥0.9 @1000',
        'memorised @700',
        'ID ≥0.9 @700',
        'OOD ≥0.9 @1100',
      ].sort(),
    );
    expect(labels.every((t) => t.angle === 270)).toBe(true);
    for (let i = 0; i < labels.length; i++)
      for (let j = i + 1; j < labels.length; j++) {
        const [a, b] = [upwardBox(labels[i]), upwardBox(labels[j])];
        expect(overlapArea(a, b), `${labels[i].text} / ${labels[j].text}`).toBe(0);
      }
    // the two labels of one rule are on its two sides
    const at400 = labels.filter((t) => t.text.endsWith('@400'));
    expect(at400[0].x).toBeCloseTo(at400[1].x, 6);
    expect(Math.sign(at400[0].dy) * Math.sign(at400[1].dy)).toBe(-1);
  });
});

describe('step axis', () => {
  it('ticks within every decade (1-2-3-5 over a short range, 1-2-5 over a long one)', () => {
    expect(stepTicks({ max: 3000, minPositive: 100 })).toEqual([0, 100, 200, 300, 500, 1000, 2000, 3000]);
    expect(stepTicks({ max: 2400, minPositive: 100 })).toEqual([0, 100, 200, 300, 500, 1000, 2000]);
    expect(stepTicks({ max: 100_000, minPositive: 10 })).toEqual([
      0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000,
    ]);
    expect(stepTicks({ max: 1e7, minPositive: 1 })).toEqual([0, 1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7]);
    expect(stepTicks({ max: 40, minPositive: 10 })).toEqual([0, 10, 20, 30, 40]);
    expect(stepTicks({ max: 0, minPositive: 1 })).toEqual([0, 1]);
  });

  it('the rendered grokking curve labels 1k, 2k and 3k', async () => {
    const svg = (await renderChart(grokkingSpec([run({}, 700, 700, 1100)], { threshold: 0.9 }), { formats: ['svg'] }))
      .svg;
    const texts = new Set(svgTexts(svg).map((t) => t.text));
    for (const label of ['0', '100', '200', '300', '500', '1k', '2k', '3k']) expect(texts.has(label), label).toBe(true);
  });
});

describe('sweep plots', () => {
  // memorisation 400-1000, generalisation up to 3000: a linear step axis (spans under a factor of 10)
  const narrow = [
    run({ entities: 200, seed: 0 }, 400, 500, 2800, { ood_inferred: 0.923, id_inferred: 0.97, train_inferred: 1 }),
    run({ entities: 200, seed: 1 }, 400, 400, 2300, { ood_inferred: 0.956, id_inferred: 0.98, train_inferred: 1 }),
    run({ entities: 400, seed: 0 }, 400, 400, 1900, { ood_inferred: 0.945, id_inferred: 0.97, train_inferred: 1 }),
    run({ entities: 400, seed: 1 }, 500, 500, 3000, { ood_inferred: 0.944, id_inferred: 0.97, train_inferred: 1 }),
    run({ entities: 1000, seed: 0 }, 700, 700, 1100, { ood_inferred: 0.955, id_inferred: 0.99, train_inferred: 1 }),
    run({ entities: 1000, seed: 1 }, 1000, 600, 1000, { ood_inferred: 0.963, id_inferred: 0.99, train_inferred: 1 }),
  ];
  const thresholds = [0.9];

  it('metrics: steps read 500, 1k, 1.5k (never 0.5k); final accuracy zoomed to the data, and said so', async () => {
    const spec = metricsSpec(narrow, sweepKnobs(narrow, thresholds), 0.9) as unknown as {
      concat: { title: { text: string; subtitle: string | string[] }; layer: { encoding: { y: VlY } }[] }[];
    };
    interface VlY {
      title: string;
      scale: { domain?: number[]; type?: string };
    }
    const final = spec.concat[2];
    expect(final.title.text).toBe('final accuracy vs entities');
    expect(final.title.subtitle).toEqual(['inferred facts, final model', 'y axis zoomed: from 90 %, not 0']);
    const y = final.layer[final.layer.length - 1].encoding.y;
    expect(y.scale.domain).toEqual([0.9, 1]);
    expect(y.title).toBe('accuracy (axis from 90 %)');
    expect(spec.concat[0].layer[0].encoding.y.scale.type).toBeUndefined(); // linear steps

    const texts = svgTexts((await renderChart(spec as never, { formats: ['svg'] })).svg).map((t) => t.text);
    expect(texts.filter((t) => /^0\.\d+k$/.test(t))).toEqual([]);
    expect(texts).toEqual(expect.arrayContaining(['500', '1k', '1.5k', '2k', '2.5k', '3k', '90%', '100%']));
  });

  it('accuracyFloor: the 5 % below the smallest value when all are ≥ 0.5, else 0', () => {
    expect(accuracyFloor([0.847, 1])).toBe(0.8);
    expect(accuracyFloor([0.95, 0.99])).toBe(0.9);
    expect(accuracyFloor([0.8, 1])).toBe(0.75);
    expect(accuracyFloor([0.3, 1])).toBe(0);
    expect(accuracyFloor([1, 1])).toBe(0.95);
  });

  it('overlay: a distinct hue per knob value, a dash pattern per seed, in the rendered SVG', async () => {
    const entities = [100, 150, 200, 300, 400, 600, 800, 1000];
    const runs = entities.flatMap((e, i) =>
      [0, 1, 2].map((seed) => run({ entities: e, seed }, 300 + i * 100, 500, null)),
    );
    const svg = (await renderChart(overlaySpec(runs, sweepKnobs(runs, thresholds), 0.9), { formats: ['svg'] })).svg;
    const lines = [...svg.matchAll(/<path[^>]*aria-roledescription="line mark"[^>]*>/g)].map((m) => m[0]);
    expect(lines).toHaveLength(entities.length * 3 * 2); // 24 runs, ID and OOD panels
    const stroke = (p: string) => /stroke="([^"]+)"/.exec(p)![1];
    const dash = (p: string) => /stroke-dasharray="([^"]+)"/.exec(p)?.[1] ?? 'solid';
    const hues = [...new Set(lines.map(stroke))];
    expect(hues).toHaveLength(entities.length);
    // neighbouring values far apart in colour: every pair differs by at least 60 in some RGB channel
    const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    for (let i = 0; i < hues.length; i++)
      for (let j = i + 1; j < hues.length; j++) {
        const [a, b] = [rgb(hues[i]), rgb(hues[j])];
        expect(Math.max(...a.map((v, k) => Math.abs(v - b[k]))), `${hues[i]} / ${hues[j]}`).toBeGreaterThanOrEqual(60);
      }
    expect(new Set(lines.map(dash)).size).toBe(3);
    expect(svg).toContain('dashed by seed');
  });
});

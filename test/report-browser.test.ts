/**
 * The HTML report in a real browser: Debian's `chromium` driven by `playwright-core` (no browser
 * download). Skipped, with a message, only when /usr/bin/chromium is absent; CI installs it.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './fixtures/engine-harness.js';
import type { ReportFixture } from './fixtures/report-store.js';
import { preparedStore, reportStages } from './fixtures/report-store.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.warn(
    `report-browser: ${CHROMIUM} not found, skipping the browser tests (install it: apt-get install -y chromium)`,
  );

/** What loading a page showed: console errors, uncaught errors and every request made. */
interface Loaded {
  page: Page;
  errors: string[];
  requests: string[];
}

/** What `LAYOUT` measures: the page's horizontal overflow and, per plot, its columns, overflow and right edge. */
interface Layout {
  page: number;
  plots: { id: string; columns: string | null; overflow: number; right: number }[];
}

/** Run in the page (as text: the tests are type-checked without the DOM's types). */
const LAYOUT = `({
  page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  plots: [...document.querySelectorAll('div.plot')].map((el) => ({
    id: el.id,
    columns: el.getAttribute('data-columns'),
    overflow: el.scrollWidth - el.clientWidth,
    right: el.getBoundingClientRect().right,
  })),
})`;

describe.skipIf(!hasChromium)('the report in headless Chromium', () => {
  let browser: Browser;
  let fx: ReportFixture;

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    [browser, fx] = await Promise.all([
      chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true }),
      preparedStore([100, 200, 400], [0, 1]),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function load(file: string, width = 1400): Promise<Loaded> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    await page.waitForSelector('body[data-plots="done"]', { timeout: 30_000 });
    return { page, errors, requests };
  }

  /** Per plot container: its id, render flag, SVG count and data marks (lines, points, rules). */
  const plotsOf = (page: Page) =>
    page.$$eval('div.plot', (els) =>
      els.map((el) => ({
        id: el.id,
        rendered: el.getAttribute('data-rendered'),
        svgs: el.querySelectorAll('svg').length,
        marks: el.querySelectorAll(
          'svg g.role-mark.mark-line path, svg g.role-mark.mark-symbol path, svg g.role-mark.mark-rule line',
        ).length,
      })),
    );

  it('a finished sweep: no console errors, no requests, every plot drawn, one table row per run', async () => {
    const res = await cli(['report', fx.file, '--store', fx.store], { stages: reportStages });
    expect(res.code, res.stderr).toBe(0);
    const file = res.stdout.trim();
    const { page, errors, requests } = await load(file);
    expect(errors).toEqual([]);
    expect(requests).toEqual([pathToFileURL(file).href]);

    const plots = await plotsOf(page);
    expect(plots.map((p) => p.id)).toEqual(['plot1-grokking', 'plot1-overlay', 'plot1-metrics', 'plot1-trend']);
    for (const p of plots) {
      expect(p.rendered, p.id).toBe('true');
      expect(p.svgs, p.id).toBeGreaterThanOrEqual(1);
      expect(p.marks, p.id).toBeGreaterThan(5);
    }
    // 6 runs: a grokking panel each, 6 lines per panel in the overlay
    expect(await page.$$eval('#plot1-grokking svg g.role-mark.mark-line path', (e) => e.length)).toBeGreaterThanOrEqual(
      6 * 5,
    );

    const rows = await page.$$eval('table.runs tbody tr', (trs) =>
      trs.map((tr) => [tr.getAttribute('data-run'), tr.className]),
    );
    expect(rows).toEqual([
      ['entities=100,seed=0', 'analysed'],
      ['entities=100,seed=1', 'analysed'],
      ['entities=200,seed=0', 'analysed'],
      ['entities=200,seed=1', 'analysed'],
      ['entities=400,seed=0', 'analysed'],
      ['entities=400,seed=1', 'analysed'],
    ]);
    expect(await page.$$eval('table.sweep tbody tr', (trs) => trs.length)).toBe(3);
    expect(await page.$$eval('svg.dag g.dag-node', (e) => e.length)).toBe(2);

    // artifact links resolve, from the page, to folders in the store
    const links = await page.$$eval('table.runs td.links a', (as) =>
      as.map((a) => (a as unknown as { href: string }).href),
    );
    expect(links).toHaveLength(6);
    for (const href of links) {
      expect(href.startsWith('file:///')).toBe(true);
      expect(statSync(fileURLToPath(href)).isDirectory()).toBe(true);
      expect(dirname(fileURLToPath(href))).toBe(join(fx.store, 'synthetic'));
    }
    await page.close();
  });

  it('a sweep still running: the missing runs are listed as not computed, the plots still drawn', async () => {
    const out = join(fx.dir, 'running.html');
    const res = await cli(['report', fx.file, '--store', fx.store, '--out', out, '--set', 'matrix.seed=[0, 1, 2]'], {
      stages: reportStages,
    });
    expect(res.code, res.stderr).toBe(0);
    const { page, errors, requests } = await load(out);
    expect(errors).toEqual([]);
    expect(requests).toEqual([pathToFileURL(out).href]);
    const rows = await page.$$eval('table.runs tbody tr', (trs) => trs.map((tr) => tr.className));
    expect(rows).toHaveLength(9);
    expect(rows.filter((c) => c === 'not-computed')).toHaveLength(3);
    const plots = await plotsOf(page);
    expect(plots).toHaveLength(4); // grokking, overlay, metrics, trend
    for (const p of plots) expect(p.marks, p.id).toBeGreaterThan(5);
    await page.close();
  });

  it('at 1,024 and 1,600 px: no plot wider than the page; grids in as many columns as fit', async () => {
    const out = join(fx.dir, 'widths.html');
    const res = await cli(['report', fx.file, '--store', fx.store, '--out', out], { stages: reportStages });
    expect(res.code, res.stderr).toBe(0);
    const columns: Record<number, Record<string, string | null>> = {};
    for (const width of [1024, 1600]) {
      const { page, errors } = await load(out, width);
      expect(errors).toEqual([]);
      const layout = await page.evaluate<Layout>(LAYOUT);
      expect(layout.page, `page overflow at ${width} px`).toBe(0);
      for (const p of layout.plots) {
        expect(p.overflow, `${p.id} at ${width} px`).toBe(0);
        expect(p.right, `${p.id} at ${width} px`).toBeLessThanOrEqual(width);
      }
      columns[width] = Object.fromEntries(layout.plots.map((p) => [p.id, p.columns]));
      await page.close();
    }
    // 6 runs: three columns of grokking panels at 1,600 px, two at 1,024 px; the metrics row (3) fits both;
    // the trend plot (steps to generalise against the knob, issue 15) is one chart, not a grid
    expect(columns[1600]).toEqual({
      'plot1-grokking': '3',
      'plot1-overlay': '2',
      'plot1-metrics': '3',
      'plot1-trend': null,
    });
    expect(columns[1024]).toEqual({
      'plot1-grokking': '2',
      'plot1-overlay': '2',
      'plot1-metrics': '3',
      'plot1-trend': null,
    });
    // narrowing the window lays the grid out again
    const { page } = await load(out, 1600);
    await page.setViewportSize({ width: 1024, height: 900 });
    await page.waitForSelector('#plot1-grokking[data-columns="2"]', { timeout: 10_000 });
    expect((await page.evaluate<Layout>(LAYOUT)).page).toBe(0);
    await page.close();
  });
});

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compilePipeline } from '../src/engine/pipeline/pipeline.js';
import { createRegistry } from '../src/engine/registry.js';
import { Store } from '../src/engine/cache/store.js';
import { readTable } from '../src/table/parquet.js';
import { toRows } from '../src/table/table.js';
import { inlineScripts } from '../src/report/assets.js';
import { dagSvg } from '../src/report/dag.js';
import { gatherReport } from '../src/report/data.js';
import { escapeHtml, relativeHref, scriptJson, scriptSource } from '../src/report/escape.js';
import { reportFileName } from '../src/report/build.js';
import { openFile, openerCommand } from '../src/report/open.js';
import { cli } from './fixtures/engine-harness.js';
import type { ReportFixture } from './fixtures/report-store.js';
import { preparedStore, reportStages } from './fixtures/report-store.js';

let fx: ReportFixture;
beforeAll(async () => {
  fx = await preparedStore([100, 200, 400], [0, 1]);
});

const report = (...args: string[]) => cli(['report', fx.file, '--store', fx.store, ...args], { stages: reportStages });

/** Every `href="..."` of the page. */
const hrefs = (html: string) =>
  [...html.replace(/(<script\b[^>]*>)[\s\S]*?(<\/script>)/g, '$1$2').matchAll(/href="([^"]*)"/g)].map((m) =>
    m[1].replace(/&amp;/g, '&'),
  );

describe('grokpipe report', () => {
  it('writes <store>/reports/<name>.html with every run analysed, from the analyze artifact', async () => {
    const res = await report();
    expect(res.code, res.stderr).toBe(0);
    const file = join(resolve(fx.store), 'reports', 'synthetic-sweep.html');
    expect(res.stdout).toBe(`${file}\n`);
    const html = readFileSync(file, 'utf8');

    // self-contained: inline scripts and styles only, no external resource, a CSP that forbids requests
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none';`);
    const scriptTags = html.match(/<script\b[^>]*>/g) ?? [];
    expect(scriptTags.filter((t) => /\ssrc=/.test(t))).toEqual([]);
    expect(scriptTags.filter((t) => /data-lib="vega(-lite|-embed)?@\d+\.\d+\.\d+"/.test(t))).toHaveLength(3);
    const markup = html.replace(/(<script\b[^>]*>)[\s\S]*?(<\/script>)/g, '$1$2');
    expect(markup.length).toBeLessThan(html.length / 5);
    expect(/<(link|img|iframe|object|embed)\b/i.test(markup)).toBe(false);
    expect(/\ssrc=/i.test(markup)).toBe(false);

    // description (escaped), DAG, runs table
    expect(html).toContain('<h1>synthetic-sweep</h1>');
    expect(html).toContain('(synthetic curves, &lt;no training&gt;)');
    expect(html).toMatch(/<g class="dag-node" data-stage="scores"/);
    expect(html).toMatch(/<g class="dag-node" data-stage="report"/);
    expect((html.match(/<tr class="analysed"/g) ?? []).length).toBe(6);
    expect(html).not.toContain('class="not-computed"');
    expect(html).toContain('<table class="sweep">');

    // links: relative, each to a folder or file that exists
    const local = hrefs(html).filter((h) => !h.startsWith('#'));
    expect(local.length).toBeGreaterThan(20);
    for (const h of local) {
      expect(h).not.toMatch(/^[a-z]+:/);
      expect(existsSync(join(dirname(file), decodeURIComponent(h))), h).toBe(true);
    }
    expect(
      local.filter((h) => h.endsWith('/') && statSync(join(dirname(file), h)).isDirectory()).length,
    ).toBeGreaterThanOrEqual(7);
    expect(local.some((h) => h.endsWith('/metrics.parquet'))).toBe(true);
  });

  it('shows the stored metrics: the same numbers as metrics.parquet', async () => {
    const pipeline = compilePipeline(fx.file, createRegistry(reportStages));
    const data = await gatherReport(pipeline, new Store(fx.store));
    expect(data.stages.map((s) => [s.id, s.uses, s.needs, s.runs, s.cached])).toEqual([
      ['scores', 'synthetic', [], 6, 6],
      ['report', 'analyze', ['scores'], 1, 1],
    ]);
    const [a] = data.analyses;
    expect(a.source).toBe('stored');
    expect(a.knobs).toEqual(['entities', 'seed']);
    const stored = toRows(await readTable(join(a.artifact.dir as string, 'metrics.parquet')));
    expect(a.runs.map((r) => r.metrics)).toEqual(stored);
    expect(a.analysed.map((r) => r.name)).toEqual(stored.map((r) => r.run));
    // metrics recomputed from curves.parquet for the plots agree with the stored ones
    a.analysed.forEach((r, i) => expect(r.metrics.memorise?.step ?? null).toBe(stored[i].memorise_step));
    expect(a.runs[0].artifacts.map((x) => x.id)).toEqual(['scores[entities=100,seed=0]']);
    expect(a.sweep.filter((r) => r.metric === 'ood_step_0.9').map((r) => r.reached)).toEqual([2, 2, 0]);
  });

  it('a sweep still running: finished runs analysed for the report, the others listed as not computed', async () => {
    const out = join(fx.dir, 'partial', 'report.html');
    const res = await report('--set', 'matrix.entities=[100, 200, 400, 800]', '--out', out);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`${out}\n`);
    const html = readFileSync(out, 'utf8');
    expect((html.match(/<tr class="analysed"/g) ?? []).length).toBe(6);
    expect((html.match(/<tr class="not-computed"/g) ?? []).length).toBe(2);
    expect(html).toContain('has not run yet: metrics computed for this report from the 6 of 8 runs');
    expect(html).toContain('waiting for scores[entities=800,seed=1]');

    const pipeline = compilePipeline(fx.file, createRegistry(reportStages), {
      sets: ['matrix.entities=[100, 200, 400, 800]'],
    });
    const [a] = (await gatherReport(pipeline, new Store(fx.store))).analyses;
    expect(a.source).toBe('partial');
    expect(a.runs.map((r) => `${r.name}:${r.status}`).slice(-3)).toEqual([
      'entities=400,seed=1:analysed',
      'entities=800,seed=0:not computed',
      'entities=800,seed=1:not computed',
    ]);
    expect(a.runs[7].pending).toEqual(['scores[entities=800,seed=1]']);
    // the partial numbers are the stored ones for the runs that are done
    const stored = toRows(
      await readTable(
        join(
          fx.store,
          'analyze',
          (await gatherReport(compilePipeline(fx.file, createRegistry(reportStages)), new Store(fx.store))).analyses[0]
            .artifact.key as string,
          'metrics.parquet',
        ),
      ),
    );
    expect(a.runs.slice(0, 6).map((r) => r.metrics)).toEqual(stored);
  });

  it('before anything ran: no metrics, every run not computed; bad input exits 2', async () => {
    const res = await cli(
      ['report', fx.file, '--store', join(fx.dir, 'empty-store'), '--out', join(fx.dir, 'empty.html')],
      { stages: reportStages },
    );
    expect(res.code, res.stderr).toBe(0);
    const html = readFileSync(join(fx.dir, 'empty.html'), 'utf8');
    expect((html.match(/<tr class="not-computed"/g) ?? []).length).toBe(6);
    expect(html).toContain('No run has finished yet');
    expect(html).toContain('"grokpipe-plots">[]</script>');
    const bad = await cli(['report', join(fx.dir, 'missing.yaml'), '--store', fx.store], { stages: reportStages });
    expect(bad.code).toBe(2);
  });
});

describe('report pieces', () => {
  it('escapes text, JSON and scripts for inline use', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const json = scriptJson({ s: '</script><!-- \u2028 &' });
    expect(json).not.toMatch(/<|>|&|\u2028/);
    expect(JSON.parse(json)).toEqual({ s: '</script><!-- \u2028 &' });
    expect(scriptSource('var a = "</script>", b = /<\\/SCRIPT/; // <!-- x')).toBe(
      'var a = "<\\/script>", b = /<\\/SCRIPT/; // <\\!-- x',
    );
    expect(relativeHref('/s/reports', '/s/analyze/ab cd', true)).toBe('../analyze/ab%20cd/');
    expect(relativeHref('/s/reports', '/s/reports/x#1.parquet')).toBe('x%231.parquet');
  });

  it('the inlined libraries are browser builds with no closing script tag', async () => {
    const scripts = await inlineScripts();
    expect(scripts.map((s) => s.name)).toEqual(['vega', 'vega-lite', 'vega-embed']);
    for (const s of scripts) {
      expect(s.code.length).toBeGreaterThan(50_000);
      expect(scriptSource(s.code)).not.toMatch(/<\/script/i);
    }
    expect(scripts[2].code).toContain('vegaEmbed');
  });

  it('DAG: a box per stage and an arrow per need', () => {
    const svg = dagSvg([
      { id: 'kb', uses: 'generate', needs: [], across: false, runs: 2, cached: 2 },
      { id: 'facts', uses: 'split', needs: ['kb'], across: false, runs: 2, cached: 1 },
      { id: 'tokens', uses: 'tokenize', needs: ['facts'], across: false, runs: 2, cached: 0 },
      { id: 'scores', uses: 'evaluate', needs: ['tokens', 'kb'], across: false, runs: 2, cached: 0 },
      { id: 'report', uses: 'analyze', needs: ['scores'], across: true, runs: 1, cached: 0 },
    ]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect((svg.match(/class="dag-node"/g) ?? []).length).toBe(5);
    expect((svg.match(/class="dag-edge"/g) ?? []).length).toBe(5);
    expect(svg).toContain('analyze (across matrix)');
    expect(svg).toContain('1/2 runs cached');
    expect(dagSvg([])).toBe('');
  });

  it('file name from the pipeline name; opener never throws', async () => {
    const p = (name: string, file = 'p.yaml') => ({ name, file, runs: [], locate: () => undefined }) as never;
    expect(reportFileName(p('entities sweep/v2'))).toBe('entities-sweep-v2.html');
    expect(reportFileName(p('pipelines/quickstart.yaml', 'pipelines/quickstart.yaml'))).toBe('quickstart.html');
    expect(openerCommand('linux')).toEqual(['xdg-open']);
    expect(openerCommand('darwin')).toEqual(['open']);
    expect(await openFile('/nonexistent.html', ['grokpipe-no-such-opener'])).toBe('grokpipe-no-such-opener not found');
    expect(await openFile('/nonexistent.html', ['true'])).toBeNull();
  });
});

/**
 * The `probe` stage through the CLI and the real engine: the smoke pipeline with a probe stage
 * added runs, its artifact holds `probe.parquet` and the heatmap, `run` prints its summary lines,
 * a bad test type is a pipeline error (file, line, field; exit 2), and `grokpipe report` shows the
 * logit-lens section with its interactive heatmap.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinStages } from '../src/stages/index.js';
import { readTable } from '../src/table/parquet.js';
import { probeRows } from '../src/analysis/probe.js';
import { cli, statuses, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const SMOKE = readFileSync(new URL('../pipelines/smoke.yaml', import.meta.url), 'utf8');
const PROBE = `
  lens:
    uses: probe
    needs: [model, tokens]
    with: { types: [id_inferred, ood_inferred], max_per_type: 20, formats: [svg] }
`;

describe('the probe stage in a pipeline', () => {
  it('runs after train, prints its summary, and shows in the report', async () => {
    const dir = tempDir('gp-probe-');
    const file = writeFileIn(dir, 'smoke.yaml', `${SMOKE.trimEnd()}\n${PROBE}`);
    const store = join(dir, 'artifacts');
    const res = await cli(['run', file, '--store', store, '--jobs', '1'], { stages: builtinStages });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/ood_inferred at step 40: lens accuracy by layer \d+% \d+%; /);

    const json = await cli(['status', file, '--store', store, '--json'], { stages: builtinStages });
    expect(statuses(json).lens).toBe('cached');
    const out = join(store, 'probe', json.run('lens').key!);
    for (const f of ['probe.parquet', 'probe.svg', 'manifest.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(existsSync(join(out, 'probe.png'))).toBe(false);
    const rows = probeRows(await readTable(join(out, 'probe.parquet')));
    // smoke trains one block for 40 steps: layers 0 and 1, at the kept checkpoints (the 1-2-5
    // series below 40: 0, 1, 2, 5, 10, 20) and the final weights
    expect(rows.map((r) => `${r.step}/${r.type}/${r.layer}/${r.n}`)).toEqual(
      [0, 1, 2, 5, 10, 20, 40].flatMap((s) =>
        ['id_inferred', 'ood_inferred'].flatMap((t) => [0, 1].map((l) => `${s}/${t}/${l}/20`)),
      ),
    );

    const report = await cli(['report', file, '--store', store], { stages: builtinStages });
    expect(report.code, report.stderr).toBe(0);
    const html = readFileSync(report.stdout.trim(), 'utf8');
    expect(html).toContain('<section id="probes"><h2>Logit lens</h2>');
    expect(html).toContain('<a href="#probes">logit lens</a>');
    expect(html).toContain('<div class="plot" id="probe1" data-plot="probe1"></div>');
    const plots = JSON.parse(
      /<script type="application\/json" id="grokpipe-plots">([\s\S]*?)<\/script>/.exec(html)![1],
    ) as { id: string; title: string }[];
    expect(plots.map((p) => p.id)).toContain('probe1');
    expect(plots.find((p) => p.id === 'probe1')?.title).toBe('lens');
  }, 120_000);

  it('rejects a test type split does not write, with file, line and field', async () => {
    const dir = tempDir('gp-probe-bad-');
    const file = writeFileIn(dir, 'smoke.yaml', `${SMOKE.trimEnd()}\n${PROBE.replace('id_inferred', 'ood')}`);
    const res = await cli(['run', file, '--store', join(dir, 'artifacts')], { stages: builtinStages });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/smoke\.yaml:\d+:\d+: stages\.lens\.with\.types/);
    expect(existsSync(join(dir, 'artifacts'))).toBe(false);
  });
});

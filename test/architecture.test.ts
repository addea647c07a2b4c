/**
 * The architecture test: dependency-cruiser checks `src/` against the rooms' rules of
 * `.dependency-cruiser.js` (docs/design.md §1) and fails on any violation, printing each one.
 *
 * So that it cannot pass by checking nothing, the same rules also run on a small fixture tree
 * written here: it must break every rule at least once (a rule that can never fire, or an import
 * the resolver silently lost, fails the test), and its legitimate imports must break none.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, format } from 'dependency-cruiser';
import type { ICruiseOptions, ICruiseResult, IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Cruises `paths` (relative to `baseDir`) with the repository's rules; returns the result. */
async function check(options: ICruiseOptions, paths: string[], baseDir: string): Promise<ICruiseResult> {
  const tsConfigFile = join(root, 'tsconfig.json');
  const tsConfig = extractTSConfig(tsConfigFile);
  const cwd = process.cwd();
  // dependency-cruiser resolves the files to cruise against the working directory.
  process.chdir(baseDir);
  try {
    const { output } = await cruise(
      paths,
      { ...options, baseDir, tsConfig: { fileName: tsConfigFile } },
      {},
      { tsConfig },
    );
    if (typeof output === 'string') throw new Error(`dependency-cruiser returned text: ${output}`);
    return output;
  } finally {
    process.chdir(cwd);
  }
}

/** The violations as dependency-cruiser's `err` reporter prints them. */
async function describeViolations(result: ICruiseResult): Promise<string> {
  const { output } = await format(result, { outputType: 'err' });
  return String(output);
}

/** `rule: from -> to` for each violation (a cycle as `rule: {its modules, sorted}`), sorted. */
function summary(violations: readonly IViolation[]): string[] {
  return violations
    .map((v) => {
      if (!v.cycle) return `${v.rule.name}: ${v.from} -> ${v.to}`;
      const members = [...new Set([v.from, ...v.cycle.map((c) => c.name)])].sort();
      return `${v.rule.name}: {${members.join(', ')}}`;
    })
    .sort();
}

/**
 * A module tree of the target layout (docs/design.md §1) whose every import is legitimate: file ->
 * the modules it imports (`type:` marks a type-only import).
 */
const legitimate: Record<string, string[]> = {
  'src/cli.ts': ['./stages/index.js', './engine/runner.js', './report/build.js', './commands/run.js'],
  'src/commands/run.ts': ['../engine/runner.js', '../stages/index.js', '../models/arch/registry.js'],
  'src/engine/runner.ts': ['./stage.js', './errors.js', './cache/store.js', './exec/job.js', 'type:../table/table.js'],
  'src/engine/stage.ts': ['type:../table/table.js'],
  'src/engine/errors.ts': [],
  'src/engine/cache/store.ts': ['../errors.js'],
  'src/engine/exec/job.ts': ['../stage.js', '../../table/parquet.js'],
  'src/table/table.ts': [],
  'src/table/parquet.ts': ['./table.js'],
  'src/stages/index.ts': ['type:../engine/stage.js', './generate.js', './train.js', './evaluate.js', './analyze.js'],
  'src/stages/generate.ts': ['type:../engine/stage.js', '../engine/errors.js', '../table/table.js', '../task/kb.js'],
  'src/stages/examples.ts': ['type:../engine/stage.js', '../table/table.js', '../models/arch/registry.js'],
  'src/stages/train.ts': ['type:../engine/stage.js', './examples.js', '../models/arch/registry.js'],
  'src/stages/evaluate.ts': ['type:../engine/stage.js', './examples.js'],
  'src/stages/analyze.ts': ['type:../engine/stage.js', '../analysis/tables.js', '../plot/sweep.js'],
  'src/stages/probe.ts': ['type:../engine/stage.js', './examples.js', '../models/layers.js', '../plot/sweep.js'],
  'src/task/kb.ts': ['../table/table.js', './streams.js'],
  'src/task/streams.ts': [],
  'src/models/arch/registry.ts': ['./gpt2.js'],
  'src/models/arch/gpt2.ts': ['../layers.js'],
  'src/models/layers.ts': [],
  'src/analysis/tables.ts': ['type:../engine/stage.js', '../table/table.js'],
  'src/plot/sweep.ts': ['../analysis/tables.js'],
  'src/report/build.ts': ['../engine/cache/store.js', '../analysis/tables.js', '../plot/sweep.js'],
};

/** A module tree that breaks every rule: file -> imports (the last import of each is the breach). */
const breaches: Record<string, string[]> = {
  'src/models/a.ts': ['./b.js'],
  'src/models/b.ts': ['./a.js'],
  'src/task/lost.ts': ['./missing.js'],
  'src/engine/stage.ts': ['type:../models/backend-names.js'],
  'src/engine/errors.ts': [],
  'src/engine/cache/store.ts': [],
  'src/table/table.ts': ['../engine/errors.js'],
  'src/models/backend-names.ts': ['../table/table.js'],
  'src/models/layers.ts': [],
  'src/task/labels.ts': [],
  'src/task/kb.ts': ['../engine/errors.js'],
  'src/analysis/curves.ts': ['../plot/render.js'],
  'src/plot/render.ts': ['../task/labels.js'],
  'src/stages/helper.ts': ['type:../engine/stage.js', '../engine/cache/store.js', './train.js'],
  'src/stages/generate.ts': ['../models/layers.js'],
  'src/stages/train.ts': ['../task/labels.js'],
  'src/stages/analyze.ts': ['../models/layers.js'],
  'src/stages/probe.ts': ['../task/labels.js'],
  'src/stages/index.ts': ['./generate.js', '../task/labels.js'],
  'src/report/data.ts': ['../stages/helper.js'],
};

/** What the rules must report on `breaches`, and nothing more. */
const expectedBreaches = [
  'no-circular: {src/models/a.ts, src/models/b.ts}',
  'not-to-unresolvable: src/task/lost.ts -> ./missing.js',
  'engine-knows-no-grokking: src/engine/stage.ts -> src/models/backend-names.ts',
  'table-is-a-leaf: src/table/table.ts -> src/engine/errors.ts',
  'models-self-contained: src/models/backend-names.ts -> src/table/table.ts',
  'task-self-contained: src/task/kb.ts -> src/engine/errors.ts',
  'analysis-below-plot: src/analysis/curves.ts -> src/plot/render.ts',
  'plot-draws-analysis: src/plot/render.ts -> src/task/labels.ts',
  'stages-see-only-the-contract: src/stages/helper.ts -> src/engine/cache/store.ts',
  'stage-not-to-stage: src/stages/helper.ts -> src/stages/train.ts',
  'data-stages-use-the-task: src/stages/generate.ts -> src/models/layers.ts',
  'model-stages-use-the-models: src/stages/train.ts -> src/task/labels.ts',
  'analysis-stage-uses-analysis: src/stages/analyze.ts -> src/models/layers.ts',
  'probe-stage-reads-models-draws-plot: src/stages/probe.ts -> src/task/labels.ts',
  'stage-list-lists-stages: src/stages/index.ts -> src/task/labels.ts',
  'stages-only-from-the-composition-root: src/report/data.ts -> src/stages/helper.ts',
];

/** Writes a module tree under `dir` (each module imports `x` from each of its imports); returns `dir`. */
function writeTree(dir: string, tree: Record<string, string[]>): string {
  for (const [file, imports] of Object.entries(tree)) {
    const path = join(dir, file);
    mkdirSync(dirname(path), { recursive: true });
    const lines = imports.map((spec, i) =>
      spec.startsWith('type:')
        ? `import type { X as X${i} } from '${spec.slice(5)}';`
        : `import { x as x${i} } from '${spec}';`,
    );
    lines.push(
      'export type X = number;',
      `export const x: X = ${imports.map((s, i) => (s.startsWith('type:') ? '0' : `x${i}`)).join(' + ') || '0'};`,
    );
    writeFileSync(path, `${lines.join('\n')}\n`);
  }
  return dir;
}

let options: ICruiseOptions;

beforeAll(async () => {
  options = await extractDepcruiseOptions(join(root, '.dependency-cruiser.js'));
});

describe('architecture', () => {
  it('src/ keeps the rooms and their one-way doors', async () => {
    const result = await check(options, ['src'], root);
    // The cruise saw the tree: every module of src/ and a known legitimate import.
    expect(result.summary.totalCruised).toBeGreaterThan(100);
    const train = result.modules.find((m) => m.source === 'src/stages/train.ts');
    expect(train?.dependencies.map((d) => d.resolved)).toContain('src/engine/stage.ts');
    expect(summary(result.summary.violations), await describeViolations(result)).toEqual([]);
  });

  describe('fixtures', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'grokpipe-arch-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('allow the imports of the target layout', async () => {
      const result = await check(options, ['src'], writeTree(join(dir, 'good'), legitimate));
      expect(result.summary.totalCruised).toBe(Object.keys(legitimate).length);
      expect(summary(result.summary.violations), await describeViolations(result)).toEqual([]);
    });

    it('catch a breach of every rule, and only the breaches', async () => {
      const result = await check(options, ['src'], writeTree(join(dir, 'bad'), breaches));
      const rules = (options.ruleSet?.forbidden ?? []).map((r) => String(r.name));
      expect(rules.length).toBeGreaterThan(10);
      const fired = new Set(result.summary.violations.map((v) => v.rule.name));
      const report = await describeViolations(result);
      for (const rule of rules) expect(fired, `rule ${rule} never fired:\n${report}`).toContain(rule);
      expect(summary(result.summary.violations), report).toEqual([...expectedBreaches].sort());
    });
  });
});

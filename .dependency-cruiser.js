/**
 * dependency-cruiser rules: the rooms of `src/` and their one-way doors (docs/design.md §1).
 *
 * `test/architecture.test.ts` runs these rules on `src/` inside `npm test` and fails on any
 * violation; `npx depcruise src` prints the same report. Type-only imports count: a room that
 * names another room's types depends on it. Paths are relative to the repository root.
 *
 * Rooms: `engine/` (the pipeline engine; its root holds the stage contract `stage.ts` and
 * `errors.ts`), `table/` (in-memory tables and Parquet, below the engine), `stages/` (one module a
 * stage), the domains the stages use (`task/` the comparison task, `models/` the networks and
 * their training, `analysis/` grokking metrics, `plot/` charts), `report/` (the HTML page of
 * `grokpipe report`), and the composition root (`cli.ts`, `commands/`), which may import anything.
 */

/** What every stage module may import inside `src/`: the stage contract, errors and tables. */
const CONTRACT = 'src/engine/(stage|errors)\\.ts$|src/table/';
/** The modules that define a stage type (the others in `stages/` are shared helpers or the list). */
const STAGE_DEFINITIONS = '^src/stages/(generate|split|tokenize|train|evaluate|analyze|probe)\\.ts$';

/**
 * A rule: modules whose path matches `from` import nothing inside `src/` but what matches
 * `allowed` (both regular expressions over paths from the repository root).
 */
function onlyImports(name, comment, from, allowed) {
  return { name, severity: 'error', comment, from: { path: from }, to: { path: '^src/', pathNot: allowed } };
}

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No circular imports: every room reads top to bottom (shared pieces go in a module both import).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that cannot be resolved would escape every other rule.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    onlyImports(
      'engine-knows-no-grokking',
      'The engine imports nothing from stages, models, task, analysis, plot, report or the CLI: inside src/ ' +
        'it may only use itself and table/ (the tables its stage contract passes around).',
      '^src/engine/',
      '^src/(engine|table)/',
    ),
    onlyImports(
      'table-is-a-leaf',
      'table/ sits below the engine: it imports nothing else from src/ (else the engine would reach through it).',
      '^src/table/',
      '^src/table/',
    ),
    onlyImports(
      'models-self-contained',
      'Models import nothing outside src/models/ (they can be lifted into another program as they are).',
      '^src/models/',
      '^src/models/',
    ),
    onlyImports(
      'task-self-contained',
      'The comparison task (task/) imports only itself and table/: its data rules know no engine, model or stage.',
      '^src/task/',
      '^src/(task|table)/',
    ),
    onlyImports(
      'analysis-below-plot',
      'analysis/ (metrics) imports only itself, table/ and the stage contract (Json); plot/ draws what it ' +
        'computes, not the reverse.',
      '^src/analysis/',
      '^src/(analysis|table)/|^src/engine/stage\\.ts$',
    ),
    onlyImports(
      'plot-draws-analysis',
      'plot/ imports only itself, analysis/ and table/.',
      '^src/plot/',
      '^src/(plot|analysis|table)/',
    ),
    {
      name: 'stages-see-only-the-contract',
      severity: 'error',
      comment:
        'A stage knows nothing of caching: of the engine it imports only the stage contract (engine/stage.ts) ' +
        'and engine/errors.ts.',
      from: { path: '^src/stages/' },
      to: { path: '^src/engine/', pathNot: '^src/engine/(stage|errors)\\.ts$' },
    },
    onlyImports(
      'data-stages-use-the-task',
      'generate, split and tokenize use the comparison task (task/) and tables, nothing else.',
      '^src/stages/(generate|split|tokenize)\\.ts$',
      `^(${CONTRACT}|src/task/)`,
    ),
    onlyImports(
      'model-stages-use-the-models',
      'train and evaluate (and their shared examples.ts, trained.ts, kept-files.ts) use models/, tables and the shared artifact file names, nothing else.',
      '^src/stages/(train|evaluate|examples|trained|kept-files)\\.ts$',
      `^(${CONTRACT}|src/models/|src/stages/(examples|files|trained|kept-files)\\.ts$|src/analysis/files\\.ts$)`,
    ),
    onlyImports(
      'probe-stage-reads-models-draws-plot',
      'probe (the logit lens) uses models/ like evaluate, and analysis/ and plot/ for its table and heatmap, nothing else.',
      '^src/stages/probe\\.ts$',
      `^(${CONTRACT}|src/models/|src/analysis/|src/plot/|src/stages/(examples|files|trained)\\.ts$)`,
    ),
    onlyImports(
      'analysis-stage-uses-analysis',
      'analyze uses analysis/ and plot/ and tables, nothing else.',
      '^src/stages/analyze\\.ts$',
      `^(${CONTRACT}|src/analysis/|src/plot/)`,
    ),
    onlyImports(
      'stage-list-lists-stages',
      'stages/index.ts lists the stage definitions: it imports stages/ and the stage contract only.',
      '^src/stages/index\\.ts$',
      `^(${CONTRACT}|src/stages/)`,
    ),
    {
      name: 'stage-not-to-stage',
      severity: 'error',
      comment:
        'A stage definition is imported only by the stage list (stages/index.ts) and the composition root; ' +
        'what two stages share (file names, readers) lives in a shared module, not in one of them.',
      from: { path: '^src/', pathNot: '^src/stages/index\\.ts$|^src/cli\\.ts$|^src/commands/' },
      to: { path: STAGE_DEFINITIONS },
    },
    {
      name: 'stages-only-from-the-composition-root',
      severity: 'error',
      comment: 'Only cli.ts and commands/ wire the stages in; nothing else in src/ imports stages/ from outside.',
      from: { path: '^src/', pathNot: '^src/(stages|commands)/|^src/cli\\.ts$' },
      to: { path: '^src/stages/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too (`import type`): a contract that names models' types
    // depends on models.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Packages resolve through their `exports` (`import './x.js'` naming `x.ts` is built in).
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};

/**
 * Run names: what people call the runs of an invocation (`grokpipe run --name`), recorded in the
 * store's sidecars (`../cache/meta.ts`) and shown by `grokpipe runs`.
 *
 * A name may use `${{ matrix.<name> }}` and `${{ vars.<name> }}`, rendered per combination: with
 * `--name 'wd${{ matrix.weight_decay }}'` the run `model[weight_decay=0.1]` is `wd0.1`; a run
 * that does not depend on every matrix variable the name uses (a data stage shared by the sweep)
 * gets no name. A name without matrix templates names every run of the invocation, followed by
 * the run's matrix values as in its id (`baseline[weight_decay=0.1]`), so that the runs of a sweep
 * keep apart.
 */
import type { Json } from '../stage.js';
import { runId } from './expand.js';
import type { StageRun } from './expand.js';
import { hasTemplates, renderTemplates, scanTemplates } from './template.js';
import type { TemplateProblem, TemplateScope } from './template.js';

/** Problems of a name template: unknown variables, unsupported expressions. */
export function checkRunName(template: string, scope: TemplateScope): TemplateProblem[] {
  return scanTemplates(template, scope).problems;
}

/**
 * The name of each run (see the module comment); runs without one are left out.
 * Assumes `checkRunName` found no problem.
 */
export function runNames(
  template: string,
  runs: readonly StageRun[],
  vars: Readonly<Record<string, Json>>,
): Map<StageRun, string> {
  const usesMatrix = /\$\{\{\s*matrix\./.test(template);
  const out = new Map<StageRun, string>();
  for (const run of runs) {
    const rendered = renderTemplates(template, run.matrix, vars) as string;
    if (hasTemplates(rendered)) continue;
    out.set(run, usesMatrix ? rendered : runId(rendered, run.matrix));
  }
  return out;
}

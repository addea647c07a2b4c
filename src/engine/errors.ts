/**
 * Errors the engine reports to people: bad input (exit code 2) with one line per problem, each
 * naming where it is (`file:line:col` or the `--set` argument) and the field path.
 */

import { LIMIT_OPTIONS, formatCount } from './pipeline/limits.js';

/** A JSON path into the pipeline document, e.g. `['stages', 'facts', 'with', 'phi']`. */
export type JsonPath = readonly (string | number)[];

/** One problem with the user's input. */
export interface Issue {
  /** Where it is: `file:line:col`, `--set k=v`, or a file name. */
  readonly where: string;
  /** Field path as shown to people (`stages.facts.with.phi`), or empty. */
  readonly path: string;
  /** What is wrong, in words. */
  readonly message: string;
}

/** Formats a JSON path for people: `stages.model.needs[0]`, `stages.model.with.optimizer.lr`. */
export function formatPath(path: JsonPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Formats one issue as `where: path: message` (the path part left out when empty). */
export function formatIssue(issue: Issue): string {
  return issue.path === '' ? `${issue.where}: ${issue.message}` : `${issue.where}: ${issue.path}: ${issue.message}`;
}

/**
 * Bad input: a pipeline file, `--set` override or option that cannot run. Carries every problem
 * found (not just the first), one per line in `message`. The CLI prints it and exits with 2.
 */
export class InputError extends Error {
  override name = 'InputError';
  /** Exit code of the CLI for this error. */
  readonly exitCode = 2;
  /** The problems, in the order found (duplicates removed). */
  readonly issues: readonly Issue[];
  /** Further problems found but not kept (beyond the `--max-errors` limit). */
  readonly more: number;

  /** @param more problems found beyond `issues` (counted only); named on a last line. */
  constructor(issues: readonly Issue[], more = 0) {
    const seen = new Set<string>();
    const unique = issues.filter((i) => {
      const line = formatIssue(i);
      if (seen.has(line)) return false;
      seen.add(line);
      return true;
    });
    const tail = more > 0 ? [`... and ${formatCount(more)} more problems (${LIMIT_OPTIONS.maxErrors} lists more)`] : [];
    super([...unique.map(formatIssue), ...tail].join('\n'));
    this.issues = unique;
    this.more = more;
  }
}

/**
 * Collects issues while a phase runs, then throws them all at once. Keeps the first `limit`
 * distinct ones and counts the rest, so that a sweep of bad values costs neither memory nor a
 * flood of lines.
 */
export class IssueList {
  readonly items: Issue[] = [];
  /** Problems added beyond `limit` (counted, not kept). */
  more = 0;
  private readonly seen = new Set<string>();

  /** @param limit most distinct issues kept (default: all). */
  constructor(private readonly limit = Infinity) {}

  /** Adds one problem (a repeat of a kept one is dropped). */
  add(where: string, path: JsonPath | string, message: string): void {
    const issue = { where, path: typeof path === 'string' ? path : formatPath(path), message };
    const line = formatIssue(issue);
    if (this.seen.has(line)) return;
    if (this.items.length >= this.limit) {
      this.more++;
      return;
    }
    this.seen.add(line);
    this.items.push(issue);
  }

  /** True when no problem was added. */
  get empty(): boolean {
    return this.items.length === 0 && this.more === 0;
  }

  /** The InputError of the collected issues (and the count of the others). */
  error(): InputError {
    return new InputError(this.items, this.more);
  }

  /** @throws InputError with every collected issue, when there is any. */
  throwIfAny(): void {
    if (!this.empty) throw this.error();
  }
}

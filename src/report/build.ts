/**
 * `grokpipe report`: gathers a compiled pipeline's report from the store and writes it as one
 * self-contained HTML file (default `<store>/reports/<pipeline name>.html`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { InputError } from '../engine/errors.js';
import type { Pipeline } from '../engine/pipeline/pipeline.js';
import { storeReadOnly } from '../engine/cache/store-access.js';
import type { Store } from '../engine/cache/store.js';
import { grokpipeVersion } from '../engine/cache/version.js';
import { inlineScripts } from './assets.js';
import type { ReportData } from './data.js';
import { gatherReport } from './data.js';
import { gatherAllRuns } from './all-runs.js';
import { reportHtml } from './html.js';

/** Options of `writeReport`. */
export interface WriteReportOptions {
  /** Output file (default `defaultReportFile`). */
  readonly out?: string;
  /** Generation time shown in the page (default now). */
  readonly now?: Date;
  /** Add the section of every stored run of the pipeline (`--all-runs`, `all-runs.ts`). */
  readonly allRuns?: boolean;
}

/** What `writeReport` wrote. */
export interface WrittenReport {
  /** Absolute path of the HTML file. */
  readonly file: string;
  /** What it shows. */
  readonly data: ReportData;
}

/**
 * File name of a pipeline's report: its `name:` with anything but letters, digits, `.`, `_` and
 * `-` replaced by `-` (the file's base name when the pipeline has no `name:`), plus `.html`.
 */
export function reportFileName(pipeline: Pipeline): string {
  const name = pipeline.name === pipeline.file ? basename(pipeline.file, extname(pipeline.file)) : pipeline.name;
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '');
  return `${safe || 'pipeline'}.html`;
}

/** Default report file: `<store>/reports/<reportFileName>`. */
export function defaultReportFile(pipeline: Pipeline, store: Store): string {
  return join(store.root, 'reports', reportFileName(pipeline));
}

/** The report's data, with the section of every stored run when `allRuns` (`all-runs.ts`). */
async function gatherWith(pipeline: Pipeline, store: Store, options: WriteReportOptions): Promise<ReportData> {
  const data = await gatherReport(pipeline, store);
  if (!options.allRuns) return data;
  const all = await gatherAllRuns(pipeline, store);
  return all ? { ...data, analyses: [...data.analyses, all] } : data;
}

/**
 * Writes the report of `pipeline` (reading `store` only; nothing is computed), creating the
 * output folder if needed.
 * @throws Error when a stored table cannot be read; InputError naming `--out` or `--store` when
 *   the file cannot be written (a read-only store).
 */
export async function writeReport(
  pipeline: Pipeline,
  store: Store,
  options: WriteReportOptions = {},
): Promise<WrittenReport> {
  const file = resolve(options.out ?? defaultReportFile(pipeline, store));
  const [data, scripts] = await Promise.all([gatherWith(pipeline, store, options), inlineScripts()]);
  const html = reportHtml(data, {
    outFile: file,
    scripts,
    version: grokpipeVersion(),
    generatedAt: options.now ?? new Date(),
  });
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, html);
  } catch (err) {
    // Where the report goes is the user's choice (`--out`, or the store): name it.
    const where = options.out !== undefined ? `--out ${options.out}` : `--store ${store.root}`;
    const hint = options.out !== undefined ? '' : '; give --out FILE to write it elsewhere';
    const why = storeReadOnly(dirname(file)) ?? (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new InputError([{ where, path: '', message: `cannot write the report ${file} (${why})${hint}` }]);
  }
  return { file, data };
}

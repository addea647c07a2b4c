/**
 * Picks the progress display of an invocation. Kept apart from `progress.ts` so that the listr2
 * view, which builds on `progress.ts`, is loaded only on a terminal and imports nothing that
 * imports it back.
 */
import { PlainReporter } from './progress.js';
import type { Reporter, TextSink } from './progress.js';

/**
 * The reporter for an invocation: the listr2 live view when `tty` (and not `json`), else plain
 * lines on `stderr`.
 */
export async function createReporter(options: { tty: boolean; json: boolean; stderr: TextSink }): Promise<Reporter> {
  if (options.tty && !options.json) {
    const { ListrReporter } = await import('./progress-listr.js');
    return new ListrReporter();
  }
  return new PlainReporter(options.stderr);
}

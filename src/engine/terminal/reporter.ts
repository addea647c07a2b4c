/**
 * Picks the progress display of an invocation. Kept apart from `progress.ts` so that the listr2
 * view, which builds on `progress.ts`, is loaded only on a terminal and imports nothing that
 * imports it back.
 */
import { PlainReporter } from './progress.js';
import type { Reporter, TextSink } from './progress.js';

/** What decides an invocation's progress display. */
export interface ReporterChoice {
  /** stdout is a terminal: the live view, unless `json` or `timestamps` ask for lines. */
  readonly tty: boolean;
  /** `--json`: plain lines on stderr, stdout kept for the JSON document. */
  readonly json: boolean;
  /**
   * Time-stamped lines (`--log-timestamps`, or by default when stderr is not a terminal);
   * `explicit` when asked for on the command line, which also turns the live view into lines.
   */
  readonly timestamps?: { readonly on: boolean; readonly explicit: boolean };
  readonly stderr: TextSink;
}

/**
 * The reporter for an invocation: the listr2 live view on a terminal (not with `--json` or an
 * explicit `--log-timestamps`), else plain lines on `stderr`, time-stamped when `timestamps.on`.
 */
export async function createReporter(options: ReporterChoice): Promise<Reporter> {
  const stamps = options.timestamps ?? { on: false, explicit: false };
  if (options.tty && !options.json && !(stamps.on && stamps.explicit)) {
    const { ListrReporter } = await import('./progress-listr.js');
    return new ListrReporter();
  }
  return new PlainReporter(options.stderr, undefined, { timestamps: stamps.on });
}

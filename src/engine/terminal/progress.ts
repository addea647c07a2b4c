/**
 * **The terminal wing** (`engine/terminal/`): what the engine shows people. `progress.ts` (this
 * module) defines the events of a run and the `Reporter` that shows them (plain lines here, the
 * listr2 live view in `progress-listr.ts`, chosen by `reporter.ts`); `summary.ts` is the run
 * summary printed after `run` and `status`; `show.ts` shows one store entry (`grokpipe show`);
 * `dag-format.ts` writes the stage-run graph as Mermaid, DOT or an indented list. Nothing here
 * decides what runs; it formats what the other wings report.
 *
 * Progress display. The runner reports events per stage run to a `Reporter`; this module has the
 * reporter interface, the plain-line reporter (non-TTY or `--json`: lines on stderr, progress
 * throttled to one line per 2 s per run), and the factory that picks the listr2 view on a TTY.
 */
import prettyMs from 'pretty-ms';
import type { JobEvents } from '../exec/job.js';
import type { ProgressUpdate } from '../stage.js';

/** Something that happened to a stage run. */
export type RunEvent =
  | { readonly kind: 'queued'; readonly reason: string }
  | { readonly kind: 'waiting' }
  | { readonly kind: 'running'; readonly reason: string }
  | { readonly kind: 'progress'; readonly update: ProgressUpdate }
  | { readonly kind: 'log'; readonly message: string }
  | { readonly kind: 'cached' }
  | { readonly kind: 'ran'; readonly seconds: number }
  | { readonly kind: 'failed'; readonly error: string }
  | { readonly kind: 'skipped'; readonly reason: string };

/** Receives run events and shows them. */
export interface Reporter {
  /** Called once with every run (id and stage type) before the first event. */
  start(runs: readonly { readonly id: string; readonly stage: string }[]): void;
  /** One event of run `id`. Must be cheap: progress may come every step. */
  event(id: string, event: RunEvent): void;
  /** Called once after the last event; resolves when the display is finished. */
  stop(): Promise<void>;
}

/** A reporter that shows nothing. */
export const silentReporter: Reporter = {
  start: () => undefined,
  event: () => undefined,
  stop: () => Promise.resolve(),
};

/** A running job's progress and log lines (`JobEvents`) as events of run `id` on `reporter`. */
export function jobEvents(reporter: Reporter, id: string): JobEvents {
  return {
    progress: (update) => reporter.event(id, { kind: 'progress', update }),
    log: (message) => reporter.event(id, { kind: 'log', message }),
  };
}

/** Formats metrics: `loss 0.41 id 0.93 ood 0.12` (3 significant digits). */
export function formatMetrics(metrics: Readonly<Record<string, number>> | undefined): string {
  if (!metrics) return '';
  return Object.entries(metrics)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 1000 ? Math.round(v) : Number(v.toPrecision(3))}`)
    .join(' ');
}

/** Estimates the remaining time of a run from its progress updates (rate since the first one). */
export class EtaTracker {
  private first?: { step: number; time: number };

  /** Records an update; returns the remaining time (milliseconds) when it can be estimated. */
  update(update: ProgressUpdate, now = Date.now()): number | undefined {
    if (!this.first || update.step < this.first.step) {
      this.first = { step: update.step, time: now };
      return undefined;
    }
    const done = update.step - this.first.step;
    if (done <= 0 || now <= this.first.time) return undefined;
    return ((update.total - update.step) * (now - this.first.time)) / done;
  }
}

/** Formats a progress line: `step 1200/5000 loss 0.41 id 0.93 eta 3m`. */
export function formatProgress(update: ProgressUpdate, etaMs: number | undefined): string {
  const parts = [`step ${update.step}/${update.total}`];
  const metrics = formatMetrics(update.metrics);
  if (metrics) parts.push(metrics);
  if (etaMs !== undefined && update.step < update.total)
    parts.push(`eta ${prettyMs(Math.max(etaMs, 1000), { compact: true })}`);
  return parts.join(' ');
}

/** A writable text sink (process.stderr, or a test buffer). */
export interface TextSink {
  write(text: string): unknown;
}

/** Options of `PlainReporter`. */
export interface PlainReporterOptions {
  /**
   * Start each line with the time, ISO 8601 in UTC to the millisecond
   * (`2025-06-01T12:03:04.512Z [model] running (...)`), as log files are read. Default false.
   */
  readonly timestamps?: boolean;
  /** The clock of the timestamps (tests; default `() => new Date()`). */
  readonly now?: () => Date;
}

/**
 * Plain lines, one per event, prefixed with the run id: `[model] step 1200/5000 loss 0.41 eta 3m`
 * (and the time, with `timestamps`). Progress lines are throttled to one per `intervalMs`
 * (default 2,000 ms) per run.
 */
export class PlainReporter implements Reporter {
  private readonly lastProgress = new Map<string, number>();
  private readonly eta = new Map<string, EtaTracker>();
  private readonly stamp: () => string;

  constructor(
    private readonly sink: TextSink,
    private readonly intervalMs = 2000,
    options: PlainReporterOptions = {},
  ) {
    const now = options.now ?? (() => new Date());
    this.stamp = options.timestamps ? () => `${now().toISOString()} ` : () => '';
  }

  start(): void {}

  event(id: string, e: RunEvent): void {
    const line = (text: string) => this.sink.write(`${this.stamp()}[${id}] ${text}\n`);
    switch (e.kind) {
      case 'queued':
        break;
      case 'waiting':
        line('waiting for another process computing the same key');
        break;
      case 'running':
        line(`running (${e.reason})`);
        break;
      case 'progress': {
        let tracker = this.eta.get(id);
        if (!tracker) {
          tracker = new EtaTracker();
          this.eta.set(id, tracker);
        }
        const eta = tracker.update(e.update);
        const now = Date.now();
        const last = this.lastProgress.get(id);
        if (last !== undefined && now - last < this.intervalMs && e.update.step < e.update.total) break;
        this.lastProgress.set(id, now);
        line(formatProgress(e.update, eta));
        break;
      }
      case 'log':
        line(e.message);
        break;
      case 'cached':
        line('cached');
        break;
      case 'ran':
        line(`done in ${prettyMs(e.seconds * 1000)}`);
        break;
      case 'failed':
        line(`failed: ${e.error}`);
        break;
      case 'skipped':
        line(`skipped (${e.reason})`);
        break;
    }
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

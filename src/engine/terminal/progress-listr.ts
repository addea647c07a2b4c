/**
 * The live terminal view (listr2): one task per stage run; its title shows the status, its output
 * line the latest progress (step/total, metrics, ETA) or log line.
 */
import { Listr } from 'listr2';
import type { ListrTaskWrapper } from 'listr2';
import prettyMs from 'pretty-ms';
import { EtaTracker, formatProgress } from './progress.js';
import type { Reporter, RunEvent } from './progress.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Task = ListrTaskWrapper<any, any, any>;

interface Slot {
  task?: Task;
  title: string;
  output?: string;
  settle?: { resolve: () => void; reject: (err: Error) => void };
  final?: { ok: true; title: string } | { ok: false; error: string } | { skip: string };
  eta: EtaTracker;
}

/** Reporter drawing a listr2 task list on the terminal (stdout). */
export class ListrReporter implements Reporter {
  private readonly slots = new Map<string, Slot>();
  private done?: Promise<unknown>;

  start(runs: readonly { readonly id: string; readonly stage: string }[]): void {
    for (const r of runs) this.slots.set(r.id, { title: `${r.id} pending`, eta: new EtaTracker() });
    const list = new Listr(
      runs.map((r) => ({
        title: `${r.id} pending`,
        task: (_: unknown, task: Task) =>
          new Promise<void>((resolve, reject) => {
            const slot = this.slots.get(r.id) as Slot;
            slot.task = task;
            slot.settle = { resolve, reject };
            this.apply(slot);
          }),
      })),
      {
        concurrent: true,
        exitOnError: false,
        registerSignalListeners: false,
        rendererOptions: { collapseErrors: false, showErrorMessage: true },
      },
    );
    this.done = list.run().catch(() => undefined);
  }

  event(id: string, e: RunEvent): void {
    const slot = this.slots.get(id);
    if (!slot) return;
    switch (e.kind) {
      case 'queued':
        slot.title = `${id} queued`;
        break;
      case 'waiting':
        slot.title = `${id} waiting for another process`;
        break;
      case 'running':
        slot.title = `${id} running (${e.reason})`;
        break;
      case 'progress':
        slot.output = formatProgress(e.update, slot.eta.update(e.update));
        break;
      case 'log':
        slot.output = e.message;
        break;
      case 'cached':
        slot.final = { ok: true, title: `${id} cached` };
        break;
      case 'ran':
        slot.final = { ok: true, title: `${id} done in ${prettyMs(e.seconds * 1000)}` };
        break;
      case 'failed':
        slot.title = `${id} failed`;
        slot.final = { ok: false, error: e.error };
        break;
      case 'skipped':
        slot.final = { skip: `${id} skipped (${e.reason})` };
        break;
    }
    this.apply(slot);
  }

  private apply(slot: Slot): void {
    const task = slot.task;
    if (!task || !slot.settle) return;
    if (slot.final) {
      const f = slot.final;
      const settle = slot.settle;
      slot.settle = undefined;
      if ('skip' in f) {
        task.skip(f.skip);
        settle.resolve();
      } else if (f.ok) {
        task.title = f.title;
        settle.resolve();
      } else {
        task.title = slot.title;
        settle.reject(new Error(f.error));
      }
      return;
    }
    if (task.title !== slot.title) task.title = slot.title;
    if (slot.output !== undefined) task.output = slot.output;
  }

  async stop(): Promise<void> {
    await this.done;
  }
}

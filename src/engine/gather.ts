/**
 * Which runs execute together (docs/design.md §6, "Grouped runs"). A stage that defines `group`
 * (`engine/stage.ts`) lets runs with equal group keys share one job. The rule is deterministic:
 * the runs of one stage id wait for each other. Each run of such a stage id arrives once, either
 * as a ready cache miss with its group key (`join`) or as anything else (`pass`: cached, skipped,
 * failed, or a run whose group key is undefined, which executes alone at once). When the last run
 * of the stage id has arrived, the joined runs are partitioned by group key and each partition of
 * n runs, in pipeline order, is cut into max(⌈n / maxMembers⌉, min(slots, n)) consecutive groups
 * of sizes as equal as possible (`slots`: so that the local `--jobs` do not idle while one job
 * runs every member; a group of one runs alone).
 * So the groups depend only on the pipeline and on what the store holds, never on timing; the
 * price is that a run waits for its slowest sibling's inputs (in a sweep, the data stages before a
 * training are short next to it).
 *
 * Runs of one stage id never depend on each other, so the wait cannot deadlock. Runs of different
 * stage ids are never grouped.
 */
import type { StageRun } from './pipeline/expand.js';

/** Grouped execution (`StageDefinition.group`): the options of `run` and `verify`. */
export interface GroupingOptions {
  /** At most this many runs share one group job (at least 1; 1 runs every run alone). */
  readonly maxMembers: number;
  /**
   * Job slots to fill (default 1): n runs with one key make at least min(slots, n) groups. The
   * local `--jobs`, since each job gets the cores shared out; 1 on SLURM (a task per group).
   */
  readonly slots?: number;
}

/** A run that joined, waiting for its group. */
interface Joined<T, R> {
  readonly run: StageRun;
  readonly item: T;
  readonly key: string;
  readonly resolve: (r: R) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Gathers the ready runs of each stage id into groups (see the module comment) and hands each
 * group to `launch`.
 * @typeParam T what the caller knows of a joining run (its job, its inputs).
 * @typeParam R what `launch` gives each member back (its record).
 */
export class Gatherer<T, R> {
  private readonly position = new Map<StageRun, number>();
  private readonly waiting = new Map<string, number>();
  private readonly joined = new Map<string, Joined<T, R>[]>();
  private readonly arrived = new Set<StageRun>();

  /**
   * @param runs every run that will arrive (`pass` or `join`), in pipeline order; only runs whose
   *   stage defines `group` are gathered.
   * @param grouping at most how many runs a group, and how many job slots to fill.
   * @param launch starts one group's job; returns one result per member, in order. Called
   *   synchronously when the last run of a stage id arrives, once per group (groups of one too).
   */
  constructor(
    runs: readonly StageRun[],
    private readonly grouping: GroupingOptions,
    private readonly launch: (members: readonly T[]) => Promise<R>[],
  ) {
    const { maxMembers, slots = 1 } = grouping;
    if (!Number.isInteger(maxMembers) || maxMembers < 1) throw new Error(`maxMembers must be >= 1, not ${maxMembers}`);
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`slots must be >= 1, not ${slots}`);
    runs.forEach((run, i) => {
      if (!run.stage.group) return;
      this.position.set(run, i);
      this.waiting.set(run.stageId, (this.waiting.get(run.stageId) ?? 0) + 1);
    });
  }

  /** True when `run` is gathered: it must arrive once, by `pass` or `join`. */
  gathers(run: StageRun): boolean {
    return this.position.has(run);
  }

  /** `run` will not join a group. No-op for a run not gathered or already arrived. */
  pass(run: StageRun): void {
    if (!this.position.has(run) || this.arrived.has(run)) return;
    this.arrived.add(run);
    this.arrive(run.stageId);
  }

  /**
   * `run`, a ready cache miss with group key `key`, joins its stage id's groups.
   * @returns its result from `launch`, once its group has formed and run.
   * @throws Error (synchronously) when `run` is not gathered or has already arrived.
   */
  join(run: StageRun, item: T, key: string): Promise<R> {
    if (!this.position.has(run) || this.arrived.has(run)) throw new Error(`internal: ${run.id} cannot join a group`);
    this.arrived.add(run);
    const result = new Promise<R>((resolve, reject) => {
      const list = this.joined.get(run.stageId) ?? [];
      list.push({ run, item, key, resolve, reject });
      this.joined.set(run.stageId, list);
    });
    this.arrive(run.stageId);
    return result;
  }

  private arrive(stageId: string): void {
    const left = (this.waiting.get(stageId) ?? 0) - 1;
    this.waiting.set(stageId, left);
    if (left === 0) this.form(this.joined.get(stageId) ?? []);
  }

  /** Partitions the joined runs by key, cuts each partition into groups and launches them. */
  private form(joined: readonly Joined<T, R>[]): void {
    const byKey = new Map<string, Joined<T, R>[]>();
    const ordered = [...joined].sort((a, b) => (this.position.get(a.run) ?? 0) - (this.position.get(b.run) ?? 0));
    for (const j of ordered) byKey.set(j.key, [...(byKey.get(j.key) ?? []), j]);
    for (const partition of byKey.values()) {
      const { maxMembers, slots = 1 } = this.grouping;
      for (const members of balancedChunks(partition, maxMembers, slots)) {
        let results: Promise<R>[];
        try {
          results = this.launch(members.map((m) => m.item));
        } catch (err) {
          for (const m of members) m.reject(err);
          continue;
        }
        members.forEach((m, i) => results[i].then(m.resolve, m.reject));
      }
    }
  }
}

/**
 * `items` cut into max(⌈n / max⌉, min(least, n)) consecutive chunks whose sizes differ by at most
 * one (larger first): 10 items at most 8 a chunk give 5 + 5, not 8 + 2; 8 items at most 8 a chunk,
 * at least 2 chunks, give 4 + 4.
 */
export function balancedChunks<X>(items: readonly X[], max: number, least = 1): X[][] {
  const count = Math.max(Math.ceil(items.length / max), Math.min(least, items.length));
  const out: X[][] = [];
  let start = 0;
  for (let c = 0; c < count; c++) {
    const size = Math.floor(items.length / count) + (c < items.length % count ? 1 : 0);
    out.push(items.slice(start, start + size));
    start += size;
  }
  return out;
}

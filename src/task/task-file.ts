/**
 * `task.json`, the small file `split` writes beside its tables so that `tokenize` (which needs only
 * the split) knows the task's sizes: V cannot be read off the facts (a value may never occur), and
 * the vocabulary must not depend on which values happen to occur.
 *
 * Content: `{"entities": N, "attributes": A, "values": V, "id_entities": n_id, "ood_entities": n_ood}`
 * (per attribute counts), as canonical JSON with a trailing newline.
 */
import type { TaskDims } from './kb.js';
import { checkDims } from './kb.js';

/** File name of the task description in `split`'s output. */
export const TASK_FILE = 'task.json';

/** Content of `task.json`. */
export interface TaskFile extends TaskDims {
  /** ID entities per attribute. */
  readonly id_entities: number;
  /** OOD entities per attribute. */
  readonly ood_entities: number;
}

/** The text of `task.json` for `task` (keys in a fixed order, so equal tasks give equal bytes). */
export function formatTaskFile(task: TaskFile): string {
  const { entities, attributes, values, id_entities, ood_entities } = task;
  return `${JSON.stringify({ entities, attributes, values, id_entities, ood_entities })}\n`;
}

/**
 * Parses the text of `task.json`.
 * @throws Error when it is not JSON, lacks a field, or its sizes are invalid (see `checkDims`).
 */
export function parseTaskFile(text: string): TaskFile {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const get = (key: string): number => {
    const v = raw[key];
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw new Error(`${TASK_FILE}: "${key}" must be an integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const task: TaskFile = {
    entities: get('entities'),
    attributes: get('attributes'),
    values: get('values'),
    id_entities: get('id_entities'),
    ood_entities: get('ood_entities'),
  };
  checkDims(task);
  return task;
}

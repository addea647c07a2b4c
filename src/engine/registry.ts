/** The set of stage types a pipeline may `use`, by name. */
import type { StageDefinition } from './stage.js';

/** Stage types by name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StageRegistry = ReadonlyMap<string, StageDefinition<any>>;

/**
 * Builds a registry from a list of stage definitions.
 * @throws Error when two definitions share a name (a programming error).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function createRegistry(stages: readonly StageDefinition<any>[] | StageRegistry): StageRegistry {
  if (stages instanceof Map) return stages;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const map = new Map<string, StageDefinition<any>>();
  for (const s of stages as readonly StageDefinition[]) {
    if (map.has(s.name)) throw new Error(`two stage types are named "${s.name}"`);
    map.set(s.name, s);
  }
  return map;
}

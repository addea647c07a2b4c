/**
 * The stage graph: deterministic topological order and cycle detection. Nodes are ids; an edge
 * `a -> b` means `a` needs `b` (b runs first).
 */

/** Thrown by `topoOrder` when the graph has a cycle; `cycle` lists it, first id repeated last. */
export class CycleError extends Error {
  override name = 'CycleError';
  constructor(readonly cycle: readonly string[]) {
    super(`cycle: ${cycle.join(' -> ')}`);
  }
}

/**
 * Finds one cycle, if any. Returns it as `[a, b, ..., a]` (each needs the next), searching from
 * nodes in the given order so that the answer is deterministic; `undefined` when acyclic. Edges to
 * unknown nodes are ignored.
 */
export function findCycle(nodes: readonly string[], needs: (id: string) => readonly string[]): string[] | undefined {
  const known = new Set(nodes);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    state.set(id, 'open');
    stack.push(id);
    for (const dep of needs(id)) {
      if (!known.has(dep)) continue;
      const s = state.get(dep);
      if (s === 'open') return [...stack.slice(stack.indexOf(dep)), dep];
      if (s === undefined) {
        const found = visit(dep);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of nodes) {
    if (!state.has(id)) {
      const found = visit(id);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Orders nodes so that every node comes after what it needs. Among nodes ready at the same time,
 * the one earlier in `nodes` comes first (so the order follows the file where it can).
 * @throws CycleError when the graph has a cycle.
 */
export function topoOrder(nodes: readonly string[], needs: (id: string) => readonly string[]): string[] {
  const cycle = findCycle(nodes, needs);
  if (cycle) throw new CycleError(cycle);
  const index = new Map(nodes.map((id, i) => [id, i]));
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const id of nodes) {
    const deps = [...new Set(needs(id))].filter((d) => index.has(d));
    remaining.set(id, deps.length);
    for (const d of deps) dependents.set(d, [...(dependents.get(d) ?? []), id]);
  }
  const ready = nodes.filter((id) => remaining.get(id) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => (index.get(a) ?? 0) - (index.get(b) ?? 0));
    const id = ready.shift() as string;
    order.push(id);
    for (const d of dependents.get(id) ?? []) {
      const left = (remaining.get(d) ?? 0) - 1;
      remaining.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  return order;
}

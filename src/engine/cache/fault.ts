/**
 * Fault injection for crash tests. `GROKPIPE_FAULT=<point>[,<point>...]` makes this process kill
 * itself with SIGKILL when it reaches a named point of the commit path, leaving exactly what a kill
 * at that moment leaves; `<point>:enospc` throws ENOSPC there instead (a full disk). Unset (always,
 * outside tests), each point costs one environment lookup.
 *
 * Points: `usage-rename` (a usage record written, not yet renamed into place, `usage.ts`).
 */

/**
 * Acts on `point` when `GROKPIPE_FAULT` names it (see the module comment); else does nothing.
 * @throws Error with code `ENOSPC` for `<point>:enospc`.
 */
export function faultPoint(point: string): void {
  const spec = process.env.GROKPIPE_FAULT;
  if (!spec) return;
  for (const item of spec.split(',')) {
    const [name, action] = item.trim().split(':');
    if (name !== point) continue;
    if (action === 'enospc') {
      throw Object.assign(new Error(`ENOSPC: no space left on device (GROKPIPE_FAULT=${item})`), { code: 'ENOSPC' });
    }
    process.kill(process.pid, 'SIGKILL');
  }
}

/**
 * `grokpipe ls [--store DIR] [--json]`: the store's entries: stage, key, size, age since last use
 * and the pipelines that use each (see `engine/cache/inventory.ts`).
 */
import type { Command } from 'commander';
import { formatInventory, listInventory } from '../engine/cache/inventory.js';
import { Store } from '../engine/cache/store.js';
import type { CommandContext } from './context.js';
import { jsonOption, storeOption } from './options.js';

/** Registers `ls` on `program`. */
export function registerLs(program: Command, ctx: CommandContext): void {
  program
    .command('ls')
    .description("list the store's entries: stage, key, size, age, pipelines")
    .addOption(storeOption())
    .addOption(jsonOption())
    .action(async (opts: { store: string; json?: boolean }) => {
      ctx.setJson(Boolean(opts.json));
      const now = Date.now();
      const entries = await listInventory(new Store(opts.store));
      if (opts.json) {
        const rows = entries.map((e) => ({
          stage: e.stage,
          key: e.key,
          bytes: e.bytes,
          age_seconds: Math.round((now - e.lastUsed) / 1000),
          last_used: new Date(e.lastUsed).toISOString(),
          pipelines: e.pipelines,
          damaged: e.manifest === undefined,
        }));
        ctx.stdout.write(`${JSON.stringify({ entries: rows })}\n`);
      } else {
        ctx.stdout.write(formatInventory(entries, { color: ctx.color, now }));
      }
      ctx.setExitCode(0);
    });
}

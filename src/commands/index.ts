/**
 * The commands that question and maintain the cache: `why`, `dag`, `verify`, `gc`, `show`, `ls`.
 * `main` in `src/cli.ts` registers them all with one call.
 */
import type { Command } from 'commander';
import type { CommandContext } from './context.js';
import { registerDag } from './dag.js';
import { registerGc } from './gc.js';
import { registerLs } from './ls.js';
import { registerShow } from './show.js';
import { registerVerify } from './verify.js';
import { registerWhy } from './why.js';

export type { CommandContext } from './context.js';

/** Registers the cache commands on `program`. */
export function registerCacheCommands(program: Command, ctx: CommandContext): void {
  registerWhy(program, ctx);
  registerDag(program, ctx);
  registerVerify(program, ctx);
  registerGc(program, ctx);
  registerShow(program, ctx);
  registerLs(program, ctx);
}

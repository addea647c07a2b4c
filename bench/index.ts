/**
 * `npm run bench [-- <name> [args...]]`: runs one benchmark of `bench/` (or all, in turn, when no
 * name is given), each in its own Node process so that TF.js backends and timings do not interfere.
 *
 *     npm run bench                  # every benchmark
 *     npm run bench -- data          # generate + split + tokenize at the published scale
 *     npm run bench -- train --json  # training-step time per model and backend (see train.bench.ts)
 *     npm run bench -- profile       # where one training step's time goes, by kernel
 *
 * Benchmarks print their own results; nothing here is timed. Exit code: the first failure's.
 */
import { readdirSync } from 'node:fs';
import { execa } from 'execa';

const dir = new URL('.', import.meta.url);
const available = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name !== undefined && !available.includes(name)) {
  console.error(`unknown benchmark "${name}" (available: ${available.join(', ')})`);
  process.exit(2);
}
for (const bench of name === undefined ? available : [name]) {
  if (name === undefined) console.log(`\n== ${bench}`);
  const file = new URL(`${bench}.bench.ts`, dir).pathname;
  const result = await execa('node', ['--import', 'tsx', file, ...args], { stdio: 'inherit', reject: false });
  if (result.exitCode !== 0) {
    process.exitCode = result.exitCode ?? 1;
    break;
  }
}

/**
 * Which pipelines use which store entries. A manifest names the pipeline that first computed it;
 * reuse by other pipelines (the run-cache across pipelines and sweeps) is recorded here: after
 * each `grokpipe run`, `<store>/.uses/<id>.json` lists the entries that run used, one file per
 * pipeline file (replaced atomically by its next run). `grokpipe ls` reads them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { faultPoint } from './fault.js';
import { sha256 } from './hash.js';

/** The entries one pipeline file used in its latest run. */
export interface PipelineUsage {
  /** Absolute path of the pipeline file. */
  readonly file: string;
  /** ISO 8601 time of the run. */
  readonly updated: string;
  /** Entries used (cached or computed), as `<stage>/<key>`. */
  readonly entries: readonly string[];
}

/** Folder of usage records in a store. */
export function usageDir(storeRoot: string): string {
  return join(storeRoot, '.uses');
}

/**
 * Records that `pipelineFile` used `entries` (`{stage, key}`), replacing its previous record.
 * @throws Error on file system errors.
 */
export async function recordUsage(
  storeRoot: string,
  pipelineFile: string,
  entries: readonly { stage: string; key: string }[],
): Promise<void> {
  const file = resolve(pipelineFile);
  const dir = usageDir(storeRoot);
  await mkdir(dir, { recursive: true });
  const record: PipelineUsage = {
    file,
    updated: new Date().toISOString(),
    entries: [...new Set(entries.map((e) => `${e.stage}/${e.key}`))].sort(),
  };
  const target = join(dir, `${sha256(file).slice(0, 16)}.json`);
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(record)}\n`);
    faultPoint('usage-rename');
    await rename(tmp, target);
  } catch (err) {
    // A full disk: leave no partial record behind (one left by a kill goes with `temporaries.ts`).
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Every readable usage record of a store (none when absent); damaged ones are skipped. */
export async function readUsage(storeRoot: string): Promise<PipelineUsage[]> {
  const dir = usageDir(storeRoot);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const out: PipelineUsage[] = [];
  for (const name of names) {
    try {
      const u = JSON.parse(await readFile(join(dir, name), 'utf8')) as PipelineUsage;
      if (typeof u.file === 'string' && Array.isArray(u.entries)) out.push(u);
    } catch {
      // A record being replaced or damaged: it only feeds `ls`.
    }
  }
  return out;
}

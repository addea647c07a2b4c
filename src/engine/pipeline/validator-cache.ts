/**
 * A disk cache of compiled JSON Schema validators, so that a CLI start does not pay for ajv's
 * code generation (about 90 ms for the pipeline schema and the six stage schemas, a fifth of a
 * cold `grokpipe status`).
 *
 * The first compile of a schema writes ajv's standalone code for it (`ajv/dist/standalone`,
 * the same validation code ajv would run) to `node_modules/.cache/grokpipe/validators/<hash>.cjs`,
 * `<hash>` covering the ajv version, its options and the schema; later processes `require` it.
 * Any problem reading or writing the cache falls back to a plain compile (`GROKPIPE_NO_CACHE=1`
 * turns the cache off).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import type { Ajv, ValidateFunction } from 'ajv';
import { hashJson } from '../cache/hash.js';

type StandaloneCode = (ajv: Ajv, fn: ValidateFunction) => string;

const require = createRequire(import.meta.url);

let folder: string | null | undefined;

/** `<node_modules>/.cache/grokpipe/validators` of the ajv in use, or null when not found or disabled. */
function cacheFolder(): string | null {
  if (folder !== undefined) return folder;
  folder = null;
  if (process.env.GROKPIPE_NO_CACHE === '1') return folder;
  try {
    const ajvMain = require.resolve('ajv');
    const at = ajvMain.lastIndexOf(`${sep}node_modules${sep}`);
    if (at >= 0) folder = join(ajvMain.slice(0, at), 'node_modules', '.cache', 'grokpipe', 'validators');
  } catch {
    // No cache.
  }
  return folder;
}

let ajvVersion: string | undefined;

/**
 * Compiles `schema` with the ajv instance `getAjv` returns (created with `code: { source: true }`;
 * asked for only when the cache has no code for the schema), reusing the standalone code cached by
 * an earlier process when there is one. `options` must describe that instance's options (they are
 * part of the cache key).
 * @throws Error from ajv when the schema is invalid.
 */
export function compileCached(getAjv: () => Ajv, schema: object, options: object): ValidateFunction {
  const dir = cacheFolder();
  if (dir === null) return getAjv().compile(schema);
  ajvVersion ??= (require('ajv/package.json') as { version: string }).version;
  const file = join(dir, `${hashJson({ ajv: ajvVersion, options, schema }).slice(0, 32)}.cjs`);
  try {
    const fn = require(file) as ValidateFunction | { default: ValidateFunction };
    return typeof fn === 'function' ? fn : fn.default;
  } catch {
    // Not cached yet (or unreadable): compile and cache.
  }
  const ajv = getAjv();
  const fn = ajv.compile(schema);
  try {
    const standalone = require('ajv/dist/standalone') as StandaloneCode | { default: StandaloneCode };
    const code = (typeof standalone === 'function' ? standalone : standalone.default)(ajv, fn);
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, file);
  } catch {
    // A read-only installation: compile every time.
  }
  return fn;
}

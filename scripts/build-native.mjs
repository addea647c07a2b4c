#!/usr/bin/env node
// Builds grokpipe's optional native BLAS addon (native/) with node-gyp. Run by `npm install` /
// `npm ci` and by `npm run build:native`. It never fails the install: where no C++ toolchain is
// present it prints one line and grokpipe trains on wasm instead (see src/models/native-blas.ts).
// Set GROKPIPE_SKIP_NATIVE=1 to skip the build.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'native');
const strict = process.argv.includes('--strict');

/** node-gyp: npm's own copy (on PATH inside npm scripts, or beside npm's CLI), else a local one. */
function nodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  return candidates.find((c) => existsSync(c));
}

if (process.env.GROKPIPE_SKIP_NATIVE) {
  console.log('grokpipe: native BLAS addon skipped (GROKPIPE_SKIP_NATIVE is set); training uses wasm');
  process.exit(0);
}
const gyp = nodeGyp();
try {
  if (!gyp) throw new Error('node-gyp not found (it ships with npm)');
  await execa(process.execPath, [gyp, 'rebuild'], { cwd: native, all: true });
  console.log('grokpipe: native BLAS addon built (native/build/Release/grokpipe_blas.node)');
} catch (err) {
  const detail = (err.all ?? err.message ?? String(err)).trim().split('\n').filter((l) => /error|not found/i.test(l))[0] ?? err.message;
  console.log(`grokpipe: native BLAS addon not built (${detail.trim()}); training will use wasm. Needs g++, make and python3.`);
  if (strict) process.exit(1);
}

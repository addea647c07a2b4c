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
  if (process.env.npm_execpath)
    candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  return candidates.find((c) => existsSync(c));
}

/** The most telling line of a failed build: the compiler's or a missing file's, else node-gyp's error. */
function why(err) {
  const text = String(err.all ?? err.message ?? err);
  if (/network connectivity|getaddrinfo|ENOTFOUND|EAI_AGAIN/.test(text)) {
    return "node-gyp could not download Node's headers: no network; point npm_config_nodedir at a Node install with include/node";
  }
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('gyp WARN'));
  const patterns = [
    /(fatal )?error: .*|No such file or directory.*|command not found.*/i,
    /gyp ERR! stack Error: (.*)/,
    /ERR!.*|error.*/i,
  ];
  for (const p of patterns) {
    const hit = lines.map((l) => l.match(p)).find(Boolean);
    if (hit) return (hit[1] ?? hit[0]).trim();
  }
  return String(err.message ?? err).split('\n')[0];
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
  console.log(
    `grokpipe: native BLAS addon not built (${why(err)}); training will use wasm. Needs g++, make, python3 and Node's headers.`,
  );
  if (strict) process.exit(1);
}

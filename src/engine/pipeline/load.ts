/**
 * Loads a pipeline file: parses the YAML keeping node positions, so that every later error can
 * name `file:line:col` of the field it is about.
 */
import { readFileSync, statSync } from 'node:fs';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import { InputError } from '../errors.js';
import type { JsonPath } from '../errors.js';
import { LIMIT_OPTIONS, inputLimits } from './limits.js';
import type { InputLimits } from './limits.js';
import { checkAliases } from './yaml-aliases.js';
import { repeatedKeys } from './yaml-keys.js';

/**
 * Maps a JSON path to a human location, `file:line:col` (1-based) of the nearest existing node:
 * its value, or its key with `{ key: true }` (for "unknown field" errors).
 */
export type Locate = (path: JsonPath, options?: { key?: boolean }) => string;

/** A parsed pipeline file. */
export interface LoadedPipeline {
  /** The file name as given (used in messages and manifests). */
  readonly file: string;
  /** The document as plain JSON-like data (not yet validated). */
  readonly data: unknown;
  /** Location of the node at `path`, or of its deepest existing ancestor. */
  readonly locate: Locate;
}

/**
 * Reads and parses a pipeline file.
 * @param limits its largest size and alias expansion (default: those in force, `limits.ts`).
 * @throws InputError when the file cannot be read, is larger than allowed or is not valid YAML
 *   (with line and column).
 */
export function loadPipeline(file: string, limits: InputLimits = inputLimits()): LoadedPipeline {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > limits.maxFileBytes) {
      const mib = (n: number) => `${Number((n / 2 ** 20).toFixed(2))} MiB`;
      throw new InputError([
        {
          where: file,
          path: '',
          message: `pipeline file of ${mib(size)}, more than the limit of ${mib(limits.maxFileBytes)}; raise it with ${LIMIT_OPTIONS.maxFileBytes}`,
        },
      ]);
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError([
      {
        where: file,
        path: '',
        message: `cannot read pipeline file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      },
    ]);
  }
  return parsePipelineText(text, file, limits);
}

/**
 * Parses pipeline YAML text; `file` names it in messages.
 * @param limits its alias expansion (default: those in force, `limits.ts`).
 * @throws InputError on YAML syntax errors (every error, with line and column), on an alias inside
 *   the node it copies or aliases that copy too much (`yaml-aliases.ts`), and on nesting too deep.
 */
export function parsePipelineText(text: string, file: string, limits: InputLimits = inputLimits()): LoadedPipeline {
  const lineCounter = new LineCounter();
  // Repeated keys are found below, in linear time (`yaml-keys.ts`).
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: false });
  const syntax = doc.errors.map((e) => ({
    offset: e.pos[0],
    message: e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''),
  }));
  for (const offset of repeatedKeys(doc)) syntax.push({ offset, message: 'Map keys must be unique' });
  if (syntax.length > 0) {
    throw new InputError(
      syntax
        .sort((a, b) => a.offset - b.offset)
        .map((e) => {
          const pos = lineCounter.linePos(e.offset);
          return { where: `${file}:${pos.line}:${pos.col}`, path: '', message: `YAML syntax error: ${e.message}` };
        }),
    );
  }
  let data: unknown;
  try {
    const problem = checkAliases(doc, limits.maxAliasNodes);
    if (problem) {
      const { line, col } = lineCounter.linePos(problem.offset);
      throw new InputError([{ where: `${file}:${line}:${col}`, path: '', message: problem.message }]);
    }
    // Aliases are checked above, more finely than yaml's own count (which stops at 1,000 uses).
    data = doc.toJS({ maxAliasCount: -1 });
  } catch (err) {
    if (err instanceof InputError) throw err;
    const why = err instanceof RangeError ? 'nested too deeply' : (err as Error).message;
    throw new InputError([{ where: file, path: '', message: `cannot read the YAML document (${why})` }]);
  }
  const locate: Locate = (path, options) => {
    const offset = offsetOf(doc, path, options?.key ?? false);
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  return { file, data, locate };
}

/** Offset of the deepest node along `path`: the value when it has one, else its key. */
function offsetOf(doc: Document, path: JsonPath, atKey: boolean): number {
  let node: unknown = doc.contents;
  let best = rangeStart(node) ?? 0;
  for (const [i, seg] of path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyStart = rangeStart(pair.key);
      const value = pair.value;
      const empty = value === null || (isScalar(value) && value.value === null && (value.source ?? '') === '');
      const wantKey = empty || (atKey && i === path.length - 1);
      best = (!wantKey ? rangeStart(value) : undefined) ?? keyStart ?? best;
      node = value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      best = rangeStart(node) ?? best;
    } else {
      break;
    }
  }
  return best;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}

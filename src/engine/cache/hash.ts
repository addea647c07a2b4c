/**
 * Hashing: stage keys and artifact content hashes, SHA-256 over canonical JSON (RFC 8785 via
 * `canonicalize`), hex encoded (64 characters).
 *
 * - Stage key = sha256(canonical `{stage, version, params, inputs}`), `inputs` being
 *   `[{stage, content_hash, matrix?}]` in `needs:` order (`matrix` only for `across: matrix`).
 *   Stage ids (names in the file) are not part of it: renaming a stage or using it in another
 *   pipeline hits the same cache.
 * - Content hash of an artifact = sha256(canonical `{outputs: [{name, hash}]}`) sorted by name,
 *   a table's hash being its logical hash and any other file's its byte SHA-256.
 */
import { createHash, hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import canonicalizeModule from 'canonicalize';
import type { Json } from '../stage.js';

type Canonicalize = (input: unknown) => string | undefined;
const canonicalize: Canonicalize =
  (canonicalizeModule as unknown as { default?: Canonicalize }).default ??
  (canonicalizeModule as unknown as Canonicalize);

/** SHA-256 of a string (UTF-8) or bytes, hex encoded. */
export function sha256(data: string | Uint8Array): string {
  // The one-shot form: some 3x faster than a `Hash` object on the short texts of keys.
  return hash('sha256', data, 'hex');
}

/**
 * Canonical JSON text of a value (sorted keys, ES number formatting).
 * @throws Error for values JSON cannot hold (NaN, Infinity, undefined at the top).
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('cannot canonicalize undefined');
  return text;
}

/** SHA-256 of the canonical JSON of a value. @throws Error as `canonicalJson`. */
export function hashJson(value: unknown): string {
  return sha256(canonicalJson(value));
}

/** One input of a stage key: the upstream stage type and the content hash of its artifact. */
export interface KeyInput {
  readonly stage: string;
  readonly content_hash: string;
  /** Matrix values of the upstream run; only for a stage with `across: matrix`. */
  readonly matrix?: Readonly<Record<string, Json>>;
}

/** Everything a stage key is made of. */
export interface KeyComponents {
  /** Stage type (`train`). */
  readonly stage: string;
  /** Stage code version. */
  readonly version: string;
  /** Validated params, defaults filled in. */
  readonly params: Readonly<Record<string, Json>>;
  /** Inputs in `needs:` order. */
  readonly inputs: readonly KeyInput[];
}

/** Canonical JSON of params objects already serialised (runs of one stage often share one). */
const canonicalParams = new WeakMap<object, string>();

/**
 * The stage key (hex SHA-256) of a computation: `hashJson({stage, version, params, inputs})`.
 * The canonical text is put together from its members' (keys in RFC 8785's order: `inputs`,
 * `params`, `stage`, `version`), so that a params object shared by many runs is serialised once.
 */
export function stageKey(c: KeyComponents): string {
  let params = canonicalParams.get(c.params);
  if (params === undefined) {
    params = canonicalJson(c.params);
    canonicalParams.set(c.params, params);
  }
  const inputs = `[${c.inputs.map(canonicalKeyInput).join(',')}]`;
  const [stage, version] = [c.stage, c.version].map(canonicalJson);
  return sha256(`{"inputs":${inputs},"params":${params},"stage":${stage},"version":${version}}`);
}

/**
 * `canonicalJson` of a key input, put together directly when it has the usual members (string
 * `content_hash` and `stage`, and maybe `matrix`), in RFC 8785's order; the generic serialiser
 * otherwise. Equal to `canonicalJson(input)` either way (tested), some 3x faster.
 */
export function canonicalKeyInput(input: KeyInput): string {
  const n = Object.keys(input).length;
  const { content_hash: hash, stage, matrix } = input;
  if (typeof hash !== 'string' || typeof stage !== 'string' || n !== ('matrix' in input ? 3 : 2))
    return canonicalJson(input);
  const m = matrix === undefined ? '' : `,"matrix":${canonicalJson(matrix)}`;
  return `{"content_hash":${JSON.stringify(hash)}${m},"stage":${JSON.stringify(stage)}}`;
}

/** An output's name and hash, as used by `contentHash`. */
export interface OutputHash {
  readonly name: string;
  readonly hash: string;
}

/** Content hash of an artifact from its outputs' hashes (order does not matter). */
export function contentHash(outputs: readonly OutputHash[]): string {
  const sorted = [...outputs]
    .map((o) => ({ name: o.name, hash: o.hash }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return hashJson({ outputs: sorted });
}

/**
 * SHA-256 of a file's bytes (streamed), hex encoded.
 * @throws Error when the file cannot be read.
 */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

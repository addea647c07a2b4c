/**
 * The safetensors format (huggingface/safetensors, "Format" in its README), written and read
 * without dependencies:
 *
 *     [u64 little-endian N][N bytes of UTF-8 JSON header][byte buffer]
 *
 * The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets in
 * bytes, relative to the start of the byte buffer; tensors cover the buffer contiguously) plus an
 * optional `__metadata__` map of string to string. The header is padded with spaces (0x20) so
 * that the buffer starts at a multiple of 8 bytes. Values are little-endian, row-major.
 */

/** Element types supported here, by their safetensors names. */
export type SafetensorsDtype = 'F32' | 'F64' | 'I32' | 'I64' | 'U8';

/** Typed array for each dtype. */
export interface SafetensorsArray {
  F32: Float32Array;
  F64: Float64Array;
  I32: Int32Array;
  I64: BigInt64Array;
  U8: Uint8Array;
}

/** One tensor: dtype, shape and its values, row-major. */
export type NamedTensor = {
  [D in SafetensorsDtype]: { dtype: D; shape: number[]; data: SafetensorsArray[D] };
}[SafetensorsDtype];

/** A decoded file: tensors in file order and the `__metadata__` map (empty when absent). */
export interface Safetensors {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** Thrown when bytes are not a valid safetensors file; the message says what is wrong. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, I32: 4, I64: 8, U8: 1 };

const CTOR = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  I64: BigInt64Array,
  U8: Uint8Array,
} as const;

/** Largest header we accept when reading (the reference implementation's limit, 100 MB). */
const MAX_HEADER = 100_000_000;

function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new SafetensorsError('safetensors I/O here needs a little-endian host');
  }
}

/**
 * Encodes tensors (in the given order) and string metadata as a safetensors file.
 * @throws SafetensorsError on a shape/data size mismatch, a bad name or a non-string metadata value.
 */
export function encodeSafetensors(
  tensors: Iterable<[string, NamedTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  assertLittleEndian();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__' || name in header) throw new SafetensorsError(`bad or duplicate tensor name "${name}"`);
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new SafetensorsError(`${name}: bad shape [${t.shape.join(', ')}]`);
    if (t.data.length !== count) {
      throw new SafetensorsError(`${name}: shape [${t.shape.join(', ')}] needs ${count} values, got ${t.data.length}`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Decodes a safetensors file. Values are copied into fresh, aligned typed arrays.
 * @throws SafetensorsError when the header is truncated or not JSON, a dtype is unsupported, an
 *   entry's offsets disagree with its shape, or tensors overlap, leave holes or overrun the file.
 */
export function decodeSafetensors(bytes: Uint8Array): Safetensors {
  assertLittleEndian();
  if (bytes.byteLength < 8) throw new SafetensorsError(`file of ${bytes.byteLength} bytes is too short`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER || 8 + n > bytes.byteLength) {
    throw new SafetensorsError(`header length ${n} does not fit a file of ${bytes.byteLength} bytes`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, n).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new SafetensorsError(`header is not JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw new SafetensorsError('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(`metadata "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) {
      throw new SafetensorsError(
        `${name}: unsupported dtype ${String(e.dtype)} (supported: ${Object.keys(BYTES).join(', ')})`,
      );
    }
    const dtype = e.dtype as SafetensorsDtype;
    const shape = e.shape;
    const off = e.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new SafetensorsError(`${name}: bad shape`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${name}: bad data_offsets`);
    }
    const [begin, end] = off as [number, number];
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    if (end - begin !== count * BYTES[dtype]) {
      throw new SafetensorsError(`${name}: data_offsets [${begin}, ${end}] do not hold ${count} ${dtype} values`);
    }
    if (end > dataLength)
      throw new SafetensorsError(`${name}: data_offsets end ${end} beyond the ${dataLength}-byte buffer`);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  // Tensors must tile the buffer exactly: no overlap, no hole (safetensors' validation rule).
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of sorted) {
    if (e.begin !== expected)
      throw new SafetensorsError(`${e.name}: data starts at ${e.begin}, expected ${expected} (overlap or hole)`);
    expected = e.end;
  }
  if (expected !== dataLength) throw new SafetensorsError(`tensors cover ${expected} of ${dataLength} buffer bytes`);
  const tensors = new Map<string, NamedTensor>();
  for (const e of entries) {
    // A copy into a fresh buffer (Buffer#slice would be a view into a shared, unaligned pool).
    const copy = new Uint8Array(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    const data = new CTOR[e.dtype](copy.buffer, 0, (e.end - e.begin) / BYTES[e.dtype]);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data } as NamedTensor);
  }
  return { tensors, metadata };
}

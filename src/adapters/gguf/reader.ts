/**
 * Reader of GGUF v2/v3 (ggml's checkpoint format, https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
 *
 *   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count x (string key, u32 value type, value)
 *   tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
 *   padding to `general.alignment` (default 32) | tensor data
 *
 * ne[0] is the fastest-varying dimension (a row), so `shape` (outermost first) is ne reversed.
 * Offsets are relative to the start of the data section and multiples of the alignment.
 *
 * The bytes are untrusted. The header is parsed from a prefix of the file that grows (doubling)
 * until it holds the whole header, through a ByteRangeSource, so tensor data is never read here.
 * Every bound is checked before a byte is read; every failure is a ModelFormatError whose
 * `details.reason` is a GgufFormatReason.
 */
import { InvalidRequestError, ModelFormatError } from '../../domain/errors.ts';
import { ggmlTypeById, type GgmlTypeInfo } from '../../domain/ggml-types.ts';
import type { ByteRangeSource } from '../../ports/outbound.ts';
import { formatError, GgufCursor, NeedMoreBytes } from './cursor.ts';
import { readValue, type GgufValue } from './metadata.ts';

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: ne[0] is the row length. */
  readonly ne: readonly number[];
  /** Row-major shape, outermost first (ne reversed), as safetensors and our loader use. */
  readonly shape: readonly number[];
  readonly type: GgmlTypeInfo;
  readonly elements: number;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface GgufFile {
  readonly version: number;
  readonly alignment: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  /** Bytes of the header (everything before the data section). */
  readonly headerBytes: number;
}

export interface ReadGgufOptions {
  /** Largest header (metadata + tensor infos) accepted. Default 256 MiB. */
  readonly maxHeaderBytes?: number;
  /** First prefix fetched; it doubles until the header fits. Default 1 MiB. */
  readonly initialReadBytes?: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8; // empty name, n_dims, type, offset
const MIN_KV_BYTES = 8 + 4 + 1;

/** Parse the header of a GGUF file through `source`; reads only the header's bytes. */
export async function readGguf(source: ByteRangeSource, options: ReadGgufOptions = {}): Promise<GgufFile> {
  const maxHeader = positiveInt(options.maxHeaderBytes ?? 256 * 1024 * 1024, 'maxHeaderBytes');
  let length = Math.min(source.size, maxHeader, positiveInt(options.initialReadBytes ?? 1024 * 1024, 'initialReadBytes'));
  for (;;) {
    const prefix = await source.read(0, length);
    try {
      return parseGgufHeader(prefix, source.size);
    } catch (error) {
      if (!(error instanceof NeedMoreBytes)) throw error;
      if (error.needed > maxHeader) {
        throw formatError('header-too-large', `header needs more than ${maxHeader} bytes`, { maxHeaderBytes: maxHeader });
      }
      length = Math.min(source.size, Math.max(error.needed, Math.min(maxHeader, length * 2)));
    }
  }
}

/** The tensor's bytes, read on their own (no other part of the file is held). */
export function readTensorBytes(source: ByteRangeSource, tensor: GgufTensorInfo): Promise<Uint8Array> {
  return source.read(tensor.offset, tensor.byteLength);
}

function positiveInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidRequestError(`gguf: ${what} must be a positive integer`, { [what]: v });
  return v;
}

/**
 * Parse from `prefix`, the first bytes of a file of `fileSize` bytes. Throws NeedMoreBytes when
 * the header runs past the prefix; any other failure is a ModelFormatError.
 */
export function parseGgufHeader(prefix: Uint8Array, fileSize: number): GgufFile {
  try {
    return parse(new GgufCursor(prefix, fileSize));
  } catch (error) {
    if (error instanceof ModelFormatError || error instanceof NeedMoreBytes) throw error;
    // Validation is meant to be total; callers still get nothing but the typed error.
    throw new ModelFormatError('gguf: unexpected failure while parsing', { reason: 'unexpected' }, { cause: error });
  }
}

function parse(c: GgufCursor): GgufFile {
  const magic = c.u32('magic');
  if (magic !== MAGIC) throw formatError('bad-magic', `not a GGUF file (magic 0x${magic.toString(16)})`);
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    throw formatError('unsupported-version', `GGUF version ${version} is not supported (2 and 3 are)`, { version });
  }
  const tensorCount = c.u64('tensor count');
  const kvCount = c.u64('metadata count');
  if (kvCount > c.remaining / MIN_KV_BYTES || tensorCount > c.remaining / MIN_TENSOR_INFO_BYTES) {
    throw formatError('count-too-large', `${kvCount} metadata entries and ${tensorCount} tensors cannot fit in the file`);
  }
  const metadata = readMetadata(c, kvCount);
  const alignment = alignmentOf(metadata);
  const infos = Array.from({ length: tensorCount }, () => readTensorInfo(c));
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors = placeTensors(infos, dataOffset, alignment, c.fileSize);
  return { version, alignment, metadata, tensors, dataOffset, headerBytes: c.pos };
}

function readMetadata(c: GgufCursor, count: number): Map<string, GgufValue> {
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < count; i++) {
    const key = c.string(`metadata key #${i}`);
    if (metadata.has(key)) throw formatError('duplicate-key', `metadata key ${key} appears twice`, { key });
    const type = c.u32(`type of ${key}`);
    metadata.set(key, readValue(c, type, key));
  }
  return metadata;
}

function alignmentOf(metadata: ReadonlyMap<string, GgufValue>): number {
  const value = metadata.get('general.alignment');
  if (value === undefined) return DEFAULT_ALIGNMENT;
  // gguf.cpp requires a u32 power of two; anything else is a damaged file.
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || (value & (value - 1)) !== 0) {
    throw formatError('invalid-alignment', `general.alignment ${String(value)} is not a positive power of two`);
  }
  return value;
}

interface RawTensorInfo {
  readonly name: string;
  readonly ne: readonly number[];
  readonly type: GgmlTypeInfo;
  readonly relOffset: number;
}

function readTensorInfo(c: GgufCursor): RawTensorInfo {
  const name = c.string('tensor name');
  const nDims = c.u32(`dimension count of ${name}`);
  if (nDims < 1 || nDims > MAX_DIMS) throw formatError('invalid-dims', `tensor ${name} has ${nDims} dimensions`, { tensor: name });
  const ne = Array.from({ length: nDims }, (_, i) => c.u64(`ne[${i}] of ${name}`));
  const typeId = c.u32(`type of ${name}`);
  const type = ggmlTypeById(typeId);
  if (type === undefined) throw formatError('unknown-tensor-type', `tensor ${name} has unknown ggml type ${typeId}`, { tensor: name, type: typeId });
  const relOffset = c.u64(`offset of ${name}`);
  return { name, ne, type, relOffset };
}

function placeTensors(infos: readonly RawTensorInfo[], dataOffset: number, alignment: number, fileSize: number): GgufTensorInfo[] {
  const names = new Set<string>();
  const tensors = infos.map((t) => {
    if (names.has(t.name)) throw formatError('duplicate-tensor', `tensor ${t.name} appears twice`, { tensor: t.name });
    names.add(t.name);
    return placeTensor(t, dataOffset, alignment, fileSize);
  });
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    if (byOffset[i].offset < prev.offset + prev.byteLength) {
      throw formatError('overlapping-tensors', `tensors ${prev.name} and ${byOffset[i].name} overlap`, { tensor: byOffset[i].name });
    }
  }
  return tensors;
}

function placeTensor(t: RawTensorInfo, dataOffset: number, alignment: number, fileSize: number): GgufTensorInfo {
  const { name, ne, type } = t;
  if (ne[0] % type.blockElements !== 0) {
    throw formatError('partial-block', `tensor ${name}: row of ${ne[0]} is not a whole number of ${type.name} blocks`, { tensor: name });
  }
  let elements = 1;
  for (const d of ne) {
    elements *= d;
    if (!Number.isSafeInteger(elements)) throw formatError('value-out-of-range', `tensor ${name} has too many elements`, { tensor: name });
  }
  const byteLength = (elements / type.blockElements) * type.blockBytes;
  if (t.relOffset % alignment !== 0) {
    throw formatError('misaligned-offset', `tensor ${name} at ${t.relOffset} is not aligned to ${alignment}`, { tensor: name });
  }
  const offset = dataOffset + t.relOffset;
  if (!Number.isSafeInteger(offset + byteLength) || offset + byteLength > fileSize) {
    throw formatError('tensor-out-of-bounds', `tensor ${name} (${byteLength} bytes at ${offset}) lies past the end of the file (${fileSize})`, { tensor: name });
  }
  return { name, ne, shape: [...ne].reverse(), type, elements, offset, byteLength };
}

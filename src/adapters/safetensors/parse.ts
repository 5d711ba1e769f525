/**
 * Reader of the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [u64 little-endian N][N bytes of UTF-8 JSON header][data section]
 *
 * The bytes are untrusted (a cache blob from IndexedDB, a downloaded model): the whole header is
 * checked against the file size before any tensor view is made, and every failure, whatever
 * the input, is a CacheCorruptError whose `details.reason` is one of `CorruptReason`.
 */
import { CacheCorruptError, InvalidRequestError } from '../../domain/errors.ts';
import { DTYPE_BYTES, isSafetensorsDtype, type SafetensorsDtype } from './dtype.ts';

export interface TensorEntry {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** A view into the parsed input (zero copy): it shares the caller's ArrayBuffer. */
  readonly data: Uint8Array;
}

export interface SafetensorsFile {
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
}

export interface ParseSafetensorsOptions {
  /** Largest JSON header accepted, in bytes; guards against huge allocations. Default 100 MiB. */
  readonly maxHeaderBytes?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** The `details.reason` of every CacheCorruptError that parseSafetensors throws. */
export type CorruptReason =
  | 'too-short'
  | 'header-length-overflow'
  | 'header-too-large'
  | 'header-out-of-bounds'
  | 'invalid-utf8'
  | 'invalid-header-start'
  | 'invalid-json'
  | 'invalid-metadata'
  | 'invalid-tensor-entry'
  | 'unknown-field'
  | 'missing-field'
  | 'invalid-dtype'
  | 'invalid-shape'
  | 'invalid-offsets'
  | 'offsets-out-of-bounds'
  | 'size-mismatch'
  | 'overlapping-tensors'
  | 'data-gap'
  | 'trailing-data'
  | 'unexpected';

const METADATA_KEY = '__metadata__';
const TENSOR_FIELDS: readonly string[] = ['dtype', 'shape', 'data_offsets'];
const HEADER_PREFIX_BYTES = 8;

/** A tensor's header entry once validated; offsets are relative to the data section. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

type JsonObject = Record<string, unknown>;

function corrupt(reason: CorruptReason, message: string, extra?: JsonObject): CacheCorruptError {
  return new CacheCorruptError(`safetensors: ${message}`, { reason, ...extra });
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parse and validate a safetensors file; tensor data are zero-copy views into `bytes`. */
export function parseSafetensors(
  bytes: Uint8Array | ArrayBufferLike,
  options: ParseSafetensorsOptions = {},
): SafetensorsFile {
  const maxHeaderBytes = resolveMaxHeaderBytes(options);
  const u8 = asUint8Array(bytes);
  try {
    return parseValidated(u8, maxHeaderBytes);
  } catch (error) {
    if (error instanceof CacheCorruptError) throw error;
    // Validation is meant to be total, so this is a bug of ours; callers still rely on
    // untrusted bytes producing nothing but CacheCorruptError.
    throw new CacheCorruptError(
      'safetensors: unexpected failure while parsing',
      { reason: 'unexpected' satisfies CorruptReason },
      { cause: error },
    );
  }
}

function resolveMaxHeaderBytes(options: ParseSafetensorsOptions): number {
  const max = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(max) || max < 0) {
    throw new InvalidRequestError('safetensors: maxHeaderBytes must be a non-negative integer', {
      maxHeaderBytes: max,
    });
  }
  return max;
}

function asUint8Array(bytes: unknown): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A tag test rather than instanceof, so buffers from another realm (a worker, an iframe) pass.
  const tag = Object.prototype.toString.call(bytes);
  if (tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]') {
    return new Uint8Array(bytes as ArrayBufferLike);
  }
  throw new InvalidRequestError('safetensors: input must be a Uint8Array or an ArrayBuffer', { type: tag });
}

function parseValidated(u8: Uint8Array, maxHeaderBytes: number): SafetensorsFile {
  const headerBytes = readHeaderLength(u8, maxHeaderBytes, u8.byteLength);
  const layout = layoutOf(u8.subarray(HEADER_PREFIX_BYTES, HEADER_PREFIX_BYTES + headerBytes), u8.byteLength);
  const tensors = new Map<string, TensorEntry>();
  for (const info of layout.tensors) {
    const data = u8.subarray(layout.dataStart + info.begin, layout.dataStart + info.end);
    tensors.set(info.name, Object.freeze({ dtype: info.dtype, shape: info.shape, data }));
  }
  return Object.freeze({ metadata: layout.metadata, tensors });
}

/** Where each tensor of a file sits, from its header alone (for reading the file as a stream). */
export interface SafetensorsLayout {
  readonly metadata: Readonly<Record<string, string>>;
  /** File offset of the data section (8 + header length). */
  readonly dataStart: number;
  /** Tensors in header order; begin/end are offsets in the data section. */
  readonly tensors: readonly TensorInfo[];
}

function layoutOf(headerJson: Uint8Array, fileBytes: number): SafetensorsLayout {
  const dataStart = HEADER_PREFIX_BYTES + headerJson.byteLength;
  const dataSize = fileBytes - dataStart;
  const header = parseHeaderJson(decodeHeader(headerJson));
  const metadata = readMetadata(header[METADATA_KEY]);
  const infos: TensorInfo[] = [];
  for (const name of Object.keys(header)) {
    if (name !== METADATA_KEY) infos.push(readTensorInfo(name, header[name], dataSize));
  }
  checkCoverage(infos, dataSize);
  return Object.freeze({ metadata, dataStart, tensors: infos });
}

/**
 * The header length from a file's first 8 bytes, checked against the whole file's size (which a
 * stream knows before its data arrive). Throws CacheCorruptError like parseSafetensors.
 */
export function safetensorsHeaderLength(prefix: Uint8Array, fileBytes: number, options: ParseSafetensorsOptions = {}): number {
  return readHeaderLength(prefix, resolveMaxHeaderBytes(options), fileBytes);
}

/**
 * Validate a header (the JSON bytes after the 8-byte prefix) against the file's size, with every
 * check parseSafetensors makes before touching data: offsets in bounds, tensors tiling the data
 * section exactly. Throws CacheCorruptError.
 */
export function parseSafetensorsLayout(headerJson: Uint8Array, fileBytes: number): SafetensorsLayout {
  try {
    return layoutOf(headerJson, fileBytes);
  } catch (error) {
    if (error instanceof CacheCorruptError) throw error;
    throw new CacheCorruptError('safetensors: unexpected failure while parsing', { reason: 'unexpected' satisfies CorruptReason }, { cause: error });
  }
}

function readHeaderLength(u8: Uint8Array, maxHeaderBytes: number, fileBytes: number): number {
  if (u8.byteLength < HEADER_PREFIX_BYTES || fileBytes < HEADER_PREFIX_BYTES) {
    throw corrupt('too-short', `file is ${fileBytes} bytes, shorter than the 8-byte length prefix`, { fileBytes });
  }
  const view = new DataView(u8.buffer, u8.byteOffset, HEADER_PREFIX_BYTES);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0) {
    throw corrupt('header-length-overflow', 'header length does not fit in 32 bits', { high, low });
  }
  if (low > maxHeaderBytes) {
    throw corrupt('header-too-large', `header length ${low} exceeds the limit of ${maxHeaderBytes} bytes`, {
      headerBytes: low,
      maxHeaderBytes,
    });
  }
  if (HEADER_PREFIX_BYTES + low > fileBytes) {
    throw corrupt('header-out-of-bounds', `header length ${low} runs past the end of a ${fileBytes}-byte file`, {
      headerBytes: low,
      fileBytes,
    });
  }
  return low;
}

// fatal: reject invalid UTF-8 rather than substitute U+FFFD. ignoreBOM: keep a BOM in the text so
// that it fails the '{' check, as the reference reader does, instead of being silently dropped.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeHeader(bytes: Uint8Array): string {
  // Some engines refuse to decode views of a SharedArrayBuffer; the header is small, so copy it.
  const input = bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice();
  try {
    return utf8.decode(input);
  } catch (error) {
    throw corrupt('invalid-utf8', 'header is not valid UTF-8', { cause: String(error) });
  }
}

function parseHeaderJson(text: string): JsonObject {
  if (text.charCodeAt(0) !== 0x7b /* { */) {
    throw corrupt('invalid-header-start', "header does not start with '{'");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corrupt('invalid-json', `header is not valid JSON (${String(error)})`);
  }
  // Unreachable after the '{' check, but it narrows the type without a cast.
  if (!isJsonObject(value)) throw corrupt('invalid-header-start', 'header is not a JSON object');
  return value;
}

function readMetadata(raw: unknown): Readonly<Record<string, string>> {
  // The reference reader maps null to "no metadata", so we do too.
  if (raw === undefined || raw === null) return Object.freeze({});
  if (!isJsonObject(raw)) throw corrupt('invalid-metadata', '__metadata__ must be an object');
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') {
      throw corrupt('invalid-metadata', `__metadata__["${key}"] is not a string`, { key });
    }
    entries.push([key, value]);
  }
  // fromEntries defines own properties, so a "__proto__" key stays data, not a prototype.
  return Object.freeze(Object.fromEntries(entries));
}

function readTensorInfo(name: string, raw: unknown, dataSize: number): TensorInfo {
  if (!isJsonObject(raw)) {
    throw corrupt('invalid-tensor-entry', `entry of tensor "${name}" is not an object`, { tensor: name });
  }
  checkFields(name, raw);
  const dtype = raw['dtype'];
  if (!isSafetensorsDtype(dtype)) {
    throw corrupt('invalid-dtype', `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`, {
      tensor: name,
      dtype: String(dtype),
    });
  }
  const shape = readShape(name, raw['shape']);
  const [begin, end] = readOffsets(name, raw['data_offsets'], dataSize);
  checkByteLength(name, dtype, shape, end - begin);
  return { name, dtype, shape, begin, end };
}

function checkFields(name: string, raw: JsonObject): void {
  for (const key of Object.keys(raw)) {
    if (!TENSOR_FIELDS.includes(key)) {
      throw corrupt('unknown-field', `tensor "${name}" has unknown field "${key}"`, { tensor: name, field: key });
    }
  }
  for (const field of TENSOR_FIELDS) {
    if (!Object.hasOwn(raw, field)) {
      throw corrupt('missing-field', `tensor "${name}" lacks "${field}"`, { tensor: name, field });
    }
  }
}

function isNonNegativeSafeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Array.isArray narrows to any[]; this keeps the elements unknown until checked. */
function isUnknownArray(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

function readShape(name: string, raw: unknown): readonly number[] {
  if (!isUnknownArray(raw) || !raw.every(isNonNegativeSafeInteger)) {
    throw corrupt('invalid-shape', `tensor "${name}" shape is not an array of non-negative integers`, {
      tensor: name,
    });
  }
  // Normalise -0 (valid JSON, passes the checks) so shapes compare and print plainly.
  return Object.freeze(raw.map((d) => d + 0));
}

function readOffsets(name: string, raw: unknown, dataSize: number): [number, number] {
  if (!isUnknownArray(raw) || raw.length !== 2 || !raw.every(isNonNegativeSafeInteger)) {
    throw corrupt('invalid-offsets', `tensor "${name}" data_offsets is not [begin, end] of non-negative integers`, {
      tensor: name,
    });
  }
  const [begin, end] = raw.map((d) => d + 0);
  if (begin > end) {
    throw corrupt('invalid-offsets', `tensor "${name}" data_offsets begin ${begin} > end ${end}`, {
      tensor: name,
      begin,
      end,
    });
  }
  if (end > dataSize) {
    throw corrupt('offsets-out-of-bounds', `tensor "${name}" ends at ${end}, past the ${dataSize}-byte data section`, {
      tensor: name,
      end,
      dataSize,
    });
  }
  return [begin, end];
}

/**
 * product(shape) * dtype size must equal the byte range. The running product stops as soon as it
 * passes the range: every factor is a safe integer and the range is below 2^53, so the comparison
 * stays exact even where the full product would overflow.
 */
function checkByteLength(name: string, dtype: SafetensorsDtype, shape: readonly number[], byteLength: number): void {
  if (shape.includes(0)) {
    if (byteLength === 0) return;
  } else {
    let bytes = DTYPE_BYTES[dtype];
    for (const d of shape) {
      bytes *= d;
      if (bytes > byteLength) break;
    }
    if (bytes === byteLength) return;
  }
  throw corrupt('size-mismatch', `tensor "${name}" ${dtype}[${shape.join(',')}] does not fit ${byteLength} bytes`, {
    tensor: name,
    byteLength,
  });
}

/** Tensors must tile the data section exactly: no overlap, no hole, nothing left over. */
function checkCoverage(infos: readonly TensorInfo[], dataSize: number): void {
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const info of sorted) {
    if (info.begin < covered) {
      throw corrupt('overlapping-tensors', `tensor "${info.name}" overlaps the tensor before it`, {
        tensor: info.name,
        begin: info.begin,
      });
    }
    if (info.begin > covered) {
      throw corrupt('data-gap', `bytes ${covered}..${info.begin} of the data section belong to no tensor`, {
        tensor: info.name,
        gapBegin: covered,
        gapEnd: info.begin,
      });
    }
    covered = info.end;
  }
  if (covered !== dataSize) {
    throw corrupt('trailing-data', `data section has ${dataSize - covered} bytes after the last tensor`, {
      covered,
      dataSize,
    });
  }
}

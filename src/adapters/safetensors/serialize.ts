/**
 * Writer of the safetensors format, byte-compatible with Hugging Face's reference writer:
 * `__metadata__` first, the JSON header padded with spaces so the data section starts at an
 * 8-byte-aligned offset, tensors laid out in a deterministic order.
 */
import { InvalidRequestError } from '../../domain/errors.ts';
import { DTYPE_BYTES, isSafetensorsDtype, type SafetensorsDtype } from './dtype.ts';

export interface TensorInput {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Little-endian element bytes, exactly product(shape) * dtype size of them. */
  readonly data: ArrayBufferView;
}

export type TensorInputs = ReadonlyMap<string, TensorInput> | Readonly<Record<string, TensorInput>>;

const METADATA_KEY = '__metadata__';
const DATA_ALIGNMENT = 8;

interface Planned {
  readonly name: string;
  readonly input: TensorInput;
  readonly bytes: Uint8Array;
  readonly begin: number;
}

/** Serialize tensors (and optional string metadata) into one safetensors file. */
export function serializeSafetensors(
  tensors: TensorInputs,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array<ArrayBuffer> {
  const planned = plan(toEntries(tensors));
  const header = encodeHeader(planned, metadata);
  const dataBytes = planned.reduce((sum, p) => sum + p.bytes.byteLength, 0);
  const out = new Uint8Array(8 + header.byteLength + dataBytes);
  const view = new DataView(out.buffer);
  // u64 little-endian; the high word stays 0 because a header never reaches 4 GiB.
  view.setUint32(0, header.byteLength, true);
  view.setUint32(4, 0, true);
  out.set(header, 8);
  const dataStart = 8 + header.byteLength;
  for (const p of planned) out.set(p.bytes, dataStart + p.begin);
  return out;
}

function toEntries(tensors: TensorInputs): [string, TensorInput][] {
  if (tensors instanceof Map) return [...(tensors as ReadonlyMap<string, TensorInput>).entries()];
  return Object.entries(tensors as Readonly<Record<string, TensorInput>>);
}

/**
 * Order by element size, largest first, then by name (as the reference writer does): with an
 * 8-byte-aligned data section every tensor then starts aligned to its own element size, so
 * readers get zero-copy typed views.
 */
function plan(entries: [string, TensorInput][]): Planned[] {
  const checked = entries.map(([name, input]) => ({ name, input, bytes: checkTensor(name, input) }));
  checked.sort((a, b) => DTYPE_BYTES[b.input.dtype] - DTYPE_BYTES[a.input.dtype] || compareNames(a.name, b.name));
  let offset = 0;
  return checked.map((c) => {
    const begin = offset;
    offset += c.bytes.byteLength;
    return { ...c, begin };
  });
}

function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function checkTensor(name: string, input: TensorInput): Uint8Array {
  if (name === METADATA_KEY) {
    throw new InvalidRequestError(`safetensors: "${METADATA_KEY}" cannot name a tensor`);
  }
  if (!isSafetensorsDtype(input.dtype)) {
    throw new InvalidRequestError(`safetensors: tensor "${name}" has unknown dtype`, { tensor: name, dtype: String(input.dtype) });
  }
  if (!Array.isArray(input.shape) || !input.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InvalidRequestError(`safetensors: tensor "${name}" shape must be non-negative integers`, { tensor: name });
  }
  if (!ArrayBuffer.isView(input.data)) {
    throw new InvalidRequestError(`safetensors: tensor "${name}" data is not an ArrayBufferView`, { tensor: name });
  }
  const expected = input.shape.reduce((n, d) => n * d, DTYPE_BYTES[input.dtype]);
  if (!Number.isSafeInteger(expected) || expected !== input.data.byteLength) {
    throw new InvalidRequestError(
      `safetensors: tensor "${name}" ${input.dtype}[${input.shape.join(',')}] needs ${expected} bytes, got ${input.data.byteLength}`,
      { tensor: name, expected, actual: input.data.byteLength },
    );
  }
  return new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.byteLength);
}

function checkMetadata(metadata: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new InvalidRequestError(`safetensors: metadata "${key}" must be a string`, { key });
    }
  }
}

/** JSON written by hand so key order is ours: JSON.stringify moves integer-like keys first. */
function encodeHeader(planned: readonly Planned[], metadata: Readonly<Record<string, string>> | undefined): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    checkMetadata(metadata);
    const fields = Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }
  for (const p of planned) {
    const end = p.begin + p.bytes.byteLength;
    const info = `{"dtype":"${p.input.dtype}","shape":[${p.input.shape.join(',')}],"data_offsets":[${p.begin},${end}]}`;
    parts.push(`${JSON.stringify(p.name)}:${info}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil((8 + json.byteLength) / DATA_ALIGNMENT) * DATA_ALIGNMENT - 8;
  const header = new Uint8Array(padded).fill(0x20 /* space */);
  header.set(json);
  return header;
}

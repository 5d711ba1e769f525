/**
 * A GGUF v3 writer for fixtures and tests: metadata with explicit value types, tensors already
 * in their ggml block layout (see tools/ggml-quantize.ts). Layout as gguf.cpp writes it: header,
 * key/values, tensor infos, zero padding to the alignment, then each tensor at an aligned offset.
 */
import { ggmlType, type GgmlTypeName } from '../src/domain/ggml-types.ts';
import { GGUF_VALUE_TYPE } from '../src/adapters/gguf/metadata.ts';

type ScalarType = Exclude<keyof typeof GGUF_VALUE_TYPE, 'array'>;

export type GgufMetaValue =
  | { readonly type: Exclude<ScalarType, 'string' | 'bool' | 'u64' | 'i64'>; readonly value: number }
  | { readonly type: 'u64' | 'i64'; readonly value: bigint | number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'array'; readonly elem: ScalarType; readonly value: readonly (number | bigint | string | boolean)[] };

export interface GgufTensorInput {
  readonly name: string;
  /** ggml order: ne[0] is the row length. */
  readonly ne: readonly number[];
  readonly type: GgmlTypeName;
  readonly data: Uint8Array;
}

export interface GgufWriteInput {
  readonly version?: 2 | 3;
  readonly alignment?: number;
  readonly metadata: Readonly<Record<string, GgufMetaValue>>;
  readonly tensors: readonly GgufTensorInput[];
}

class ByteSink {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  scalar(size: number, set: (v: DataView) => void): void {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number): void { this.scalar(4, (d) => d.setUint32(0, v, true)); }
  u64(v: number | bigint): void { this.scalar(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.push(b);
  }
  pad(alignment: number): void {
    this.push(new Uint8Array((alignment - (this.length % alignment)) % alignment));
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function writeScalar(s: ByteSink, type: ScalarType, v: number | bigint | string | boolean): void {
  switch (type) {
    case 'u8': return s.scalar(1, (d) => d.setUint8(0, Number(v)));
    case 'i8': return s.scalar(1, (d) => d.setInt8(0, Number(v)));
    case 'u16': return s.scalar(2, (d) => d.setUint16(0, Number(v), true));
    case 'i16': return s.scalar(2, (d) => d.setInt16(0, Number(v), true));
    case 'u32': return s.u32(Number(v));
    case 'i32': return s.scalar(4, (d) => d.setInt32(0, Number(v), true));
    case 'f32': return s.scalar(4, (d) => d.setFloat32(0, Number(v), true));
    case 'f64': return s.scalar(8, (d) => d.setFloat64(0, Number(v), true));
    case 'bool': return s.scalar(1, (d) => d.setUint8(0, v ? 1 : 0));
    case 'string': return s.string(String(v));
    case 'u64': return s.u64(BigInt(v));
    case 'i64': return s.scalar(8, (d) => d.setBigInt64(0, BigInt(v), true));
  }
}

function writeValue(s: ByteSink, m: GgufMetaValue): void {
  s.u32(GGUF_VALUE_TYPE[m.type]);
  if (m.type !== 'array') return writeScalar(s, m.type, m.value);
  s.u32(GGUF_VALUE_TYPE[m.elem]);
  s.u64(m.value.length);
  for (const v of m.value) writeScalar(s, m.elem, v);
}

export function writeGguf(input: GgufWriteInput): Uint8Array {
  const alignment = input.alignment ?? 32;
  const metadata: Record<string, GgufMetaValue> = { ...input.metadata };
  if (input.alignment !== undefined) metadata['general.alignment'] = { type: 'u32', value: alignment };
  const s = new ByteSink();
  s.push(new TextEncoder().encode('GGUF'));
  s.u32(input.version ?? 3);
  s.u64(input.tensors.length);
  s.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    s.string(key);
    writeValue(s, value);
  }
  let offset = 0;
  for (const t of input.tensors) {
    const info = ggmlType(t.type);
    const elements = t.ne.reduce((a, b) => a * b, 1);
    const expected = (elements / info.blockElements) * info.blockBytes;
    if (expected !== t.data.length) throw new RangeError(`${t.name}: ${t.data.length} bytes, ${t.type} ${t.ne.join('x')} needs ${expected}`);
    s.string(t.name);
    s.u32(t.ne.length);
    for (const d of t.ne) s.u64(d);
    s.u32(info.id);
    s.u64(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  s.pad(alignment);
  for (const t of input.tensors) {
    s.push(t.data);
    s.pad(alignment);
  }
  return s.bytes();
}

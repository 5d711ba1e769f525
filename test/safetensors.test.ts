import { describe, expect, it } from 'vitest';
import { CacheCorruptError, InvalidRequestError } from '../src/domain/errors.ts';
import { f32ArrayToBf16, f32ArrayToF16 } from '../src/domain/half.ts';
import { mulberry32 } from '../tools/prng.ts';
import {
  DTYPE_BYTES,
  SAFETENSORS_DTYPES,
  isSafetensorsDtype,
  parseSafetensors,
  serializeSafetensors,
  tensorToFloat32,
  typedView,
  type CorruptReason,
  type SafetensorsDtype,
  type TensorEntry,
  type TensorInput,
} from '../src/adapters/safetensors/index.ts';

const enc = new TextEncoder();

/** A file assembled byte by byte from the spec: u64 LE length, header, data. */
function rawFile(header: string | Uint8Array, data: Uint8Array | number = 0, lengthField?: [number, number]): Uint8Array {
  const h = typeof header === 'string' ? enc.encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.byteLength + d.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, lengthField ? lengthField[0] : h.byteLength, true);
  view.setUint32(4, lengthField ? lengthField[1] : 0, true);
  out.set(h, 8);
  out.set(d, 8 + h.byteLength);
  return out;
}

/** Spaces up to the next multiple of 8, as the reference writer pads. */
function padded(json: string): string {
  return json + ' '.repeat((8 - (json.length % 8)) % 8);
}


function randomTensor(dtype: SafetensorsDtype, shape: number[], rand: () => number): TensorInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const floats = Float32Array.from({ length: n }, () => (rand() - 0.5) * 1000);
  const ints = (lo: number, hi: number): number[] => Array.from({ length: n }, () => lo + Math.floor(rand() * (hi - lo)));
  const data: Record<SafetensorsDtype, () => ArrayBufferView> = {
    F64: () => Float64Array.from({ length: n }, () => (rand() - 0.5) * 1e300),
    F32: () => floats,
    F16: () => f32ArrayToF16(floats),
    BF16: () => f32ArrayToBf16(floats),
    I64: () => BigInt64Array.from({ length: n }, () => BigInt(ints(-1e9, 1e9)[0]) * 1_000_003n),
    I32: () => Int32Array.from(ints(-(2 ** 31), 2 ** 31)),
    I16: () => Int16Array.from(ints(-(2 ** 15), 2 ** 15)),
    I8: () => Int8Array.from(ints(-128, 128)),
    U8: () => Uint8Array.from(ints(0, 256)),
    U16: () => Uint16Array.from(ints(0, 2 ** 16)),
    U32: () => Uint32Array.from(ints(0, 2 ** 32)),
    BOOL: () => Uint8Array.from(ints(0, 2)),
  };
  return { dtype, shape, data: data[dtype]() };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function expectCorrupt(fn: () => unknown, reason: CorruptReason): CacheCorruptError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CacheCorruptError);
    const e = error as CacheCorruptError;
    expect(e.name).toBe('CacheCorruptError');
    expect(e.code).toBe('CACHE_CORRUPT');
    expect(e.details?.['reason']).toBe(reason);
    expect(e.message).toMatch(/^safetensors: /);
    return e;
  }
  return expect.fail(`expected CacheCorruptError(${reason})`);
}

describe('dtype', () => {
  it('knows the twelve dtypes and their sizes', () => {
    expect(SAFETENSORS_DTYPES).toHaveLength(12);
    expect(DTYPE_BYTES.BF16).toBe(2);
    expect(DTYPE_BYTES.I64).toBe(8);
    expect(DTYPE_BYTES.BOOL).toBe(1);
    expect(isSafetensorsDtype('F32')).toBe(true);
    expect(isSafetensorsDtype('f32')).toBe(false);
    expect(isSafetensorsDtype('toString')).toBe(false);
    expect(isSafetensorsDtype(4)).toBe(false);
  });
});

describe('parse of bytes built from the spec', () => {
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const values = new Float32Array([1.5, -2]);

  it('reads a padded single-tensor file, as Python safetensors writes it', () => {
    const bytes = rawFile(padded(json), bytesOf(values));
    expect(bytes.byteLength).toBe(8 + 56 + 8);
    const file = parseSafetensors(bytes);
    expect(file.metadata).toEqual({});
    expect([...file.tensors.keys()]).toEqual(['a']);
    const a = file.tensors.get('a') as TensorEntry;
    expect(a.dtype).toBe('F32');
    expect(a.shape).toEqual([2]);
    expect([...typedView(a)]).toEqual([1.5, -2]);
  });

  it('serializes that file byte for byte', () => {
    expect(serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: values } })).toEqual(rawFile(padded(json), bytesOf(values)));
  });

  it('reads metadata as written by torch (format: pt), unpadded headers and trailing whitespace', () => {
    const header = '{"__metadata__":{"format":"pt"},"w":{"dtype":"I8","shape":[1,3],"data_offsets":[0,3]}}\n\t ';
    const file = parseSafetensors(rawFile(header, Uint8Array.of(1, 0xff, 3)));
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...typedView(file.tensors.get('w') as TensorEntry)]).toEqual([1, -1, 3]);
  });

  it('accepts an empty file ({} and no data), null metadata and zero-size tensors', () => {
    expect(parseSafetensors(rawFile('{}')).tensors.size).toBe(0);
    const header = '{"__metadata__":null,"e":{"dtype":"F32","shape":[0,4],"data_offsets":[4,4]},"s":{"dtype":"U32","shape":[],"data_offsets":[0,4]}}';
    const file = parseSafetensors(rawFile(header, 4));
    expect(file.tensors.get('e')?.data.byteLength).toBe(0);
    expect(file.tensors.get('s')?.shape).toEqual([]);
  });

  it('keeps a "__proto__" metadata key or tensor name as plain data', () => {
    const header = '{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const file = parseSafetensors(rawFile(header, 1));
    expect(Object.getPrototypeOf(file.metadata)).toBe(Object.prototype);
    expect(Object.hasOwn(file.metadata, '__proto__')).toBe(true);
    expect(file.tensors.has('__proto__')).toBe(true);
  });
});

describe('zero copy', () => {
  it('returns views that share the input buffer, for Uint8Array and ArrayBuffer inputs', () => {
    const bytes = serializeSafetensors({ x: { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) } });
    for (const input of [bytes, bytes.buffer]) {
      const x = parseSafetensors(input).tensors.get('x') as TensorEntry;
      expect(x.data.buffer).toBe(bytes.buffer);
      expect(typedView(x).buffer).toBe(bytes.buffer);
      expect(tensorToFloat32(x).buffer).toBe(bytes.buffer);
    }
  });

  it('reads a SharedArrayBuffer in place', () => {
    const bytes = serializeSafetensors({ x: { dtype: 'I16', shape: [2], data: Int16Array.of(-3, 4) } });
    const shared = new SharedArrayBuffer(bytes.byteLength);
    new Uint8Array(shared).set(bytes);
    const x = parseSafetensors(shared).tensors.get('x') as TensorEntry;
    expect(x.data.buffer).toBe(shared);
    expect([...typedView(x)]).toEqual([-3, 4]);
  });

  it('copies when the data start is misaligned for the element type', () => {
    const file = serializeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float32Array([7, 8]) } });
    const shifted = new Uint8Array(file.byteLength + 1);
    shifted.set(file, 1);
    const x = parseSafetensors(shifted.subarray(1)).tensors.get('x') as TensorEntry;
    expect(x.data.buffer).toBe(shifted.buffer);
    const view = typedView(x);
    expect(view.buffer).not.toBe(shifted.buffer);
    expect([...view]).toEqual([7, 8]);
  });

  it('lays tensors out so each starts aligned to its element size', () => {
    const rand = mulberry32(7);
    const bytes = serializeSafetensors({
      a: randomTensor('U8', [3], rand),
      b: randomTensor('F32', [5], rand),
      c: randomTensor('F64', [1], rand),
      d: randomTensor('F16', [3], rand),
    });
    for (const t of parseSafetensors(bytes).tensors.values()) {
      expect(t.data.byteOffset % DTYPE_BYTES[t.dtype]).toBe(0);
      expect(typedView(t).buffer).toBe(bytes.buffer);
    }
  });
});

describe('round trip', () => {
  it.each(SAFETENSORS_DTYPES.map((d) => [d]))('%s with metadata, several shapes', (dtype) => {
    const rand = mulberry32(dtype.length * 977 + dtype.charCodeAt(0));
    const inputs = new Map<string, TensorInput>([
      ['m.weight', randomTensor(dtype, [3, 5], rand)],
      ['scalar', randomTensor(dtype, [], rand)],
      ['empty', randomTensor(dtype, [0, 7], rand)],
      ['cube', randomTensor(dtype, [2, 3, 4], rand)],
    ]);
    const metadata = { format: 'semantic-kv', version: '1', '1': 'integer-like key', 'ключ': 'значение ✓' };
    const bytes = serializeSafetensors(inputs, metadata);
    const file = parseSafetensors(bytes);
    expect(file.metadata).toEqual(metadata);
    expect(new Set(file.tensors.keys())).toEqual(new Set(inputs.keys()));
    for (const [name, input] of inputs) {
      const t = file.tensors.get(name) as TensorEntry;
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual(input.shape);
      expect(t.data).toEqual(bytesOf(input.data));
      expect(typedView(t)).toEqual(input.data);
    }
  });

  it('is deterministic whatever the insertion order, Map or Record', () => {
    const rand = mulberry32(3);
    const a = randomTensor('F32', [4], rand);
    const b = randomTensor('I8', [5], rand);
    const c = randomTensor('F32', [1], rand);
    const one = serializeSafetensors(new Map([['b', b], ['a', a], ['c', c]]));
    const two = serializeSafetensors({ c, a, b });
    expect(one).toEqual(two);
    const header = new TextDecoder().decode(one.subarray(8, 8 + new DataView(one.buffer).getUint32(0, true)));
    // Widest element first, then by name.
    expect(header.indexOf('"a"')).toBeLessThan(header.indexOf('"c"'));
    expect(header.indexOf('"c"')).toBeLessThan(header.indexOf('"b"'));
  });

  it('pads the header with spaces to an 8-byte-aligned data section', () => {
    for (let len = 0; len < 16; len++) {
      const bytes = serializeSafetensors({ ['x'.repeat(len)]: { dtype: 'U8', shape: [1], data: Uint8Array.of(9) } });
      const n = new DataView(bytes.buffer).getUint32(0, true);
      expect((8 + n) % 8).toBe(0);
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(header).toMatch(/^\{.*\} *$/);
      expect(bytes[8 + n]).toBe(9);
    }
  });

  it('round-trips names with quotes, escapes and lone surrogates', () => {
    const names = ['a"b', 'back\\slash', 'new\nline', '\ud800lone', '', 'ünïcödé'];
    const inputs = Object.fromEntries(names.map((n, i) => [n, { dtype: 'U8' as const, shape: [1], data: Uint8Array.of(i) }]));
    const file = parseSafetensors(serializeSafetensors(inputs));
    for (const [i, n] of names.entries()) expect(file.tensors.get(n)?.data[0]).toBe(i);
  });
});

describe('serialize validation', () => {
  const f32 = (n: number): Float32Array => new Float32Array(n);
  it.each<[string, () => unknown]>([
    ['byte length mismatch', () => serializeSafetensors({ a: { dtype: 'F32', shape: [3], data: f32(2) } })],
    ['dtype size mismatch', () => serializeSafetensors({ a: { dtype: 'F64', shape: [2], data: f32(2) } })],
    ['negative dim', () => serializeSafetensors({ a: { dtype: 'F32', shape: [-1], data: f32(0) } })],
    ['fractional dim', () => serializeSafetensors({ a: { dtype: 'F32', shape: [0.5], data: f32(0) } })],
    ['unknown dtype', () => serializeSafetensors({ a: { dtype: 'F8' as SafetensorsDtype, shape: [1], data: f32(1) } })],
    ['__metadata__ tensor', () => serializeSafetensors({ __metadata__: { dtype: 'F32', shape: [1], data: f32(1) } })],
    ['non-string metadata', () => serializeSafetensors({}, { v: 1 as unknown as string })],
    ['overflowing shape', () => serializeSafetensors({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data: f32(0) } })],
  ])('%s is an InvalidRequestError', (_, fn) => {
    expect(fn).toThrow(InvalidRequestError);
  });
});

describe('views', () => {
  const entry = (dtype: SafetensorsDtype, data: ArrayBufferView): TensorEntry => ({ dtype, shape: [], data: bytesOf(data) });

  it('converts every numeric dtype to float32', () => {
    expect([...tensorToFloat32(entry('F16', Uint16Array.of(0x3c00, 0xc000)))]).toEqual([1, -2]);
    expect([...tensorToFloat32(entry('BF16', Uint16Array.of(0x3f80, 0x4049)))]).toEqual([1, 3.140625]);
    expect([...tensorToFloat32(entry('F64', Float64Array.of(0.5, -3)))]).toEqual([0.5, -3]);
    expect([...tensorToFloat32(entry('I64', BigInt64Array.of(-5n, 7n)))]).toEqual([-5, 7]);
    expect([...tensorToFloat32(entry('I32', Int32Array.of(-5, 7)))]).toEqual([-5, 7]);
    expect([...tensorToFloat32(entry('I16', Int16Array.of(-5)))]).toEqual([-5]);
    expect([...tensorToFloat32(entry('I8', Int8Array.of(-5)))]).toEqual([-5]);
    expect([...tensorToFloat32(entry('U8', Uint8Array.of(250)))]).toEqual([250]);
    expect([...tensorToFloat32(entry('U16', Uint16Array.of(60000)))]).toEqual([60000]);
    expect([...tensorToFloat32(entry('U32', Uint32Array.of(4e9)))]).toEqual([4e9]);
  });

  it('gives the right typed array per dtype', () => {
    expect(typedView(entry('I64', BigInt64Array.of(1n)))).toBeInstanceOf(BigInt64Array);
    expect(typedView(entry('BF16', Uint16Array.of(1)))).toBeInstanceOf(Uint16Array);
    expect(typedView(entry('BOOL', Uint8Array.of(1)))).toBeInstanceOf(Uint8Array);
    expect(typedView(entry('I8', Int8Array.of(1)))).toBeInstanceOf(Int8Array);
  });

  it('refuses BOOL, unknown dtypes and ragged byte lengths with InvalidRequestError', () => {
    expect(() => tensorToFloat32(entry('BOOL', Uint8Array.of(1)))).toThrow(InvalidRequestError);
    expect(() => tensorToFloat32(entry('Q4' as SafetensorsDtype, Uint8Array.of(1)))).toThrow(InvalidRequestError);
    expect(() => typedView(entry('F32', Uint8Array.of(1, 2, 3)))).toThrow(InvalidRequestError);
  });
});

describe('parse validation: one case per reason', () => {
  const f32Entry = (offsets: string, shape = '[2]'): string => `{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}`;
  const one = (entry: string, data = 8): Uint8Array => rawFile(`{"a":${entry}}`, data);

  it.each<[CorruptReason, () => unknown]>([
    ['too-short', () => parseSafetensors(new Uint8Array(7))],
    ['too-short', () => parseSafetensors(new ArrayBuffer(0))],
    ['header-length-overflow', () => parseSafetensors(rawFile('{}', 0, [2, 1]))],
    ['header-too-large', () => parseSafetensors(rawFile('{}', 0, [100 * 1024 * 1024 + 1, 0]))],
    ['header-too-large', () => parseSafetensors(rawFile(padded('{}'), 0), { maxHeaderBytes: 4 })],
    ['header-out-of-bounds', () => parseSafetensors(rawFile('{}', 0, [3, 0]))],
    ['invalid-utf8', () => parseSafetensors(rawFile(Uint8Array.of(0x7b, 0xff, 0x7d)))],
    ['invalid-utf8', () => parseSafetensors(rawFile(Uint8Array.of(0x7b, 0xed, 0xa0, 0x80, 0x7d)))],
    ['invalid-header-start', () => parseSafetensors(rawFile(' {}'))],
    ['invalid-header-start', () => parseSafetensors(rawFile('\ufeff{}'))],
    ['invalid-header-start', () => parseSafetensors(rawFile(''))],
    ['invalid-header-start', () => parseSafetensors(rawFile('[]'))],
    ['invalid-json', () => parseSafetensors(rawFile('{"a":'))],
    ['invalid-json', () => parseSafetensors(rawFile('{}\0'))],
    ['invalid-metadata', () => parseSafetensors(rawFile('{"__metadata__":[]}'))],
    ['invalid-metadata', () => parseSafetensors(rawFile('{"__metadata__":{"k":1}}'))],
    ['invalid-tensor-entry', () => parseSafetensors(rawFile('{"a":[1,2]}'))],
    ['unknown-field', () => parseSafetensors(one(`{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}`))],
    ['missing-field', () => parseSafetensors(one(`{"dtype":"F32","data_offsets":[0,8]}`))],
    ['invalid-dtype', () => parseSafetensors(one(`{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,8]}`))],
    ['invalid-dtype', () => parseSafetensors(one(`{"dtype":"constructor","shape":[2],"data_offsets":[0,8]}`))],
    ['invalid-shape', () => parseSafetensors(one(f32Entry('[0,8]', '[-2]')))],
    ['invalid-shape', () => parseSafetensors(one(f32Entry('[0,8]', '[2.5]')))],
    ['invalid-shape', () => parseSafetensors(one(f32Entry('[0,8]', '["2"]')))],
    ['invalid-shape', () => parseSafetensors(one(f32Entry('[0,8]', '[1e300]')))],
    ['invalid-shape', () => parseSafetensors(one(f32Entry('[0,8]', '2')))],
    ['invalid-offsets', () => parseSafetensors(one(f32Entry('[8,0]')))],
    ['invalid-offsets', () => parseSafetensors(one(f32Entry('[0]')))],
    ['invalid-offsets', () => parseSafetensors(one(f32Entry('[0,8,8]')))],
    ['invalid-offsets', () => parseSafetensors(one(f32Entry('[-8,0]')))],
    ['invalid-offsets', () => parseSafetensors(one(f32Entry('[0,9007199254740993]')))],
    ['offsets-out-of-bounds', () => parseSafetensors(one(f32Entry('[0,8]'), 4))],
    ['size-mismatch', () => parseSafetensors(one(f32Entry('[0,8]', '[3]')))],
    ['size-mismatch', () => parseSafetensors(one(f32Entry('[0,8]', '[4503599627370496,4503599627370496,2]')))],
    ['size-mismatch', () => parseSafetensors(one(f32Entry('[0,8]', '[0,2]')))],
    ['overlapping-tensors', () => parseSafetensors(rawFile(`{"a":${f32Entry('[0,8]')},"b":${f32Entry('[4,12]')}}`, 12))],
    ['overlapping-tensors', () => parseSafetensors(rawFile(`{"a":${f32Entry('[0,8]')},"b":${f32Entry('[0,8]')}}`, 8))],
    ['data-gap', () => parseSafetensors(one(f32Entry('[4,12]'), 12))],
    ['trailing-data', () => parseSafetensors(one(f32Entry('[0,8]'), 12))],
    ['trailing-data', () => parseSafetensors(rawFile('{}', 1))],
  ])('%s', (reason, fn) => {
    expectCorrupt(fn, reason);
  });

  it('names the tensor at fault in details', () => {
    const e = expectCorrupt(() => parseSafetensors(one(f32Entry('[0,8]', '[3]'))), 'size-mismatch');
    expect(e.details?.['tensor']).toBe('a');
  });

  it('survives the worker boundary as a typed error', () => {
    const e = expectCorrupt(() => parseSafetensors(new Uint8Array(3)), 'too-short');
    expect(e.toPlain()).toMatchObject({ name: 'CacheCorruptError', code: 'CACHE_CORRUPT', details: { reason: 'too-short' } });
  });

  it('refuses a bad option or a non-byte input with InvalidRequestError', () => {
    expect(() => parseSafetensors(rawFile('{}'), { maxHeaderBytes: -1 })).toThrow(InvalidRequestError);
    expect(() => parseSafetensors('{}' as unknown as Uint8Array)).toThrow(InvalidRequestError);
  });
});

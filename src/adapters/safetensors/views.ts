/**
 * Typed access to parsed tensors. Views assume a little-endian host, which every WebGPU
 * platform is; safetensors data are little-endian.
 */
import { InvalidRequestError } from '../../domain/errors.ts';
import { bf16ArrayToF32, f16ArrayToF32 } from '../../domain/half.ts';
import { DTYPE_BYTES, isSafetensorsDtype, type SafetensorsDtype } from './dtype.ts';
import type { TensorEntry } from './parse.ts';

/** The typed array that holds each dtype; F16 and BF16 come as their raw 16-bit patterns. */
export interface TypedArrayByDtype {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  U16: Uint16Array;
  U32: Uint32Array;
  BOOL: Uint8Array;
}

export type TypedArrayFor<D extends SafetensorsDtype> = TypedArrayByDtype[D];

type ViewCtor<T> = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T;

const CTORS: { readonly [D in SafetensorsDtype]: ViewCtor<TypedArrayByDtype[D]> } = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  U16: Uint16Array,
  U32: Uint32Array,
  BOOL: Uint8Array,
};

interface DtypedEntry<D extends SafetensorsDtype> {
  readonly dtype: D;
  readonly data: Uint8Array;
}

/**
 * The tensor's elements as the matching typed array. Zero copy (sharing the entry's buffer)
 * when the data start is aligned to the element size, which typed arrays require; else a copy.
 */
export function typedView<D extends SafetensorsDtype>(entry: DtypedEntry<D>): TypedArrayFor<D> {
  const dtype = checkedDtype(entry.dtype);
  const size = DTYPE_BYTES[dtype];
  const { data } = entry;
  if (data.byteLength % size !== 0) {
    throw new InvalidRequestError(`safetensors: ${data.byteLength} bytes is not a whole number of ${dtype} elements`, {
      dtype,
      byteLength: data.byteLength,
    });
  }
  const source = data.byteOffset % size === 0 ? data : data.slice();
  const Ctor = CTORS[dtype] as ViewCtor<TypedArrayFor<D>>;
  return new Ctor(source.buffer, source.byteOffset, source.byteLength / size);
}

function checkedDtype<D extends SafetensorsDtype>(dtype: D): D {
  // Entries may be built by hand, outside the parser's checks.
  if (!isSafetensorsDtype(dtype)) {
    throw new InvalidRequestError('safetensors: unknown dtype', { dtype: String(dtype) });
  }
  return dtype;
}

/**
 * The tensor's values as f32: zero copy for aligned F32, widened for F16/BF16, converted for
 * the other numeric dtypes (F64, I64, U32 and large I32 lose precision past 2^24). BOOL is not
 * numeric data and is refused.
 */
export function tensorToFloat32(entry: Pick<TensorEntry, 'dtype' | 'data'>): Float32Array {
  const dtype = checkedDtype(entry.dtype);
  switch (dtype) {
    case 'F32':
      return typedView({ dtype, data: entry.data });
    case 'F16':
      return f16ArrayToF32(typedView({ dtype, data: entry.data }));
    case 'BF16':
      return bf16ArrayToF32(typedView({ dtype, data: entry.data }));
    case 'I64':
      return bigintsToFloat32(typedView({ dtype, data: entry.data }));
    case 'BOOL':
      throw new InvalidRequestError('safetensors: BOOL tensors cannot be read as float32', { dtype });
    default:
      return Float32Array.from(typedView({ dtype, data: entry.data }));
  }
}

function bigintsToFloat32(src: BigInt64Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
  return out;
}

/**
 * GGUF metadata values. The value type ids are gguf.h's `enum gguf_type`:
 *   0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array, 10 u64, 11 i64, 12 f64.
 * An array is: element type (u32), count (u64), elements. 64-bit integers are kept as bigint;
 * numeric arrays become typed arrays (a vocabulary's scores and token types are 150k entries).
 */
import { formatError, type GgufCursor } from './cursor.ts';

export type GgufScalar = number | bigint | boolean | string;
export type GgufArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigUint64Array | BigInt64Array
  | readonly boolean[] | readonly string[] | readonly GgufArray[];
export type GgufValue = GgufScalar | GgufArray;

export const GGUF_VALUE_TYPE = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;

/** Bytes each element of a fixed-size type takes; strings take >= 8, arrays >= 12. */
const MIN_BYTES: readonly number[] = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

/** Arrays of arrays are legal GGUF but unused in practice; bound the recursion anyway. */
const MAX_ARRAY_DEPTH = 3;

function checkType(type: number, what: string): void {
  if (!Number.isInteger(type) || type < 0 || type >= MIN_BYTES.length) {
    throw formatError('invalid-value-type', `${what} has unknown value type ${type}`, { type });
  }
}

export function readValue(c: GgufCursor, type: number, what: string, depth = 0): GgufValue {
  checkType(type, what);
  switch (type) {
    case 0: return c.u8(what);
    case 1: return c.i8(what);
    case 2: return c.u16(what);
    case 3: return c.i16(what);
    case 4: return c.u32(what);
    case 5: return c.i32(what);
    case 6: return c.f32(what);
    case 7: return readBool(c, what);
    case 8: return c.string(what);
    case 9: return readArray(c, what, depth);
    case 10: return c.u64Big(what);
    case 11: return c.i64Big(what);
    default: return c.f64(what);
  }
}

function readBool(c: GgufCursor, what: string): boolean {
  const b = c.u8(what);
  if (b > 1) throw formatError('invalid-bool', `${what} is a bool of value ${b}`, { value: b });
  return b === 1;
}

function readArray(c: GgufCursor, what: string, depth: number): GgufArray {
  if (depth >= MAX_ARRAY_DEPTH) throw formatError('array-too-deep', `${what} nests arrays deeper than ${MAX_ARRAY_DEPTH}`);
  const type = c.u32(`${what} element type`);
  checkType(type, `${what} element`);
  const count = c.u64(`${what} count`);
  // Checked before allocating: a forged count must not reserve more than the file could hold.
  if (count > c.remaining / MIN_BYTES[type]) {
    throw formatError('count-too-large', `${what} claims ${count} elements, more than the file holds`, { count });
  }
  const item = (i: number): string => `${what}[${i}]`;
  switch (type) {
    case 0: return fill(new Uint8Array(count), () => c.u8(what));
    case 1: return fill(new Int8Array(count), () => c.i8(what));
    case 2: return fill(new Uint16Array(count), () => c.u16(what));
    case 3: return fill(new Int16Array(count), () => c.i16(what));
    case 4: return fill(new Uint32Array(count), () => c.u32(what));
    case 5: return fill(new Int32Array(count), () => c.i32(what));
    case 6: return fill(new Float32Array(count), () => c.f32(what));
    case 12: return fill(new Float64Array(count), () => c.f64(what));
    case 10: return fillBig(new BigUint64Array(count), () => c.u64Big(what));
    case 11: return fillBig(new BigInt64Array(count), () => c.i64Big(what));
    case 7: return Array.from({ length: count }, (_, i) => readBool(c, item(i)));
    case 8: return Array.from({ length: count }, (_, i) => c.string(item(i)));
    default: return Array.from({ length: count }, (_, i) => readArray(c, item(i), depth + 1));
  }
}

type NumberArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

function fill<T extends NumberArray>(out: T, next: () => number): T {
  for (let i = 0; i < out.length; i++) out[i] = next();
  return out;
}

function fillBig<T extends BigUint64Array | BigInt64Array>(out: T, next: () => bigint): T {
  for (let i = 0; i < out.length; i++) out[i] = next();
  return out;
}

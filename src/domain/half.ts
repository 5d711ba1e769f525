/**
 * IEEE 754 binary16 (f16) and bfloat16 (bf16) conversions, bit-exact.
 *
 * Inputs of the scalar `f32To*` functions are first rounded to f32 (Math.fround): these model
 * what a GPU or a safetensors writer does with f32 data, so f64 inputs go through f32 exactly
 * as a Float32Array would store them. Narrowing always rounds to nearest, ties to even.
 */

// One scratch word shared by the scalar functions to reinterpret f32 bits without allocation.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** f32 bit pattern -> f16 bit pattern, round to nearest even. */
function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    // Keep the payload's top bits; if they are all zero the NaN would read as infinity, so
    // set the quiet bit then.
    const payload = mant >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) return sign | subnormalF16Mantissa(mant | 0x800000, 14 - e);
  const r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent, up to infinity (0x7c00).
  const up = rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1);
  return sign | (up ? r + 1 : r);
}

/** Shift a 24-bit significand right by `shift` with ties-to-even; 0 when it is far too small. */
function subnormalF16Mantissa(m: number, shift: number): number {
  if (shift > 24) return 0;
  const r = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // r + 1 may reach 0x400, which is exactly the encoding of the smallest normal: correct.
  return rem > half || (rem === half && (r & 1) === 1) ? r + 1 : r;
}

function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
    // Truncation keeps the payload's top bits; if they are all zero the NaN would read as
    // infinity, so set the quiet bit then.
    const top = b >>> 16;
    return (top & 0x7f) === 0 ? top | 0x40 : top;
  }
  // Adding 0x7fff plus the kept LSB rounds half to even; the sum stays below 2^32 for non-NaN.
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 value -> f16 bits (round to nearest, ties to even; overflow to infinity). */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** f16 bits (low 16 bits of the argument) -> the exact value as a number. */
export function f16BitsToF32(bits: number): number {
  const sign = (bits & 0x8000) !== 0 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** f32 value -> bf16 bits (round to nearest, ties to even). */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

/** bf16 bits (low 16 bits of the argument) -> the exact value as a number. */
export function bf16BitsToF32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

// All 65536 f16 values as f32, built on first bulk use: weight tensors can hold hundreds of
// millions of values and a table load beats per-element branching.
// The table and the copy work on bit patterns: copying a NaN through a JS number lets the JIT
// canonicalize it, so a Float32Array copy does not keep NaN payloads reliably.
let f16Table: Uint32Array | undefined;

function getF16Table(): Uint32Array {
  if (f16Table === undefined) {
    const table = new Float32Array(0x10000);
    const tableBits = new Uint32Array(table.buffer);
    for (let i = 0; i < 0x10000; i++) {
      table[i] = f16BitsToF32(i);
      // Keep NaN sign and payload bit-exact, which going through a JS number would not.
      if ((i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0) {
        tableBits[i] = ((i & 0x8000) << 16) | 0x7f800000 | ((i & 0x3ff) << 13);
      }
    }
    f16Table = tableBits;
  }
  return f16Table;
}

/** Widen an array of f16 bit patterns to f32 values. */
export function f16ArrayToF32(src: Uint16Array): Float32Array {
  const table = getF16Table();
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return new Float32Array(out.buffer);
}

/** Narrow f32 values to f16 bit patterns (round to nearest, ties to even). */
export function f32ArrayToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/** Widen an array of bf16 bit patterns to f32 values (exact: bf16 is the top half of f32). */
export function bf16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

/** Narrow f32 values to bf16 bit patterns (round to nearest, ties to even). */
export function f32ArrayToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}

import { describe, expect, it } from 'vitest';
import {
  bf16ArrayToF32,
  bf16BitsToF32,
  f16ArrayToF32,
  f16BitsToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16Bits,
  f32ToF16Bits,
} from '../src/domain/half.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function fromBits(bits: number): number {
  u32[0] = bits;
  return f32[0];
}
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}
/** The next f32 above (dir 1) or below (dir -1) a positive finite f32. */
function nextF32(x: number, dir: 1 | -1): number {
  return fromBits(bitsOf(x) + dir);
}
function isNaNF16(b: number): boolean {
  return (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
}

describe('f16', () => {
  // Reference values checked by hand and against numpy's float32 -> float16 cast.
  it.each([
    [1.0, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00], // tie between 65504 and 65536 (= infinity) goes to even: infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0x0000],
    [-0, 0x8000],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exact tie between 0 and 2^-24: even is 0
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 ulps: even is 2
    [5 * 2 ** -25, 0x0002], // tie between 2 and 3 ulps: even is 2
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [6.1e-5, 0x03ff],
    [1 + 2 ** -11, 0x3c00], // tie, rounds down to even
    [1 + 3 * 2 ** -11, 0x3c02], // tie, rounds up to even
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [1e-8, 0x0000],
  ])('f32ToF16Bits(%d) = %i', (x, bits) => {
    expect(f32ToF16Bits(x)).toBe(bits);
  });

  it('rounds just above the zero/2^-24 tie up', () => {
    expect(f32ToF16Bits(nextF32(2 ** -25, 1))).toBe(0x0001);
    expect(f32ToF16Bits(nextF32(2 ** -25, -1))).toBe(0x0000);
  });

  it('keeps NaN a NaN, quiet, with its sign', () => {
    expect(isNaNF16(f32ToF16Bits(NaN))).toBe(true);
    // A signalling NaN whose payload lives only in the low 13 bits must not become infinity.
    const b = f32ToF16Bits(fromBits(0x7f800001));
    expect(isNaNF16(b)).toBe(true);
    expect(b & 0x0200).toBe(0x0200);
    expect(f32ToF16Bits(fromBits(0xffc00000)) & 0x8000).toBe(0x8000);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0xfc01)).toBeNaN();
  });

  it.each([
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x03ff, 2 ** -14 - 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3555, 0.333251953125],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ])('f16BitsToF32(%i) = %d', (bits, x) => {
    expect(f16BitsToF32(bits)).toBe(x);
  });

  it('decodes negative zero', () => {
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('round-trips every non-NaN f16 bit pattern', () => {
    for (let b = 0; b < 0x10000; b++) {
      if (isNaNF16(b)) continue;
      expect(f32ToF16Bits(f16BitsToF32(b))).toBe(b);
    }
  });

  it('rounds every midpoint between neighbours to even, and nearby values to nearest', () => {
    // Midpoints of f16 neighbours need 12 significant bits, so they are exact in f32.
    for (let b = 0; b < 0x7bff; b++) {
      const lo = f16BitsToF32(b);
      const mid = (lo + f16BitsToF32(b + 1)) / 2;
      const even = (b & 1) === 0 ? b : b + 1;
      if (f32ToF16Bits(mid) !== even) expect.fail(`midpoint above ${b}`);
      if (f32ToF16Bits(nextF32(mid, 1)) !== b + 1) expect.fail(`above midpoint of ${b}`);
      if (f32ToF16Bits(nextF32(mid, -1)) !== b) expect.fail(`below midpoint of ${b}`);
      if (f32ToF16Bits(-mid) !== (even | 0x8000)) expect.fail(`negative midpoint above ${b}`);
    }
  });

  it('bulk conversions agree with the scalar ones, NaN payloads included', () => {
    const all = new Uint16Array(0x10000).map((_, i) => i);
    const wide = f16ArrayToF32(all);
    const wideBits = new Uint32Array(wide.buffer);
    for (let b = 0; b < 0x10000; b++) {
      if (isNaNF16(b)) {
        expect(wideBits[b]).toBe((((b & 0x8000) << 16) | 0x7f800000 | ((b & 0x3ff) << 13)) >>> 0);
      } else if (!Object.is(wide[b], f16BitsToF32(b))) {
        expect.fail(`bulk widen of ${b}`);
      }
    }
    expect(f32ArrayToF16(wide)).toEqual(all);
    const values = new Float32Array([1, -2, 65520, 2 ** -25, 0.1, NaN]);
    expect([...f32ArrayToF16(values)]).toEqual([...values].map(f32ToF16Bits));
  });

  it('bulk narrowing reads a Float32Array that is a subarray', () => {
    const base = new Float32Array([9, 1, -2, 9]);
    expect([...f32ArrayToF16(base.subarray(1, 3))]).toEqual([0x3c00, 0xc000]);
  });
});

describe('bf16', () => {
  it.each([
    [1.0, 0x3f80],
    [-2, 0xc000],
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [1 + 2 ** -8, 0x3f80], // tie, rounds down to even
    [1 + 3 * 2 ** -8, 0x3f82], // tie, rounds up to even
    [1 + 2 ** -8 + 2 ** -20, 0x3f81], // just above the tie
    [3.4028234663852886e38, 0x7f80], // f32 max rounds up to infinity
    [3.140625, 0x4049],
    [2 ** -133, 0x0001], // subnormal bf16
  ])('f32ToBf16Bits(%d) = %i', (x, bits) => {
    expect(f32ToBf16Bits(x)).toBe(bits);
  });

  it('keeps NaN a NaN even when its payload is in the dropped bits', () => {
    const b = f32ToBf16Bits(fromBits(0x7f800001));
    expect(b & 0x7f80).toBe(0x7f80);
    expect(b & 0x7f).not.toBe(0);
    expect(bf16BitsToF32(f32ToBf16Bits(NaN))).toBeNaN();
  });

  it.each([
    [0x3f80, 1],
    [0xc000, -2],
    [0x4049, 3.140625],
    [0x7f80, Infinity],
    [0x0001, 2 ** -133],
  ])('bf16BitsToF32(%i) = %d', (bits, x) => {
    expect(bf16BitsToF32(bits)).toBe(x);
  });

  it('round-trips every non-NaN bf16 bit pattern, in bulk and scalar', () => {
    const all = new Uint16Array(0x10000).map((_, i) => i);
    const wide = bf16ArrayToF32(all);
    const back = f32ArrayToBf16(wide);
    for (let b = 0; b < 0x10000; b++) {
      const nan = (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
      if (nan) continue;
      if (back[b] !== b || f32ToBf16Bits(bf16BitsToF32(b)) !== b) expect.fail(`bf16 ${b}`);
      if (!Object.is(wide[b], bf16BitsToF32(b))) expect.fail(`bf16 widen ${b}`);
    }
  });
});

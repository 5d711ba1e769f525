import { describe, expect, it } from 'vitest';
import { UnsupportedTensorTypeError } from '../src/domain/errors.ts';
import { dequantizeGgml } from '../src/domain/gguf-blocks.ts';
import { ggmlType, type GgmlTypeName } from '../src/domain/ggml-types.ts';
import { f32ToF16Bits } from '../src/domain/half.ts';
import { normals } from '../tools/prng.ts';
import { QUANTIZABLE, quantizeGgml } from '../tools/ggml-quantize.ts';

/** A block of `type` with its f16 fields set at byte offsets, and `fill` for the rest. */
function block(type: GgmlTypeName, halves: Record<number, number>, fill: (bytes: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(ggmlType(type).blockBytes);
  fill(b);
  for (const [at, v] of Object.entries(halves)) {
    const bits = f32ToF16Bits(v);
    b[Number(at)] = bits & 255;
    b[Number(at) + 1] = bits >> 8;
  }
  return b;
}
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));
const deq = (type: GgmlTypeName, b: Uint8Array): number[] => [...dequantizeGgml(type, b, ggmlType(type).blockElements, 't')];

describe('ggml block dequantization, hand-derived blocks', () => {
  it('Q8_0: d * int8', () => {
    const b = block('Q8_0', { 0: 0.5 }, (x) => { for (let j = 0; j < 32; j++) x[2 + j] = (j - 16) & 255; });
    expect(deq('Q8_0', b)).toEqual(range(32, (j) => 0.5 * (j - 16)));
  });
  it('Q4_0: low nibbles are elements 0..15, high nibbles 16..31, offset 8', () => {
    const b = block('Q4_0', { 0: 2 }, (x) => { for (let j = 0; j < 16; j++) x[2 + j] = j | ((15 - j) << 4); });
    expect(deq('Q4_0', b)).toEqual(range(32, (i) => (i < 16 ? 2 * (i - 8) : 2 * (7 - (i - 16)))));
  });
  it('Q4_1: d * nibble + m', () => {
    const b = block('Q4_1', { 0: 1, 2: -3 }, (x) => { for (let j = 0; j < 16; j++) x[4 + j] = j | ((15 - j) << 4); });
    expect(deq('Q4_1', b)).toEqual(range(32, (i) => (i < 16 ? i - 3 : 15 - (i - 16) - 3)));
  });
  it('Q5_0 and Q5_1: bit j of qh is the fifth bit of element j', () => {
    const qh = 0xaaaa5555;
    const fill = (at: number) => (x: Uint8Array): void => {
      new DataView(x.buffer).setUint32(at, qh, true);
      for (let j = 0; j < 16; j++) x[at + 4 + j] = j | ((15 - j) << 4);
    };
    const level = (i: number): number => (i < 16 ? i : 15 - (i - 16)) | (((qh >>> i) & 1) << 4);
    expect(deq('Q5_0', block('Q5_0', { 0: 1 }, fill(2)))).toEqual(range(32, (i) => level(i) - 16));
    expect(deq('Q5_1', block('Q5_1', { 0: 0.5, 2: 1 }, fill(4)))).toEqual(range(32, (i) => 0.5 * level(i) + 1));
  });

  // Sub-block 0: scale 1, min 2; sub-block 4: scale 2, min 0; sub-block 5: scale 33, min 17 (6-bit
  // values whose high bits live in the top 2 bits of bytes 1 and 5). d = 1, dmin = 0.5.
  const kScales = (x: Uint8Array): void => {
    x.set([1, 0x80, 0, 0, 2, 0x40, 0, 0, 2, 0x11, 0, 0], 4);
  };
  it('Q4_K: 6-bit scale/min pairs, 64-element groups of low then high nibbles', () => {
    const b = block('Q4_K', { 0: 1, 2: 0.5 }, (x) => { kScales(x); x.fill(0x53, 16); });
    const expected = range(256, (i) => (i < 32 ? 3 - 1 : i >= 128 && i < 160 ? 2 * 3 : i >= 160 && i < 192 ? 33 * 5 - 8.5 : 0));
    expect(deq('Q4_K', b)).toEqual(expected);
  });
  it('Q5_K: qh bit 2g (low half) / 2g+1 (high half) of group g adds 16', () => {
    const b = block('Q5_K', { 0: 1, 2: 0.5 }, (x) => { kScales(x); x.fill(0x10, 16, 48); x.fill(0x53, 48); });
    const expected = range(256, (i) => (i < 32 ? 3 - 1 : i >= 128 && i < 160 ? 2 * (3 + 16) : i >= 160 && i < 192 ? 33 * 5 - 8.5 : 0));
    expect(deq('Q5_K', b)).toEqual(expected);
  });
  it('Q6_K: int8 scales per 16 elements, 4+2 bit levels offset 32', () => {
    const b = block('Q6_K', { 208: 0.25 }, (x) => {
      x.fill(0x21, 0, 128);
      x.fill(0b11100100, 128, 192);
      for (let s = 0; s < 16; s++) x[192 + s] = (s - 8) & 255;
    });
    const expected = range(256, (e) => {
      const half = e >> 7, quarter = (e & 127) >> 5, l = e & 31;
      const scale = 8 * half + (l >> 4) + 2 * quarter - 8;
      return 0.25 * scale * [-31, -15, 2, 18][quarter];
    });
    expect(deq('Q6_K', b)).toEqual(expected);
  });
  it('F16, BF16 and F32 elements', () => {
    expect(deq('F16', new Uint8Array([0x00, 0x3c]))).toEqual([1]);
    expect(deq('BF16', new Uint8Array([0x80, 0xbf]))).toEqual([-1]);
    expect(deq('F32', new Uint8Array(new Float32Array([0.1]).buffer))).toEqual([Math.fround(0.1)]);
  });
  it('an unsupported type is a typed error naming the tensor and the type', () => {
    expect(() => dequantizeGgml('Q2_K', new Uint8Array(84), 256, 'blk.3.ffn_down.weight')).toThrow(UnsupportedTensorTypeError);
    try {
      dequantizeGgml('IQ2_XS', new Uint8Array(0), 0, 'output.weight');
    } catch (e) {
      expect((e as UnsupportedTensorTypeError).details).toEqual({ tensor: 'output.weight', type: 'IQ2_XS' });
      expect((e as Error).message).toContain('output.weight');
    }
  });
});

describe('quantize -> dequantize round trips', () => {
  // RMS error relative to the data's std: bounds a few times the uniform-rounding error of each grid.
  const BOUND: Readonly<Record<string, number>> = {
    F32: 0, F16: 1e-3, BF16: 5e-3, Q8_0: 0.012, Q5_0: 0.05, Q5_1: 0.05, Q4_0: 0.1, Q4_1: 0.1, Q4_K: 0.12, Q5_K: 0.06, Q6_K: 0.03,
  };
  it.each(QUANTIZABLE.map((t) => [t]))('%s', (type) => {
    const x = normals(0x51 + type.length, 4 * 256, 0.1, 1);
    const y = dequantizeGgml(type, quantizeGgml(type, x), x.length, type);
    let se = 0;
    for (let i = 0; i < x.length; i++) se += (x[i] - y[i]) ** 2;
    const rms = Math.sqrt(se / x.length);
    expect(rms).toBeLessThanOrEqual(BOUND[type]);
    // Levels exist: a quantizer that collapsed everything would pass a loose bound on tiny data.
    expect(new Set(y).size).toBeGreaterThan(type === 'Q4_0' || type === 'Q4_1' ? 14 : 20);
  });
});

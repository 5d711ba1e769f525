import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/domain/errors.ts';
import { f16BitsToF32, f32ToF16Bits } from '../src/domain/half.ts';
import { BLOCK_LAYOUTS, blockQuantBytes, dequantizeBlocks, quantizedFingerprint, quantizeBlocks } from '../src/domain/weight-blocks.ts';

function random(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * scale;
  });
}

describe('block-quantized weights (q8 = GGUF Q8_0, q4 = GGUF Q4_0 layout)', () => {
  it('sizes: 34 and 18 bytes per 32 elements; rows must be whole blocks', () => {
    expect(BLOCK_LAYOUTS.q8).toEqual({ blockElements: 32, blockBytes: 34 });
    expect(BLOCK_LAYOUTS.q4).toEqual({ blockElements: 32, blockBytes: 18 });
    expect(blockQuantBytes('q8', 3, 64)).toBe(3 * 2 * 34);
    expect(blockQuantBytes('q4', 3, 64)).toBe(3 * 2 * 18);
    expect(() => blockQuantBytes('q4', 3, 48)).toThrow(InvalidRequestError);
  });

  it('lays a block out as GGUF does: f16 scale, then int8 values / nibble pairs (j low, j + 16 high)', () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => j - 16); // absmax 16 at j = 0
    const q8 = quantizeBlocks('q8', x, 32);
    const d8 = f16BitsToF32(q8[0] | (q8[1] << 8));
    expect(q8[0] | (q8[1] << 8)).toBe(f32ToF16Bits(16 / 127));
    expect((q8[2] << 24) >> 24).toBe(-127); // x[0] = -16 = -absmax
    expect((q8[2 + 16] << 24) >> 24).toBe(0); // x[16] = 0
    expect((q8[2 + 31] << 24) >> 24).toBe(Math.round(15 / d8));
    const q4 = quantizeBlocks('q4', x, 32);
    expect(q4[0] | (q4[1] << 8)).toBe(f32ToF16Bits(16 / 7));
    expect(q4[2] & 15).toBe(-7 + 8); // element 0
    expect(q4[2] >> 4).toBe(0 + 8); // element 16
  });

  it('dequantizes to d * q, within half a step of the input, for both kinds', () => {
    const x = random(32 * 40, 7, 3);
    for (const [kind, qmax] of [['q8', 127], ['q4', 7]] as const) {
      const back = dequantizeBlocks(kind, quantizeBlocks(kind, x, 64), x.length);
      for (let b = 0; b < x.length / 32; b++) {
        let absmax = 0;
        for (let j = 0; j < 32; j++) absmax = Math.max(absmax, Math.abs(x[b * 32 + j]));
        const step = f16BitsToF32(f32ToF16Bits(absmax / qmax));
        for (let j = 0; j < 32; j++) expect(Math.abs(back[b * 32 + j] - x[b * 32 + j])).toBeLessThanOrEqual(step / 2 + 1e-7);
      }
    }
  });

  it('an all-zero block stays zero; non-finite weights are refused', () => {
    expect([...dequantizeBlocks('q4', quantizeBlocks('q4', new Float32Array(32), 32), 32)]).toEqual(new Array(32).fill(0));
    const bad = new Float32Array(32);
    bad[3] = Number.NaN;
    expect(() => quantizeBlocks('q8', bad, 32)).toThrow(InvalidRequestError);
    expect(() => dequantizeBlocks('q8', new Uint8Array(10), 32)).toThrow(InvalidRequestError);
  });

  it('the fingerprint of a quantized load names the quantization', () => {
    expect(quantizedFingerprint('abc', undefined)).toBe('abc');
    expect(quantizedFingerprint('abc', 'q4')).not.toBe(quantizedFingerprint('abc', 'q8'));
    expect(quantizedFingerprint('abc', 'q4')).not.toBe('abc');
  });
});

import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/domain/errors.ts';
import {
  DEFAULT_KV_GROUP_SIZE,
  dequantizeQ4,
  dequantizeQ8,
  quantizationError,
  quantizeQ4,
  quantizeQ8,
  resolveGroupSize,
} from '../src/domain/kv-quant.ts';

/** Deterministic pseudo-random values (mulberry32) with a spread of magnitudes per group. */
function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * 10 ** Math.floor(next() * 6 - 3);
  return out;
}

/** Per-element bound: half a step of its group, plus f32 rounding of the restored product. */
function expectWithinHalfStep(original: Float32Array, restored: Float32Array, scales: Float32Array, group: number): void {
  for (let i = 0; i < original.length; i++) {
    const scale = scales[Math.floor(i / group)];
    const bound = scale / 2 + Math.abs(original[i]) * 2 ** -23;
    const err = Math.abs(original[i] - restored[i]);
    if (err > bound) expect.fail(`index ${i}: error ${err} > bound ${bound}`);
  }
}

function expectInvalid(fn: () => unknown): void {
  expect(fn).toThrow(InvalidRequestError);
}

describe('resolveGroupSize', () => {
  it('clamps to the largest divisor of the row not above the request', () => {
    expect(resolveGroupSize(64)).toBe(DEFAULT_KV_GROUP_SIZE);
    expect(resolveGroupSize(64, 32)).toBe(32);
    expect(resolveGroupSize(80, 32)).toBe(20);
    expect(resolveGroupSize(48, 32)).toBe(24);
    expect(resolveGroupSize(8, 32)).toBe(8);
    expect(resolveGroupSize(7, 4)).toBe(1);
    expect(resolveGroupSize(128, 64)).toBe(64);
  });

  it('refuses non-positive or fractional sizes', () => {
    expectInvalid(() => resolveGroupSize(0));
    expectInvalid(() => resolveGroupSize(64, 0));
    expectInvalid(() => resolveGroupSize(64, 2.5));
    expectInvalid(() => resolveGroupSize(64, -32));
  });
});

describe('q8', () => {
  it('matches a hand-checked small case', () => {
    // Scales 1 and 2 are exact, so the ties below are exact ties.
    const values = new Float32Array([127, -63.5, 0, 1.4, 254, 127, -127, -254]);
    const { q, scales } = quantizeQ8(values, 4);
    expect(Array.from(scales)).toEqual([1, 2]);
    // -63.5 and 127 / 2 = 63.5 round away from zero; 1.4 rounds to 1.
    expect(Array.from(q)).toEqual([127, -64, 0, 1, 127, 64, -64, -127]);
    expect(Array.from(dequantizeQ8(q, scales, 4))).toEqual([127, -64, 0, 1, 254, 128, -128, -254]);
  });

  it('round trips with error <= scale / 2 in every group', () => {
    for (const group of [1, 4, 32, 64]) {
      const values = randomValues(64 * 40, group);
      const { q, scales } = quantizeQ8(values, group);
      expect(scales.length).toBe(values.length / group);
      const restored = dequantizeQ8(q, scales, group);
      expectWithinHalfStep(values, restored, scales, group);
      expect(q.every((c) => c >= -127 && c <= 127)).toBe(true);
    }
  });

  it('is symmetric: -v quantizes to -q', () => {
    const values = randomValues(256, 7);
    const neg = values.map((v) => -v);
    const a = quantizeQ8(values, 32);
    const b = quantizeQ8(neg, 32);
    expect(Array.from(b.q)).toEqual(Array.from(a.q, (c) => (c === 0 ? 0 : -c)));
    expect(Array.from(b.scales)).toEqual(Array.from(a.scales));
  });

  it('maps an all-zero group to scale 0 and zero codes', () => {
    const values = new Float32Array([0, 0, 0, 0, 3, 0, 0, -3]);
    const { q, scales } = quantizeQ8(values, 4);
    expect(scales[0]).toBe(0);
    expect(Array.from(q.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(dequantizeQ8(q, scales, 4))).toEqual([0, 0, 0, 0, 3, 0, 0, -3]);
  });

  it('handles empty input', () => {
    const { q, scales } = quantizeQ8(new Float32Array(0), 32);
    expect(q.length).toBe(0);
    expect(dequantizeQ8(q, scales, 32).length).toBe(0);
  });

  it('refuses lengths that do not split into groups, bad scale counts and non-finite values', () => {
    expectInvalid(() => quantizeQ8(new Float32Array(33), 32));
    expectInvalid(() => quantizeQ8(new Float32Array(8), 0));
    expectInvalid(() => dequantizeQ8(new Int8Array(64), new Float32Array(3), 32));
    expectInvalid(() => quantizeQ8(new Float32Array([1, NaN, 0, 0]), 4));
    expectInvalid(() => quantizeQ8(new Float32Array([1, Infinity, 0, 0]), 4));
  });
});

describe('q4', () => {
  it('matches a hand-checked small case, low nibble first', () => {
    const values = new Float32Array([7, -7, 3.5, -1, 0, 0, 0, 0]);
    const { q, scales } = quantizeQ4(values, 4);
    expect(Array.from(scales)).toEqual([1, 0]);
    // 7 -> 0x7, -7 -> 0x9 (two's complement); 3.5 -> 4 (away from zero) = 0x4, -1 -> 0xf.
    expect(Array.from(q)).toEqual([0x97, 0xf4, 0, 0]);
    expect(Array.from(dequantizeQ4(q, scales, 4))).toEqual([7, -7, 4, -1, 0, 0, 0, 0]);
  });

  it('decodes -8 from foreign bytes without failing', () => {
    expect(Array.from(dequantizeQ4(new Uint8Array([0x88]), new Float32Array([0.5]), 2))).toEqual([-4, -4]);
  });

  it('round trips with error <= scale / 2 in every group', () => {
    for (const group of [2, 3, 16, 32]) {
      const values = randomValues(96 * 30, 100 + group);
      const { q, scales } = quantizeQ4(values, group);
      expect(q.length).toBe(values.length / 2);
      const restored = dequantizeQ4(q, scales, group);
      expectWithinHalfStep(values, restored, scales, group);
      for (const byte of q) {
        for (const n of [byte & 0xf, byte >> 4]) expect(n === 8).toBe(false);
      }
    }
  });

  it('maps zeros to zero', () => {
    const { q, scales } = quantizeQ4(new Float32Array(64), 32);
    expect(Array.from(scales)).toEqual([0, 0]);
    expect(q.every((b) => b === 0)).toBe(true);
    expect(dequantizeQ4(q, scales, 32).every((v) => v === 0)).toBe(true);
  });

  it('refuses odd lengths, ragged groups, bad scale counts and non-finite values', () => {
    expectInvalid(() => quantizeQ4(new Float32Array(7), 7));
    expectInvalid(() => quantizeQ4(new Float32Array(5), 1));
    expectInvalid(() => quantizeQ4(new Float32Array(34), 32));
    expectInvalid(() => dequantizeQ4(new Uint8Array(16), new Float32Array(2), 32));
    expectInvalid(() => quantizeQ4(new Float32Array([NaN, 1]), 2));
  });
});

describe('quantizationError', () => {
  it('reports max and rms error', () => {
    const e = quantizationError(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 2.5, 3, 3.5]));
    expect(e.maxAbs).toBe(0.5);
    expect(e.rms).toBeCloseTo(Math.sqrt(0.125), 12);
    expect(quantizationError(new Float32Array(0), new Float32Array(0))).toEqual({ maxAbs: 0, rms: 0 });
  });

  it('does not hide NaN and refuses different lengths', () => {
    expect(quantizationError(new Float32Array([1]), new Float32Array([NaN])).maxAbs).toBeNaN();
    expectInvalid(() => quantizationError(new Float32Array(2), new Float32Array(3)));
  });

  it('q8 beats q4 on the same data', () => {
    const values = randomValues(64 * 64, 3);
    const q8 = quantizeQ8(values, 32);
    const q4 = quantizeQ4(values, 32);
    const e8 = quantizationError(values, dequantizeQ8(q8.q, q8.scales, 32));
    const e4 = quantizationError(values, dequantizeQ4(q4.q, q4.scales, 32));
    expect(e8.rms).toBeLessThan(e4.rms);
  });
});

import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/domain/errors.ts';
import { ropeCosSin, ropeInvFreq } from '../src/domain/rope.ts';

const DEFAULT = { type: 'default' } as const;

describe('ropeInvFreq', () => {
  it('headDim 4, theta 10000 gives [1, 10000^(-1/2)] = [1, 0.01]', () => {
    const f = ropeInvFreq(4, 10000, DEFAULT);
    expect(f.length).toBe(2);
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(0.01, 9);
  });

  it('headDim 8, theta 10000 gives [1, 0.1, 0.01, 0.001]', () => {
    const f = Array.from(ropeInvFreq(8, 10000, DEFAULT));
    [1, 0.1, 0.01, 0.001].forEach((want, i) => expect(f[i]).toBeCloseTo(want, 8));
  });

  it('linear scaling divides every frequency by the factor', () => {
    const f = ropeInvFreq(4, 10000, { type: 'linear', factor: 2 });
    expect(f[0]).toBe(0.5);
    expect(f[1]).toBeCloseTo(0.005, 9);
  });

  it('llama3 scaling: each frequency falls in the band worked out by hand', () => {
    // headDim 8, theta 1e4: inv_freq [1, 0.1, 0.01, 0.001], wavelen = 2π/f = [6.28, 62.8, 628.3, 6283].
    // original 1000, low 1, high 4 → low_freq_wavelen 1000, high_freq_wavelen 250.
    //   6.28, 62.8 < 250: high-frequency band, kept.
    //   6283 > 1000: low-frequency band, divided by factor 8 → 0.000125.
    //   628.3 is in between: smooth = (1000/628.3 − 1)/(4 − 1) = (10/(2π) − 1)/3 = 0.1971831,
    //   f' = (1 − smooth)·0.01/8 + smooth·0.01 = 0.01·(0.1003521 + 0.1971831) = 0.0029753524.
    const f = ropeInvFreq(8, 10000, {
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 1000,
    });
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(0.1, 8);
    expect(f[2]).toBeCloseTo(0.0029753524, 9);
    expect(f[3]).toBeCloseTo(0.000125, 10);
  });

  it('refuses odd or non-positive head dims and bad theta', () => {
    expect(() => ropeInvFreq(5, 10000, DEFAULT)).toThrow(InvalidRequestError);
    expect(() => ropeInvFreq(0, 10000, DEFAULT)).toThrow(InvalidRequestError);
    expect(() => ropeInvFreq(4, 0, DEFAULT)).toThrow(InvalidRequestError);
  });
});

describe('ropeCosSin', () => {
  it('position 0 is the identity rotation', () => {
    const { cos, sin } = ropeCosSin(ropeInvFreq(4, 10000, DEFAULT), 0);
    expect(Array.from(cos)).toEqual([1, 1]);
    expect(Array.from(sin)).toEqual([0, 0]);
  });

  it('position 1 with inv_freq [1, 0.01] gives angles 1 and 0.01', () => {
    const { cos, sin } = ropeCosSin(ropeInvFreq(4, 10000, DEFAULT), 1);
    expect(cos[0]).toBeCloseTo(0.5403023, 6);
    expect(sin[0]).toBeCloseTo(0.8414710, 6);
    expect(cos[1]).toBeCloseTo(0.99995, 6);
    expect(sin[1]).toBeCloseTo(0.00999983, 7);
  });

  it('position 3 multiplies the angle: cos(3), sin(0.03)', () => {
    const { cos, sin } = ropeCosSin(ropeInvFreq(4, 10000, DEFAULT), 3);
    expect(cos[0]).toBeCloseTo(-0.9899925, 6);
    expect(sin[1]).toBeCloseTo(0.0299955, 6);
  });

  it('refuses negative or fractional positions', () => {
    const f = ropeInvFreq(4, 10000, DEFAULT);
    expect(() => ropeCosSin(f, -1)).toThrow(InvalidRequestError);
    expect(() => ropeCosSin(f, 1.5)).toThrow(InvalidRequestError);
  });
});

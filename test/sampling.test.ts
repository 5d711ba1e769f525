import { describe, expect, it } from 'vitest';
import { validateLimits, validateSampling, isGreedy } from '../src/domain/sampling.ts';
import { commonPrefixLength, validateAgentId, validateTokenIds } from '../src/domain/values.ts';
import { createModelCacheSpec } from '../src/domain/model-cache-spec.ts';

describe('sampling and request validation', () => {
  it('fills defaults: greedy', () => {
    const p = validateSampling();
    expect(p).toEqual({ temperature: 0, topK: 0, topP: 1, seed: expect.any(Number) });
    expect(isGreedy(p)).toBe(true);
    expect(isGreedy(validateSampling({ temperature: 0.7, topK: 40, topP: 0.9, seed: 7 }))).toBe(false);
  });

  it('an unset seed is random (a uint32 drawn per request); a given seed is kept', () => {
    const seeds = Array.from({ length: 8 }, () => validateSampling({ temperature: 1 }).seed);
    for (const s of seeds) expect(Number.isInteger(s) && s >= 0 && s <= 0xffffffff).toBe(true);
    // Eight draws from 2^32 values: all equal only if the seed were fixed.
    expect(new Set(seeds).size).toBeGreaterThan(1);
    expect(validateSampling({ temperature: 1, seed: 0 }).seed).toBe(0);
    expect(validateSampling({ temperature: 1, seed: 42 }).seed).toBe(42);
  });

  it.each([
    [{ temperature: -1 }], [{ temperature: Number.NaN }], [{ topK: 1.5 }], [{ topK: -2 }],
    [{ topP: 0 }], [{ topP: 1.01 }], [{ seed: -1 }], [{ seed: 2 ** 32 }],
  ])('rejects %o with InvalidRequestError', (bad) => {
    expect(() => validateSampling(bad)).toThrow(expect.objectContaining({ name: 'InvalidRequestError', code: 'INVALID_REQUEST' }));
  });

  it('validates limits and stop strings', () => {
    expect(validateLimits({ maxTokens: 5, stop: ['\n\n'] }, 100)).toEqual({ maxTokens: 5, stop: ['\n\n'] });
    expect(() => validateLimits({ maxTokens: 0 }, 100)).toThrow(/maxTokens/);
    expect(() => validateLimits({ maxTokens: 101 }, 100)).toThrow(/maxTokens/);
    expect(() => validateLimits({ stop: [''] }, 100)).toThrow(/stop/);
  });

  it('validates agent ids and token ids', () => {
    expect(validateAgentId('agent-1')).toBe('agent-1');
    expect(() => validateAgentId('../etc')).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    expect(() => validateAgentId('')).toThrow();
    expect(validateTokenIds([0, 5, 9], 10)).toEqual([0, 5, 9]);
    expect(() => validateTokenIds([0, 10], 10)).toThrow(/index 1/);
    expect(() => validateTokenIds([1.5], 10)).toThrow();
    expect(commonPrefixLength([1, 2, 3], [1, 2, 4, 5])).toBe(2);
  });

  it('ModelCacheSpec rejects non-power-of-two blocks and bad dims', () => {
    const base = { modelId: 'm', fingerprint: 'f', nLayers: 2, nKvHeads: 2, headDim: 16, blockTokens: 16, dtype: 'f32' as const };
    expect(createModelCacheSpec(base).blockTokens).toBe(16);
    expect(() => createModelCacheSpec({ ...base, blockTokens: 12 })).toThrow(/power of two/);
    expect(() => createModelCacheSpec({ ...base, nLayers: 0 })).toThrow(/nLayers/);
    expect(() => createModelCacheSpec({ ...base, fingerprint: '' })).toThrow(/fingerprint/);
  });
});

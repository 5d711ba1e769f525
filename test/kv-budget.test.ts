import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/domain/errors.ts';
import { kvBudgetRequest, memoryLeft, resolveKvBudget, type KvBudgetInputs } from '../src/domain/kv-budget.ts';
import { parseGenerateArgs } from '../cli/args.ts';

/** The KV pool budget rule (domain/kv-budget.ts) and the CLI's --kv-budget forms. */
const MiB = 1 << 20;
const GiB = 1 << 30;

function inputs(maxBufferSize: number, weightBytes: number): KvBudgetInputs {
  // Qwen2.5-0.5B at full depth, f16 KV: 2 x 24 layers x 2 heads x 64 x 2 bytes = 12 KiB a token.
  return { limits: { maxBufferSize, maxStorageBufferBindingSize: Math.min(maxBufferSize, 128 * MiB) }, weightBytes, tokenBytes: 12 * 1024, maxContext: 32768 };
}

describe('resolveKvBudget', () => {
  it('default: half of what the weights leave of ~2 x maxBufferSize, so a bigger device or smaller model gets more', () => {
    const desktop = inputs(2 * GiB, 988 * 1e6);
    expect(memoryLeft(desktop)).toBe(4 * GiB - 988e6);
    expect(resolveKvBudget({ auto: true }, desktop)).toBe(Math.floor(0.5 * (4 * GiB - 988e6)));
    const q4 = inputs(2 * GiB, 278e6);
    expect(resolveKvBudget({ auto: true }, q4)).toBeGreaterThan(resolveKvBudget({ auto: true }, desktop));
    const phone = inputs(GiB, 988e6);
    expect(resolveKvBudget({ auto: true }, phone)).toBeLessThan(resolveKvBudget({ auto: true }, desktop));
  });

  it('default: at most 8 full contexts, at least one (when the device has it)', () => {
    const tiny = { ...inputs(4 * GiB, 1e6), tokenBytes: 256, maxContext: 2048 };
    expect(resolveKvBudget({ auto: true }, tiny)).toBe(8 * 2048 * 256);
    const tight = inputs(GiB, 2 * GiB - 300 * MiB); // 300 MiB left; one context is 384 MiB
    expect(resolveKvBudget({ auto: true }, tight)).toBe(300 * MiB);
    const roomy = inputs(GiB, GiB); // 1 GiB left: half is 512 MiB, more than one context
    expect(resolveKvBudget({ auto: true }, roomy)).toBe(512 * MiB);
  });

  it('bytes as given; a fraction of what is left', () => {
    const d = inputs(2 * GiB, GiB);
    expect(resolveKvBudget({ bytes: 12345 }, d)).toBe(12345);
    expect(resolveKvBudget({ fraction: 0.25 }, d)).toBe(Math.floor(0.25 * 3 * GiB));
  });

  it('kvBudgetRequest refuses both forms at once, non-positive bytes and fractions outside (0, 1]', () => {
    expect(kvBudgetRequest(undefined, undefined)).toEqual({ auto: true });
    expect(kvBudgetRequest(64, undefined)).toEqual({ bytes: 64 });
    expect(kvBudgetRequest(undefined, 1)).toEqual({ fraction: 1 });
    for (const [b, f] of [[1, 0.5], [0, undefined], [-5, undefined], [1.5, undefined], [undefined, 0], [undefined, 1.01], [undefined, Number.NaN]] as const) {
      expect(() => kvBudgetRequest(b, f)).toThrow(InvalidRequestError);
    }
  });
});

describe('semantic generate --kv-budget', () => {
  const parse = (v: string) => parseGenerateArgs(['--model', 'm', '--prompt', 'x', '--kv-budget', v]);
  it('takes bytes (with K/M/G) or a fraction (0.25 or 25%)', () => {
    expect(parse('256M').kvBudgetBytes).toBe(256 * MiB);
    expect(parse('256M').kvBudgetFraction).toBeUndefined();
    expect(parse('67108864')).toMatchObject({ kvBudgetBytes: 67108864 });
    expect(parse('0.25').kvBudgetFraction).toBe(0.25);
    expect(parse('0.25').kvBudgetBytes).toBeUndefined();
    expect(parse('.5')).toMatchObject({ kvBudgetFraction: 0.5 });
    expect(parse('30%')).toMatchObject({ kvBudgetFraction: 0.3 });
    const none = parseGenerateArgs(['--model', 'm', '--prompt', 'x']);
    expect([none.kvBudgetBytes, none.kvBudgetFraction]).toEqual([undefined, undefined]);
    for (const bad of ['0%', '150%', 'lots', '-1M']) expect(() => parse(bad)).toThrow(InvalidRequestError);
  });
});

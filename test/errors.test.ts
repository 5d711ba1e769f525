import { describe, expect, it } from 'vitest';
import * as errors from '../src/domain/errors.ts';
import { errorFromPlain, errorToPlain, isPlainError, SemanticError } from '../src/domain/errors.ts';

type ErrorClass = new (m: string, d?: errors.ErrorDetails) => SemanticError;
const classes = (Object.values(errors) as unknown[]).filter(
  (v): v is ErrorClass => typeof v === 'function' && (v as { prototype: unknown }).prototype instanceof SemanticError,
);

describe('typed errors', () => {
  it('covers the errors the runtime promises', () => {
    const names = classes.map((C) => new C('x').name);
    for (const required of [
      'PoolExhaustedError', 'InvalidRequestError', 'AgentNotFoundError', 'ModelNotFoundError',
      'ModelMismatchError', 'CacheCorruptError', 'QuotaExceededError', 'DeviceLostError',
    ]) {
      expect(names).toContain(required);
    }
    expect(new Set(classes.map((C) => new C('x').code)).size).toBe(classes.length);
  });

  it.each(classes.map((C) => [new C('x').name, C] as const))('%s survives structured clone', (_name, C) => {
    const original = new C('boom', { agentId: 'a1', n: 3 });
    const wire = structuredClone(errorToPlain(original));
    expect(isPlainError(wire)).toBe(true);
    const back = errorFromPlain(wire);
    expect(back).toBeInstanceOf(C);
    expect(back.name).toBe(original.name);
    expect(back.code).toBe(original.code);
    expect(back.message).toBe('boom');
    expect(back.details).toEqual({ agentId: 'a1', n: 3 });
    expect(back.stack).toBe(original.stack);
  });

  it('foreign errors become InternalError and keep their original name', () => {
    const plain = errorToPlain(new TypeError('bad'));
    expect(plain).toMatchObject({ name: 'InternalError', code: 'INTERNAL', details: { originalName: 'TypeError' } });
    const unknown = errorFromPlain({ __semanticError: true, name: 'FutureError', code: 'FUTURE', message: 'm' });
    expect(unknown).toMatchObject({ name: 'InternalError', details: { originalName: 'FutureError', originalCode: 'FUTURE' } });
    expect(errorToPlain('str').message).toBe('str');
    expect(isPlainError({ name: 'x' })).toBe(false);
  });
});

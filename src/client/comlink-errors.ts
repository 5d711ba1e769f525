import { transferHandlers, type TransferHandler } from 'comlink';
import { errorFromPlain, errorToPlain, isPlainError, type PlainError } from '../domain/errors.ts';

/**
 * Comlink's built-in "throw" handler sends only message/name/stack, so a typed error arrives on
 * the page as a plain Error without its class or `code`. This replaces it on both sides of the
 * worker boundary with our plain-object form, rebuilt into the same class on arrival.
 * Call it once in the worker and once on the page, before any call crosses.
 */
type Thrown = { value: unknown };
type Wire = { plain: PlainError } | { raw: unknown };

export function installErrorTransfer(): void {
  const builtin = transferHandlers.get('throw');
  if (!builtin) return;
  const handler: TransferHandler<Thrown, Wire> = {
    canHandle: (value: unknown): value is Thrown => builtin.canHandle(value),
    serialize({ value }) {
      const wire: Wire = value instanceof Error || isPlainError(value) ? { plain: cloneable(isPlainError(value) ? value : errorToPlain(value)) } : { raw: value };
      return [wire, []];
    },
    deserialize(wire) {
      if ('plain' in wire) throw errorFromPlain(wire.plain);
      throw wire.raw;
    },
  };
  transferHandlers.set('throw', handler as TransferHandler<unknown, unknown>);
}

/**
 * Details name the offending input, which can be anything a caller sent (a callback crosses as a
 * proxy): what postMessage cannot clone is described instead, so the typed error still arrives.
 */
function cloneable(plain: PlainError): PlainError {
  if (!plain.details) return plain;
  const safe = (v: unknown): unknown => (typeof v === 'function' || typeof v === 'symbol' ? `[${typeof v}]` : v);
  const details = Object.fromEntries(Object.entries(plain.details).map(([k, v]) => [k, safe(v)]));
  try {
    structuredClone(details);
    return { ...plain, details: details as PlainError['details'] };
  } catch {
    return { ...plain, details: Object.fromEntries(Object.entries(details).map(([k, v]) => [k, String(v)])) as PlainError['details'] };
  }
}

import { InvalidRequestError } from './errors.ts';
import type { BufferLimits } from './block-pool.ts';

/**
 * How many bytes the hot KV pool gets. A caller may give bytes, or a fraction of what is left of
 * the device after the weights; by default the runtime derives it from the device's limits and
 * the model's size. Pure arithmetic: the backend feeds it the adapter's limits and the weight
 * bytes it actually allocated.
 *
 * The rule (WebGPU reports no memory size, so the device's memory is estimated from its limits):
 *   device memory  ~ DEVICE_MEMORY_PER_MAX_BUFFER x maxBufferSize  (browsers size maxBufferSize
 *                    from the device's memory: 256 MiB-1 GiB on phones, 2-4 GiB on desktops)
 *   left           = device memory - weight bytes (never below 0)
 *   default budget = DEFAULT_FRACTION x left (the rest stays for activations and the page),
 *                    at most the KV of MAX_DEFAULT_CONTEXTS (8) full contexts (more would sit unused),
 *                    at least the KV of one full context (a pool that cannot hold one request's
 *                    context is useless) unless that is more than `left`.
 *   fraction f     = f x left.
 * Whatever the rule gives, the pool is then cut to whole blocks and to what the device's buffers
 * can hold (planPoolLayout).
 */
export const DEVICE_MEMORY_PER_MAX_BUFFER = 2;
export const DEFAULT_FRACTION = 0.5;
export const MAX_DEFAULT_CONTEXTS = 8;

export type KvBudgetRequest =
  | { readonly bytes: number }
  | { readonly fraction: number }
  | { readonly auto: true };

export interface KvBudgetInputs {
  readonly limits: BufferLimits;
  /** Bytes the model's weights took on the device. */
  readonly weightBytes: number;
  /** KV bytes of one token, all layers, K and V, in the pool's dtype. */
  readonly tokenBytes: number;
  /** The model's context length (max_position_embeddings). */
  readonly maxContext: number;
}

/** An estimate of the device's memory left after the weights (see the rule above). */
export function memoryLeft(inputs: KvBudgetInputs): number {
  return Math.max(0, DEVICE_MEMORY_PER_MAX_BUFFER * inputs.limits.maxBufferSize - inputs.weightBytes);
}

/** The request (bytes, a fraction, or nothing) as a validated request. */
export function kvBudgetRequest(bytes: number | undefined, fraction: number | undefined): KvBudgetRequest {
  if (bytes !== undefined && fraction !== undefined) {
    throw new InvalidRequestError('give the KV budget as bytes or as a fraction, not both', { bytes, fraction });
  }
  if (bytes !== undefined) {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidRequestError(`kvBudgetBytes must be a positive integer, got ${bytes}`, { bytes });
    return { bytes };
  }
  if (fraction !== undefined) {
    if (!Number.isFinite(fraction) || fraction <= 0 || fraction > 1) {
      throw new InvalidRequestError(`kvBudgetFraction must be in (0, 1], got ${fraction}`, { fraction });
    }
    return { fraction };
  }
  return { auto: true };
}

/** Bytes for the KV pool under `request`. */
export function resolveKvBudget(request: KvBudgetRequest, inputs: KvBudgetInputs): number {
  if ('bytes' in request) return request.bytes;
  const left = memoryLeft(inputs);
  if ('fraction' in request) return Math.floor(request.fraction * left);
  const context = inputs.tokenBytes * inputs.maxContext;
  const ceiling = MAX_DEFAULT_CONTEXTS * context;
  const floor = Math.min(context, left);
  return Math.floor(Math.min(ceiling, Math.max(floor, DEFAULT_FRACTION * left)));
}

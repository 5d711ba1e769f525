import { InvalidRequestError } from './errors.ts';

/** Storage dtype of KV blocks in the hot tier. */
export type KvDtype = 'f32' | 'f16';

/** Quantization of KV at rest (warm and cold tiers). */
export type KvQuantization = 'none' | 'q8' | 'q4';

/**
 * What the runtimes (CLI, worker) store KV at rest as unless told otherwise. q8 halves an f16
 * blob and moved the trained model's validation perplexity by well under its 0.5% target
 * (`npm run bench -- --only=kvquality`; README "Trained model"). The cache store itself stays
 * lossless ('none') when constructed without options, so a library user opts in explicitly.
 */
export const DEFAULT_KV_AT_REST: KvQuantization = 'q8';

/**
 * The shape of one model's KV cache. Everything that must agree between a cache and the model
 * that reads it is here; `fingerprint` names the exact weights so caches never cross models.
 */
export interface ModelCacheSpec {
  readonly modelId: string;
  /** Stable hash of the architecture and weights; salts the prefix index and blob metadata. */
  readonly fingerprint: string;
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  /** Tokens per KV block; a power of two. */
  readonly blockTokens: number;
  readonly dtype: KvDtype;
}

export const DEFAULT_BLOCK_TOKENS = 16;

const BYTES_PER_ELEMENT: Record<KvDtype, number> = { f32: 4, f16: 2 };

function isPositiveInt(n: number): boolean {
  return Number.isInteger(n) && n > 0;
}

export function isPowerOfTwo(n: number): boolean {
  return isPositiveInt(n) && (n & (n - 1)) === 0;
}

/** Validate and freeze a spec; every field is checked before any buffer is sized from it. */
export function createModelCacheSpec(spec: ModelCacheSpec): ModelCacheSpec {
  const ints: Array<keyof ModelCacheSpec> = ['nLayers', 'nKvHeads', 'headDim', 'blockTokens'];
  for (const key of ints) {
    const value = spec[key];
    if (typeof value !== 'number' || !isPositiveInt(value)) {
      throw new InvalidRequestError(`ModelCacheSpec.${key} must be a positive integer`, { key, value });
    }
  }
  if (!isPowerOfTwo(spec.blockTokens)) {
    throw new InvalidRequestError('ModelCacheSpec.blockTokens must be a power of two', {
      blockTokens: spec.blockTokens,
    });
  }
  if (!(spec.dtype in BYTES_PER_ELEMENT)) {
    throw new InvalidRequestError(`Unknown KV dtype ${String(spec.dtype)}`, { dtype: spec.dtype });
  }
  if (!spec.modelId || !spec.fingerprint) {
    throw new InvalidRequestError('ModelCacheSpec needs modelId and fingerprint');
  }
  return Object.freeze({ ...spec });
}

export function kvBytesPerElement(dtype: KvDtype): number {
  return BYTES_PER_ELEMENT[dtype];
}

/** Elements of K (or V) for one block of one layer: [blockTokens, nKvHeads, headDim]. */
export function elementsPerBlockPerLayer(spec: ModelCacheSpec): number {
  return spec.blockTokens * spec.nKvHeads * spec.headDim;
}

/** Bytes one block costs across all layers, K and V together. */
export function bytesPerBlock(spec: ModelCacheSpec): number {
  return 2 * spec.nLayers * elementsPerBlockPerLayer(spec) * kvBytesPerElement(spec.dtype);
}

/** Bytes of K and V for `tokens` tokens, unpadded (the size of a cache at rest). */
export function bytesForTokens(spec: ModelCacheSpec, tokens: number): number {
  return 2 * spec.nLayers * tokens * spec.nKvHeads * spec.headDim * kvBytesPerElement(spec.dtype);
}

export function blocksForTokens(spec: ModelCacheSpec, tokens: number): number {
  return Math.ceil(tokens / spec.blockTokens);
}

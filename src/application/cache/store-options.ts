import type { KvQuantization } from '../../domain/model-cache-spec.ts';
import type { RestoreCostModel } from './cost-model.ts';

export interface CacheStoreOptions {
  /** GPU bytes idle agents may keep (their KV blocks). */
  readonly hotBudgetBytes?: number;
  /** Host bytes of serialized caches. */
  readonly warmBudgetBytes?: number;
  /** Quantization of blobs at rest (warm and cold). */
  readonly quantization?: KvQuantization;
  readonly costModel?: RestoreCostModel;
  /**
   * Write every finished turn to persistent storage in the background while it stays hot, so a
   * closed tab or a killed worker loses nothing that finished. Default false.
   */
  readonly persistOnFinish?: boolean;
  /**
   * With persistOnFinish: checkpoint incrementally (append a segment of what the turn added)
   * where storage can append. Default true; false writes the whole blob every turn.
   */
  readonly incremental?: boolean;
  /** Segments after which a checkpoint writes one whole blob again. Default 16. */
  readonly compactEvery?: number;
}

/** A serialized cache in host memory (the warm tier). */
export interface WarmEntry {
  readonly bytes: Uint8Array;
  readonly tokenIds: readonly number[];
  lastUsed: number;
}

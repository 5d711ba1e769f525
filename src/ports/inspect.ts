/**
 * A read-only picture of the runtime's KV memory for inspectors (the demo's cache panel):
 * plain, structured-cloneable data, so it crosses the worker boundary as is.
 */
import type { CacheTier } from './outbound.ts';

/** One hot-pool block. `owners` index into `InspectSnapshot.agents`. */
export interface InspectBlock {
  /** used: referenced; cached: free but still holding an indexed prefix; free: empty. */
  readonly state: 'used' | 'cached' | 'free';
  readonly refs: number;
  readonly owners: readonly number[];
  /** Named by the prefix index (a full block another request with the same prefix can reuse). */
  readonly indexed: boolean;
  /** Referenced more than once: a prefix shared by several agents or requests. */
  readonly shared: boolean;
}

/** How the latest request of an agent found its context. */
export interface InspectRestore {
  /** hot: its GPU blocks; warm: host memory; cold: IndexedDB; none: nothing of its own. */
  readonly tier: CacheTier | 'none';
  readonly matchedTokens: number;
  /** Why a stored memory was refused (another model, a corrupt blob). */
  readonly refused?: { readonly name: string; readonly code: string; readonly message: string };
}

export interface InspectAgent {
  readonly agentId: string;
  readonly tier: CacheTier | 'none';
  /** Tokens of the agent's memory (hot blocks, else the stored copy). */
  readonly tokens: number;
  /** Hot: its blocks' bytes on the GPU; else the stored blob's bytes. */
  readonly bytes: number;
  readonly hotBlocks: number;
  /** Last checkpoint time (ms since epoch), 0 when never stored. */
  readonly lastUsed: number;
  /** A copy is in persistent storage (IndexedDB) for this model. */
  readonly stored: boolean;
  /** Storage refused its latest memory (quota): held in memory only. */
  readonly unsaved?: { readonly name: string; readonly code: string; readonly message: string };
  readonly lastRestore?: InspectRestore;
}

export interface InspectSnapshot {
  readonly takenAt: number;
  readonly model: { readonly id: string; readonly fingerprint: string; readonly blockTokens: number; readonly bytesPerBlock: number };
  readonly pool: {
    readonly totalBlocks: number;
    /** The first blocks of the pool, at most `blockLimit` of them (a huge pool is summarized by the counts). */
    readonly blocks: readonly InspectBlock[];
    readonly used: number;
    readonly cached: number;
    readonly free: number;
    readonly shared: number;
  };
  readonly agents: readonly InspectAgent[];
  readonly engine: { readonly running: number; readonly waiting: number; readonly steps: number };
  /** GPU device losses the runtime survived. */
  readonly deviceRecoveries: number;
}

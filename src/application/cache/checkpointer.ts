import type { KvQuantization, ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import type { AgentBlocks } from '../../domain/values.ts';
import type { KvBlobCodecPort, KvSnapshot } from '../../ports/outbound.ts';
import type { WriteBehind } from './write-behind.ts';

/** After this many segments a checkpoint writes one whole blob again (compaction). */
export const DEFAULT_COMPACT_EVERY = 16;

export interface CheckpointerOptions {
  readonly spec: ModelCacheSpec;
  readonly codec: KvBlobCodecPort;
  readonly quantization: KvQuantization;
  readonly writes: WriteBehind;
  /** Whether storage can append segments; without it every checkpoint is a whole write. */
  readonly canAppend: boolean;
  readonly compactEvery?: number;
  /** The current backend's read (the backend changes after a lost device). */
  readBlocks(blockTable: readonly number[], tokens: number): Promise<KvSnapshot>;
  /** Register work that restores and deletes must wait for. */
  track<T>(p: Promise<T>): Promise<T>;
}

/** What cold storage holds for an agent, once everything queued has landed. */
interface Stored {
  readonly tokenIds: readonly number[];
  readonly segments: number;
}

type Plan = { readonly kind: 'whole' } | { readonly kind: 'append'; readonly start: number } | { readonly kind: 'skip' };

/**
 * Incremental checkpoints of hot agents (persistOnFinish). A turn that added n tokens writes a
 * segment of the positions from the block boundary at or before the stored end: O(n) bytes plus
 * at most one partial block. A whole blob is written instead when nothing is known to be stored,
 * when the stored tokens are not a prefix of the agent's (the context was edited), or every
 * `compactEvery` segments, so restores read a bounded number of segments.
 *
 * Ordering. The GPU read is submitted at once (before the engine may reuse the blocks); the
 * encode runs later, when the write-behind drains. Checkpoints of one agent enter the queue in
 * the order they were planned (a chain per agent). Every plan carries the agent's epoch; a whole
 * write queued from elsewhere (a spill), a failure, a delete or a restore starts a new epoch,
 * and a checkpoint planned in an older epoch is dropped rather than land on top of newer state.
 */
export class Checkpointer {
  private readonly stored = new Map<string, Stored>();
  private readonly epochs = new Map<string, number>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly compactEvery: number;
  /** Epochs come from one counter, so a forgotten agent (no entry, epoch 0) matches no plan. */
  private counter = 0;

  constructor(private readonly o: CheckpointerOptions) {
    this.compactEvery = o.compactEvery ?? DEFAULT_COMPACT_EVERY;
  }

  checkpoint(blocks: AgentBlocks, lastUsed = Date.now()): void {
    const id = blocks.agentId;
    const plan = this.plan(id, blocks.tokenIds);
    if (plan.kind === 'skip') return;
    const start = plan.kind === 'append' ? plan.start : 0;
    if (plan.kind === 'whole') this.bump(id);
    const epoch = this.epoch(id);
    const read = this.o.readBlocks(blocks.blockTable.slice(start / this.o.spec.blockTokens), blocks.tokenIds.length - start);
    const segments = plan.kind === 'append' ? (this.stored.get(id)?.segments ?? 0) + 1 : 1;
    this.stored.set(id, { tokenIds: blocks.tokenIds, segments });
    const tokenIds = blocks.tokenIds.slice(start);
    const record = { agentId: id, modelFingerprint: this.o.spec.fingerprint, tokenCount: blocks.tokenIds.length, lastUsed };
    const enqueue = (snapshot: KvSnapshot): void => {
      if (this.epoch(id) !== epoch) return;
      const bytes = (): Uint8Array => this.o.codec.encode({ agentId: id, spec: this.o.spec, tokenIds, snapshot, quantization: this.o.quantization });
      this.o.writes.enqueue(id, plan.kind === 'append' ? { bytes, record, segmentStart: start } : { bytes, record, tokenIds });
    };
    const previous = this.chains.get(id) ?? Promise.resolve();
    const link = previous.then(() => read).then(enqueue, () => this.forget(id));
    this.chains.set(id, link);
    void this.o.track(link).finally(() => {
      if (this.chains.get(id) === link) this.chains.delete(id);
    });
  }

  /** A whole blob of the agent was queued from elsewhere (a spill): it is the new base. */
  wholeQueued(agentId: string, tokenIds: readonly number[]): void {
    this.bump(agentId);
    if (tokenIds.length === 0) this.stored.delete(agentId);
    else this.stored.set(agentId, { tokenIds, segments: 1 });
  }

  /** Storage holds this (read back at a restore); the next checkpoint may extend it. */
  learned(agentId: string, tokenIds: readonly number[], segments: number): void {
    this.bump(agentId);
    this.stored.set(agentId, { tokenIds, segments });
  }

  /** What storage holds is not known (a failed write, a delete, a refused blob): next time, whole. */
  forget(agentId: string): void {
    this.epochs.delete(agentId);
    this.stored.delete(agentId);
  }

  /**
   * Storage may have changed under us (another tab saved): extend nothing known from before.
   * Checkpoints already planned still land; the next one of every agent is whole.
   */
  forgetStored(): void {
    this.stored.clear();
  }

  private plan(agentId: string, tokenIds: readonly number[]): Plan {
    const stored = this.stored.get(agentId);
    if (!this.o.canAppend || !stored || !isPrefix(stored.tokenIds, tokenIds)) return { kind: 'whole' };
    if (stored.tokenIds.length === tokenIds.length) return { kind: 'skip' };
    if (stored.segments >= this.compactEvery) return { kind: 'whole' };
    const start = Math.floor(stored.tokenIds.length / this.o.spec.blockTokens) * this.o.spec.blockTokens;
    return start === 0 ? { kind: 'whole' } : { kind: 'append', start };
  }

  private epoch(agentId: string): number {
    return this.epochs.get(agentId) ?? 0;
  }

  private bump(agentId: string): void {
    this.epochs.set(agentId, ++this.counter);
  }
}

function isPrefix(prefix: readonly number[], of: readonly number[]): boolean {
  if (prefix.length > of.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== of[i]) return false;
  return true;
}

import { errorToPlain, QuotaExceededError, type PlainError } from '../../domain/errors.ts';
import type { CachePersistencePort, CachedAgentRecord } from '../../ports/outbound.ts';

export interface PendingWrite {
  readonly bytes: Uint8Array;
  readonly record: Omit<CachedAgentRecord, 'tier' | 'bytes'>;
}

/**
 * Which stored blobs may be deleted to make room when storage is full. The policy: only blobs
 * that are also held in a warmer tier (hot or warm: nothing is lost by deleting the cold copy),
 * or that the app marked as expendable. Everything else is somebody's only memory.
 */
export interface QuotaEvictionPolicy {
  canEvict(record: CachedAgentRecord): boolean;
  /** Told after a blob was deleted to make room, so tiers stay the truth. */
  evicted(record: CachedAgentRecord): void;
}

/** The safe default: never delete anything to make room. */
export const NEVER_EVICT: QuotaEvictionPolicy = { canEvict: () => false, evicted: () => undefined };

/**
 * Writes blobs to persistent storage in the background, one at a time, latest write per agent
 * wins. Decoding never awaits it. Until a write lands, `pending` still serves the bytes, so a
 * cache in flight is never lost. On a quota error it deletes the least recently used blobs the
 * eviction policy allows, and retries; if that is not enough, the failure (a typed
 * QuotaExceededError) is kept in `failures` and reported with the bytes to the caller, who keeps
 * them in memory, flagged as unsaved.
 */
export class WriteBehind {
  private readonly queue = new Map<string, PendingWrite>();
  private running: Promise<void> | null = null;
  readonly failures = new Map<string, PlainError>();
  written = 0;

  constructor(
    private readonly store: CachePersistencePort,
    /** Told when each write lands or fails, with the bytes it carried. */
    private readonly onSettled: (agentId: string, write: PendingWrite, error: PlainError | null) => void = () => undefined,
    private readonly policy: QuotaEvictionPolicy = NEVER_EVICT,
  ) {}

  enqueue(agentId: string, write: PendingWrite): void {
    this.queue.set(agentId, write);
    this.failures.delete(agentId);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  pending(agentId: string): Uint8Array | undefined {
    return this.queue.get(agentId)?.bytes;
  }

  cancel(agentId: string): void {
    this.queue.delete(agentId);
  }

  get size(): number {
    return this.queue.size;
  }

  /** Resolves when everything queued so far has landed (or failed). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const next = this.queue.entries().next();
      if (next.done) return;
      const [agentId, write] = next.value;
      try {
        await this.saveWithEviction(agentId, write);
        this.written++;
        // A newer write for this agent may have been queued while this one ran.
        if (this.queue.get(agentId) === write) this.queue.delete(agentId);
        this.onSettled(agentId, write, null);
      } catch (error) {
        const plain = errorToPlain(error);
        this.failures.set(agentId, plain);
        if (this.queue.get(agentId) === write) this.queue.delete(agentId);
        this.onSettled(agentId, write, plain);
      }
    }
  }

  private async saveWithEviction(agentId: string, write: PendingWrite): Promise<void> {
    for (;;) {
      try {
        await this.store.save(agentId, write.bytes, write.record);
        return;
      } catch (error) {
        if (!(error instanceof QuotaExceededError)) throw error;
        const victims = (await this.store.listCachedAgents())
          .filter((r) => r.agentId !== agentId && this.policy.canEvict(r))
          .sort((a, b) => a.lastUsed - b.lastUsed);
        if (victims.length === 0) throw error;
        await this.store.delete(victims[0].agentId);
        this.policy.evicted(victims[0]);
      }
    }
  }
}

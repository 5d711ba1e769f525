import { errorToPlain, InvalidRequestError, QuotaExceededError, type PlainError } from '../../domain/errors.ts';
import type { CachePersistencePort, CachedAgentRecord } from '../../ports/outbound.ts';

export interface PendingWrite {
  /**
   * The blob, or a function that encodes it. A function runs when the write drains, after the
   * write-behind yielded to the event loop: encoding never runs on the decode path.
   */
  readonly bytes: Uint8Array | (() => Uint8Array);
  readonly record: Omit<CachedAgentRecord, 'tier' | 'bytes'>;
  /** Set for an append (`appendSegment`): the segment's first position. Absent: a whole `save`. */
  readonly segmentStart?: number;
  /** A whole write's token ids, when known: kept with unsaved bytes so appends can resume. */
  readonly tokenIds?: readonly number[];
}

/** A write as it was carried out: its bytes are encoded by then. */
export interface SettledWrite {
  readonly bytes: Uint8Array;
  readonly record: PendingWrite['record'];
  readonly segmentStart?: number;
  readonly tokenIds?: readonly number[];
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

/** A queued write and, once encoded, its bytes (encoded at most once). */
class Entry {
  private encoded: Uint8Array | null;
  constructor(readonly write: PendingWrite) {
    this.encoded = write.bytes instanceof Uint8Array ? write.bytes : null;
  }
  get isAppend(): boolean {
    return this.write.segmentStart !== undefined;
  }
  bytes(): Uint8Array {
    if (this.encoded === null) this.encoded = (this.write.bytes as () => Uint8Array)();
    return this.encoded;
  }
  settled(): SettledWrite {
    return { ...this.write, bytes: this.bytes() };
  }
}

/**
 * Writes blobs to persistent storage in the background, one at a time. Decoding never awaits
 * it. Per agent the queue is ordered: a whole write replaces everything queued for the agent
 * (latest wins); an append queues behind what is there, because it extends that. When a write
 * fails, the appends queued behind it are dropped: they would extend what never landed. Until a
 * whole write lands, `pending` still serves its bytes, so a cache in flight is never lost. On a
 * quota error it deletes the least recently used blobs the eviction policy allows, and retries;
 * if that is not enough, the failure (a typed QuotaExceededError) is kept in `failures` and
 * reported with the bytes to the caller, who keeps them in memory, flagged as unsaved.
 */
export class WriteBehind {
  private readonly queue = new Map<string, Entry[]>();
  private running: Promise<void> | null = null;
  readonly failures = new Map<string, PlainError>();
  written = 0;
  /** Bytes handed to storage so far (whole blobs and segments). */
  bytesWritten = 0;

  constructor(
    private readonly store: CachePersistencePort,
    /** Told when each write lands or fails, with the bytes it carried. */
    private readonly onSettled: (agentId: string, write: SettledWrite, error: PlainError | null) => void = () => undefined,
    private readonly policy: QuotaEvictionPolicy = NEVER_EVICT,
  ) {}

  enqueue(agentId: string, write: PendingWrite): void {
    const entry = new Entry(write);
    const list = this.queue.get(agentId);
    if (entry.isAppend && list && list.length > 0) list.push(entry);
    else this.queue.set(agentId, [entry]);
    this.failures.delete(agentId);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Whether any write of the agent is queued or running. */
  has(agentId: string): boolean {
    return (this.queue.get(agentId)?.length ?? 0) > 0;
  }

  /** Whether an append of the agent is queued or running (its whole memory is not in one blob). */
  hasAppend(agentId: string): boolean {
    return this.queue.get(agentId)?.some((e) => e.isAppend) ?? false;
  }

  /** The newest queued whole blob of the agent, when it is the last thing queued for it. */
  pending(agentId: string): Uint8Array | undefined {
    const last = this.queue.get(agentId)?.at(-1);
    return last && !last.isAppend ? last.bytes() : undefined;
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
      // Yield first: the writes were queued from the engine's path, whose step goes on now.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const next = [...this.queue.entries()].find(([, list]) => list.length > 0);
      if (!next) return;
      const [agentId, list] = next;
      const entry = list[0];
      try {
        await this.saveWithEviction(agentId, entry);
        this.written++;
        this.settle(agentId, entry, false);
        this.onSettled(agentId, entry.settled(), null);
      } catch (error) {
        const plain = errorToPlain(error);
        this.failures.set(agentId, plain);
        this.settle(agentId, entry, true);
        this.onSettled(agentId, entry.settled(), plain);
      }
    }
  }

  /** Take a finished entry off its agent's list (unless a whole write replaced the list). */
  private settle(agentId: string, entry: Entry, failed: boolean): void {
    const list = this.queue.get(agentId);
    if (!list || list[0] !== entry) return;
    list.shift();
    // Appends behind a failed write would extend what never landed.
    const rest = failed ? list.filter((e) => !e.isAppend) : list;
    if (rest.length === 0) this.queue.delete(agentId);
    else this.queue.set(agentId, rest);
  }

  private async saveWithEviction(agentId: string, entry: Entry): Promise<void> {
    const bytes = entry.bytes();
    const { record, segmentStart } = entry.write;
    for (;;) {
      try {
        if (segmentStart === undefined) await this.store.save(agentId, bytes, record);
        else await this.appendTo(agentId, segmentStart, bytes, record);
        this.bytesWritten += bytes.byteLength;
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

  private async appendTo(agentId: string, start: number, bytes: Uint8Array, record: PendingWrite['record']): Promise<void> {
    if (!this.store.appendSegment) throw new InvalidRequestError('this storage keeps whole blobs only: it cannot append a segment', { agentId, start });
    await this.store.appendSegment(agentId, { start, bytes }, record);
  }
}

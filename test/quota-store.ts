import { QuotaExceededError } from '../src/domain/errors.ts';
import { InvalidRequestError } from '../src/domain/errors.ts';
import type { CachePersistencePort, CachedAgentRecord, StoredSegment } from '../src/ports/outbound.ts';

/** An in-memory persistence with a byte quota, so quota handling can be tested as pure logic. */
export class QuotaStore implements CachePersistencePort {
  readonly blobs = new Map<string, { bytes: Uint8Array; record: CachedAgentRecord }>();
  saves = 0;
  constructor(public quota: number) {}
  protected used(except: string): number {
    let n = 0;
    for (const [id, b] of this.blobs) if (id !== except) n += b.bytes.byteLength + this.extraBytes(id);
    return n;
  }
  /** Bytes an agent holds beyond its blob (appended segments, in the subclass). */
  protected extraBytes(_agentId: string): number {
    return 0;
  }
  async save(agentId: string, blob: Uint8Array, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void> {
    this.saves++;
    await new Promise((r) => setTimeout(r, 1));
    if (this.used(agentId) + blob.byteLength > this.quota) throw new QuotaExceededError('quota', { agentId });
    this.blobs.set(agentId, { bytes: blob, record: { ...record, bytes: blob.byteLength, tier: 'cold' } });
  }
  async load(agentId: string): Promise<Uint8Array | null> {
    return this.blobs.get(agentId)?.bytes ?? null;
  }
  async exists(agentId: string): Promise<boolean> {
    return this.blobs.has(agentId);
  }
  async delete(agentId: string): Promise<boolean> {
    return this.blobs.delete(agentId);
  }
  async listCachedAgents(): Promise<CachedAgentRecord[]> {
    return [...this.blobs.values()].map((b) => b.record);
  }
}


/** The same, with appended segments (incremental checkpoints) counted against the quota. */
export class SegmentedQuotaStore extends QuotaStore {
  readonly segments = new Map<string, StoredSegment[]>();
  appends = 0;
  protected override extraBytes(agentId: string): number {
    return (this.segments.get(agentId) ?? []).reduce((n, s) => n + s.bytes.byteLength, 0);
  }
  override async save(agentId: string, blob: Uint8Array, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void> {
    await super.save(agentId, blob, record);
    this.segments.delete(agentId);
  }
  async appendSegment(agentId: string, segment: StoredSegment, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void> {
    this.appends++;
    await new Promise((r) => setTimeout(r, 1));
    const base = this.blobs.get(agentId);
    if (!base) throw new InvalidRequestError('nothing to append to', { agentId });
    const kept = [...(this.segments.get(agentId) ?? []).filter((s) => s.start < segment.start), segment];
    const mine = base.bytes.byteLength + kept.reduce((n, s) => n + s.bytes.byteLength, 0);
    if (this.used(agentId) + mine > this.quota) throw new QuotaExceededError('quota', { agentId });
    this.segments.set(agentId, kept);
    this.blobs.set(agentId, { bytes: base.bytes, record: { ...record, bytes: mine, tier: 'cold' } });
  }
  async loadSegments(agentId: string): Promise<StoredSegment[] | null> {
    const base = this.blobs.get(agentId);
    return base ? [{ start: 0, bytes: base.bytes }, ...(this.segments.get(agentId) ?? [])] : null;
  }
  override async delete(agentId: string): Promise<boolean> {
    this.segments.delete(agentId);
    return super.delete(agentId);
  }
}

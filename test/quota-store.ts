import { QuotaExceededError } from '../src/domain/errors.ts';
import type { CachePersistencePort, CachedAgentRecord } from '../src/ports/outbound.ts';

/** An in-memory persistence with a byte quota, so quota handling can be tested as pure logic. */
export class QuotaStore implements CachePersistencePort {
  readonly blobs = new Map<string, { bytes: Uint8Array; record: CachedAgentRecord }>();
  saves = 0;
  constructor(public quota: number) {}
  private used(except: string): number {
    let n = 0;
    for (const [id, b] of this.blobs) if (id !== except) n += b.bytes.byteLength;
    return n;
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


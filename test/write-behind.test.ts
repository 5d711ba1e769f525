import { describe, expect, it } from 'vitest';
import { QuotaExceededError } from '../src/domain/errors.ts';
import { WriteBehind } from '../src/application/cache/write-behind.ts';
import type { CachePersistencePort, CachedAgentRecord } from '../src/ports/outbound.ts';

/** An in-memory persistence with a byte quota, so quota handling can be tested as pure logic. */
class QuotaStore implements CachePersistencePort {
  readonly blobs = new Map<string, { bytes: Uint8Array; record: CachedAgentRecord }>();
  saves = 0;
  constructor(private readonly quota: number) {}
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

const write = (agentId: string, size: number, lastUsed: number) => ({
  bytes: new Uint8Array(size).fill(lastUsed),
  record: { agentId, modelFingerprint: 'fp', tokenCount: size, lastUsed },
});

describe('WriteBehind', () => {
  it('writes in the background; the newest write per agent wins; pending bytes stay readable', async () => {
    const store = new QuotaStore(1e9);
    const wb = new WriteBehind(store);
    wb.enqueue('a', write('a', 10, 1));
    wb.enqueue('a', write('a', 20, 2));
    expect(wb.pending('a')?.byteLength).toBe(20);
    await wb.flush();
    expect(store.blobs.get('a')?.bytes.byteLength).toBe(20);
    expect(wb.pending('a')).toBeUndefined();
  });

  it('on QuotaExceededError deletes the oldest other blobs first, then saves', async () => {
    const store = new QuotaStore(100);
    const settled: Array<[string, string | null]> = [];
    const wb = new WriteBehind(store, (id, _w, err) => settled.push([id, err?.name ?? null]));
    wb.enqueue('old', write('old', 40, 1));
    wb.enqueue('mid', write('mid', 40, 2));
    await wb.flush();
    wb.enqueue('new', write('new', 50, 3));
    await wb.flush();
    expect([...store.blobs.keys()].sort()).toEqual(['mid', 'new']);
    expect(settled.at(-1)).toEqual(['new', null]);
  });

  it('a blob that cannot fit even alone fails with a typed error, reported with its bytes, and nothing is half-written', async () => {
    const store = new QuotaStore(100);
    const failures: Array<{ id: string; bytes: number; name: string | undefined }> = [];
    const wb = new WriteBehind(store, (id, w, err) => err && failures.push({ id, bytes: w.bytes.byteLength, name: err.name }));
    wb.enqueue('keep', write('keep', 30, 1));
    await wb.flush();
    wb.enqueue('huge', write('huge', 500, 2));
    await wb.flush();
    expect(failures).toEqual([{ id: 'huge', bytes: 500, name: 'QuotaExceededError' }]);
    expect(wb.failures.get('huge')?.code).toBe('QUOTA_EXCEEDED');
    expect(store.blobs.has('huge')).toBe(false);
  });
});

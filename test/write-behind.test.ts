import { describe, expect, it } from 'vitest';
import { WriteBehind } from '../src/application/cache/write-behind.ts';
import type { CachedAgentRecord } from '../src/ports/outbound.ts';
import { QuotaStore } from './quota-store.ts';

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

  it('on QuotaExceededError deletes only what the policy allows (held warmer or expendable), oldest first, then saves', async () => {
    const store = new QuotaStore(100);
    const settled: Array<[string, string | null]> = [];
    const evicted: string[] = [];
    const warmer = new Set(['mid', 'young']);
    const policy = { canEvict: (r: CachedAgentRecord) => warmer.has(r.agentId), evicted: (r: CachedAgentRecord) => void evicted.push(r.agentId) };
    const wb = new WriteBehind(store, (id, _w, err) => settled.push([id, err?.name ?? null]), policy);
    wb.enqueue('old', write('old', 30, 1));
    wb.enqueue('mid', write('mid', 30, 2));
    wb.enqueue('young', write('young', 30, 3));
    await wb.flush();
    wb.enqueue('new', write('new', 40, 4));
    await wb.flush();
    // 'old' is the oldest but is nobody else's copy: it stays; 'mid' (held warmer) makes room.
    expect([...store.blobs.keys()].sort()).toEqual(['new', 'old', 'young']);
    expect(evicted).toEqual(['mid']);
    expect(settled.at(-1)).toEqual(['new', null]);
  });

  it('with the default policy a full store deletes nothing: the write fails with QuotaExceededError', async () => {
    const store = new QuotaStore(100);
    const settled: Array<[string, string | null]> = [];
    const wb = new WriteBehind(store, (id, _w, err) => settled.push([id, err?.name ?? null]));
    wb.enqueue('a', write('a', 60, 1));
    await wb.flush();
    wb.enqueue('b', write('b', 60, 2));
    await wb.flush();
    expect([...store.blobs.keys()]).toEqual(['a']);
    expect(settled.at(-1)).toEqual(['b', 'QuotaExceededError']);
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
    expect(store.blobs.has('keep')).toBe(true);
  });
});

describe('WriteBehind with appended segments', () => {
  /** A store that logs the order of saves and appends; appends can be made to fail. */
  function loggingStore(failAppend = false) {
    const store = new QuotaStore(1e9);
    const log: string[] = [];
    const save = store.save.bind(store);
    store.save = async (id, blob, rec) => {
      log.push(`save ${id} ${blob.byteLength}`);
      await save(id, blob, rec);
    };
    const appendSegment = async (id: string, seg: { start: number; bytes: Uint8Array }) => {
      log.push(`append ${id}@${seg.start} ${seg.bytes.byteLength}`);
      if (failAppend) throw new Error('disk error');
    };
    return { store: Object.assign(store, { appendSegment }), log };
  }

  it('an append queues behind a pending whole write; a later whole write replaces both; encoding is lazy', async () => {
    const { store, log } = loggingStore();
    const wb = new WriteBehind(store);
    let encoded = 0;
    const lazy = (n: number) => () => (encoded++, new Uint8Array(n));
    wb.enqueue('a', { bytes: lazy(10), record: write('a', 10, 1).record });
    wb.enqueue('a', { bytes: lazy(3), record: write('a', 13, 2).record, segmentStart: 8 });
    expect(encoded).toBe(0); // nothing encoded on the caller's path
    expect(wb.hasAppend('a')).toBe(true);
    expect(wb.pending('a')).toBeUndefined(); // the newest state is not one whole blob
    await wb.flush();
    expect(log).toEqual(['save a 10', 'append a@8 3']);
    wb.enqueue('b', { bytes: lazy(5), record: write('b', 5, 1).record });
    wb.enqueue('b', { bytes: lazy(2), record: write('b', 7, 2).record, segmentStart: 4 });
    wb.enqueue('b', write('b', 9, 3));
    await wb.flush();
    expect(log.slice(2)).toEqual(['save b 9']);
    expect(encoded).toBe(2);
  });

  it('appends queued behind a failed write are dropped: they would extend what never landed', async () => {
    const { store, log } = loggingStore(true);
    const settled: Array<[number | undefined, string | null]> = [];
    const wb = new WriteBehind(store, (_id, w, err) => settled.push([w.segmentStart, err?.name ?? null]));
    wb.enqueue('a', write('a', 10, 1));
    wb.enqueue('a', { ...write('a', 3, 2), segmentStart: 8 });
    wb.enqueue('a', { ...write('a', 3, 3), segmentStart: 12 });
    await wb.flush();
    expect(log).toEqual(['save a 10', 'append a@8 3']);
    expect(settled).toEqual([[undefined, null], [8, 'InternalError']]);
    expect(wb.has('a')).toBe(false);
  });
});

import {
  IDBCursor,
  IDBDatabase,
  IDBFactory,
  IDBIndex,
  IDBObjectStore,
  IDBRequest,
  IDBTransaction,
} from 'fake-indexeddb';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_IDB_NAME,
  IDB_SCHEMA_VERSION,
  IdbCachePersistence,
} from '../src/adapters/indexeddb/idb-cache-persistence.ts';
import { decodeAgentBlob, encodeAgentBlob } from '../src/adapters/safetensors/agent-blob.ts';
import { CacheCorruptError, InternalError, InvalidRequestError, QuotaExceededError } from '../src/domain/errors.ts';
import type { ModelCacheSpec } from '../src/domain/model-cache-spec.ts';

// idb tests values with `instanceof IDBDatabase` (and friends) against globals, which Node lacks.
// Only those classes are stubbed; the factory itself is always injected, never global.
beforeAll(() => {
  for (const [name, value] of Object.entries({ IDBCursor, IDBDatabase, IDBIndex, IDBObjectStore, IDBRequest, IDBTransaction })) {
    vi.stubGlobal(name, value);
  }
});
afterAll(() => vi.unstubAllGlobals());
afterEach(() => vi.restoreAllMocks());

const opened: IdbCachePersistence[] = [];
afterEach(() => {
  for (const p of opened.splice(0)) p.close();
});

async function openFresh(factory = new IDBFactory(), name?: string): Promise<IdbCachePersistence> {
  const p = await IdbCachePersistence.open({ indexedDB: factory, ...(name ? { name } : {}) });
  opened.push(p);
  return p;
}

function bytesOf(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function record(agentId: string, lastUsed: number, tokenCount = 3) {
  return { agentId, modelFingerprint: 'fp-1', tokenCount, lastUsed };
}

const realPut = IDBObjectStore.prototype.put;

/** Make `put` on one store misbehave; the other store's put still runs first or after. */
function failPut(storeName: string, fail: (store: IDBObjectStore, request: () => IDBRequest) => IDBRequest): void {
  vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
    const call = () => realPut.apply(this, args);
    return this.name === storeName ? fail(this, call) : call();
  });
}

/** Abort the transaction with a named error once the request has succeeded (as at commit). */
function abortAfter(request: IDBRequest, errorName: string): IDBRequest {
  request.addEventListener('success', () => {
    const tx = request.transaction as IDBTransaction;
    const abort: unknown = Reflect.get(tx, '_abort');
    if (typeof abort === 'function') abort.call(tx, errorName);
  });
  return request;
}

describe('IdbCachePersistence', () => {
  it('saves, loads, lists, checks and deletes', async () => {
    const p = await openFresh();
    expect(p.name).toBe(DEFAULT_IDB_NAME);
    expect(await p.load('a')).toBeNull();
    expect(await p.exists('a')).toBe(false);
    await p.save('a', bytesOf(1, 2, 3), record('a', 10));
    await p.save('b', bytesOf(4, 5), record('b', 5, 7));
    expect(await p.load('a')).toEqual(bytesOf(1, 2, 3));
    expect(await p.exists('a')).toBe(true);
    const list = await p.listCachedAgents();
    expect(list.sort((x, y) => x.agentId.localeCompare(y.agentId))).toEqual([
      { agentId: 'a', modelFingerprint: 'fp-1', tokenCount: 3, bytes: 3, lastUsed: 10, tier: 'cold' },
      { agentId: 'b', modelFingerprint: 'fp-1', tokenCount: 7, bytes: 2, lastUsed: 5, tier: 'cold' },
    ]);
    expect(await p.delete('a')).toBe(true);
    expect(await p.delete('a')).toBe(false);
    expect(await p.load('a')).toBeNull();
    expect(await p.exists('a')).toBe(false);
    expect((await p.listCachedAgents()).map((r) => r.agentId)).toEqual(['b']);
  });

  it('overwrites the pair', async () => {
    const p = await openFresh();
    await p.save('a', bytesOf(1, 2, 3), record('a', 1, 3));
    await p.save('a', bytesOf(9), record('a', 2, 1));
    expect(await p.load('a')).toEqual(bytesOf(9));
    expect(await p.listCachedAgents()).toEqual([{ agentId: 'a', modelFingerprint: 'fp-1', tokenCount: 1, bytes: 1, lastUsed: 2, tier: 'cold' }]);
  });

  it('stores exactly the bytes of a view into a larger buffer', async () => {
    const p = await openFresh();
    const big = Uint8Array.from({ length: 64 }, (_, i) => i);
    await p.save('a', big.subarray(10, 14), record('a', 1));
    const loaded = await p.load('a');
    expect(loaded).toEqual(bytesOf(10, 11, 12, 13));
    expect(loaded?.buffer.byteLength).toBe(4);
  });

  it('round trips a real agent blob', async () => {
    const spec: ModelCacheSpec = { modelId: 'm', fingerprint: 'fp-1', nLayers: 1, nKvHeads: 1, headDim: 4, blockTokens: 16, dtype: 'f32' };
    const keys = [Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8)];
    const blob = encodeAgentBlob({ agentId: 'a', spec, tokenIds: [3, 4], snapshot: { tokens: 2, keys, values: keys }, quantization: 'q8' });
    const p = await openFresh();
    await p.save('a', blob, record('a', 1, 2));
    const loaded = await p.load('a');
    expect(loaded).toEqual(blob);
    expect(decodeAgentBlob(loaded as Uint8Array, spec).tokenIds).toEqual([3, 4]);
  });

  it('returns the least recently used agents first', async () => {
    const p = await openFresh();
    for (const [id, t] of [['a', 30], ['b', 10], ['c', 20], ['d', 40]] as const) await p.save(id, bytesOf(1), record(id, t));
    expect((await p.oldestAgents(2)).map((r) => r.agentId)).toEqual(['b', 'c']);
    expect((await p.oldestAgents(10)).map((r) => r.agentId)).toEqual(['b', 'c', 'a', 'd']);
    expect(await p.oldestAgents(0)).toEqual([]);
    await expect(p.oldestAgents(-1)).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it('refuses bad ids and inconsistent records before touching storage', async () => {
    const p = await openFresh();
    await expect(p.save('../x', bytesOf(1), record('../x', 1))).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.save('a', bytesOf(1), record('b', 1))).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.save('a', bytesOf(1), { ...record('a', 1), tokenCount: -1 })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.save('a', bytesOf(1), { ...record('a', NaN) })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.load('')).rejects.toBeInstanceOf(InvalidRequestError);
    expect(await p.listCachedAgents()).toEqual([]);
  });

  it('keeps databases of different names apart', async () => {
    const factory = new IDBFactory();
    const one = await openFresh(factory, 'one');
    const two = await openFresh(factory, 'two');
    await one.save('a', bytesOf(1), record('a', 1));
    expect(await two.exists('a')).toBe(false);
  });

  it('reports a stored value without bytes as corrupt', async () => {
    const factory = new IDBFactory();
    const p = await openFresh(factory, 'raw');
    const raw = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open('raw');
      r.onsuccess = () => resolve(r.result);
    });
    await new Promise<void>((resolve) => {
      const tx = raw.transaction('blobs', 'readwrite');
      tx.objectStore('blobs').put({ agentId: 'x', bytes: 'not bytes' });
      tx.oncomplete = () => resolve();
    });
    raw.close();
    await expect(p.load('x')).rejects.toBeInstanceOf(CacheCorruptError);
  });
});

describe('IdbCachePersistence atomicity', () => {
  it('keeps the old pair when the second put throws', async () => {
    const p = await openFresh();
    await p.save('a', bytesOf(1, 1), record('a', 1, 2));
    failPut('agents', () => {
      throw new TypeError('disk on fire');
    });
    const error: unknown = await p.save('a', bytesOf(2, 2, 2), record('a', 2, 3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalError);
    expect((error as InternalError).details).toMatchObject({ agentId: 'a', originalName: 'TypeError' });
    vi.restoreAllMocks();
    expect(await p.load('a')).toEqual(bytesOf(1, 1));
    expect(await p.listCachedAgents()).toEqual([{ agentId: 'a', modelFingerprint: 'fp-1', tokenCount: 2, bytes: 2, lastUsed: 1, tier: 'cold' }]);
  });

  it('keeps the old pair when the transaction aborts after both puts succeeded', async () => {
    const p = await openFresh();
    await p.save('a', bytesOf(1, 1), record('a', 1, 2));
    failPut('agents', (_store, put) => abortAfter(put(), 'UnknownError'));
    await expect(p.save('a', bytesOf(2, 2, 2), record('a', 2, 3))).rejects.toBeInstanceOf(InternalError);
    vi.restoreAllMocks();
    expect(await p.load('a')).toEqual(bytesOf(1, 1));
    expect((await p.listCachedAgents())[0]?.tokenCount).toBe(2);
  });

  it('leaves nothing behind when a first save fails', async () => {
    const p = await openFresh();
    failPut('blobs', (_store, put) => abortAfter(put(), 'UnknownError'));
    await expect(p.save('n', bytesOf(7), record('n', 1))).rejects.toBeInstanceOf(InternalError);
    vi.restoreAllMocks();
    expect(await p.exists('n')).toBe(false);
    expect(await p.listCachedAgents()).toEqual([]);
  });
});

describe('IdbCachePersistence quota', () => {
  it('maps a QuotaExceededError thrown by put', async () => {
    const p = await openFresh();
    await p.save('a', bytesOf(1), record('a', 1));
    failPut('blobs', () => {
      throw new DOMException('no room', 'QuotaExceededError');
    });
    const error: unknown = await p.save('a', new Uint8Array(1000), record('a', 2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect((error as QuotaExceededError).details).toEqual({ agentId: 'a', bytes: 1000 });
    vi.restoreAllMocks();
    expect(await p.load('a')).toEqual(bytesOf(1));
  });

  it('maps a quota error that surfaces as the transaction error', async () => {
    const p = await openFresh();
    failPut('agents', (_store, put) => abortAfter(put(), 'QuotaExceededError'));
    const error: unknown = await p.save('q', new Uint8Array(64), record('q', 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect((error as QuotaExceededError).details).toEqual({ agentId: 'q', bytes: 64 });
    vi.restoreAllMocks();
    expect(await p.exists('q')).toBe(false);
  });
});

describe('IdbCachePersistence schema', () => {
  it('creates version 1 with both stores and the lastUsed index, and reopens without loss', async () => {
    const factory = new IDBFactory();
    const first = await IdbCachePersistence.open({ indexedDB: factory, name: 'kv' });
    await first.save('a', bytesOf(5), record('a', 1));
    first.close();
    const raw = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open('kv');
      r.onsuccess = () => resolve(r.result);
    });
    expect(raw.version).toBe(IDB_SCHEMA_VERSION);
    expect(Array.from(raw.objectStoreNames).sort()).toEqual(['agents', 'blobs']);
    expect(Array.from(raw.transaction('agents').objectStore('agents').indexNames)).toEqual(['lastUsed']);
    raw.close();
    const second = await openFresh(factory, 'kv');
    expect(await second.load('a')).toEqual(bytesOf(5));
  });

  it('refuses a database from a newer schema with a typed error', async () => {
    const factory = new IDBFactory();
    await new Promise<void>((resolve) => {
      const r = factory.open('newer', IDB_SCHEMA_VERSION + 1);
      r.onsuccess = () => {
        r.result.close();
        resolve();
      };
    });
    const error: unknown = await IdbCachePersistence.open({ indexedDB: factory, name: 'newer' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalError);
    expect((error as InternalError).details).toMatchObject({ originalName: 'VersionError' });
  });

  it('steps aside when another connection upgrades the database', async () => {
    const factory = new IDBFactory();
    const p = await IdbCachePersistence.open({ indexedDB: factory, name: 'shared' });
    const upgraded = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = factory.open('shared', IDB_SCHEMA_VERSION + 1);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    expect(upgraded.version).toBe(IDB_SCHEMA_VERSION + 1);
    upgraded.close();
    // The closed connection now fails with a typed error instead of hanging.
    await expect(p.load('a')).rejects.toBeInstanceOf(InternalError);
  });

  it('fails with a typed error when there is no IndexedDB', async () => {
    vi.stubGlobal('indexedDB', undefined);
    await expect(IdbCachePersistence.open()).rejects.toBeInstanceOf(InternalError);
  });

  it('keys blobs by agent and model: one database per model, legacy rows adopted, every model listed', async () => {
    const factory = new IDBFactory();
    const legacy = await openFresh(factory);
    await legacy.save('a', bytesOf(1), record('a', 1));
    await legacy.save('b', bytesOf(2), { ...record('b', 1), modelFingerprint: 'fp-9' });
    legacy.close();
    const one = await IdbCachePersistence.open({ indexedDB: factory, modelFingerprint: 'fp-1' });
    opened.push(one);
    expect(one.name).toBe(`${DEFAULT_IDB_NAME}:fp-1`);
    expect(await one.load('a')).toEqual(bytesOf(1));
    const two = await one.forModel('fp-2');
    opened.push(two);
    await two.save('a', bytesOf(7, 7), { ...record('a', 2), modelFingerprint: 'fp-2' });
    expect(await one.load('a')).toEqual(bytesOf(1));
    expect(await two.load('a')).toEqual(bytesOf(7, 7));
    await expect(one.save('a', bytesOf(3), { ...record('a', 3), modelFingerprint: 'fp-2' })).rejects.toBeInstanceOf(InvalidRequestError);
    const all = (await one.listAllCachedAgents()).map((r) => `${r.agentId}@${r.modelFingerprint}`).sort();
    // fp-1's row left the unscoped database; fp-9's stays there until fp-9 is opened.
    expect(all).toEqual(['a@fp-1', 'a@fp-2', 'b@fp-9']);
  });
});


describe('IdbCachePersistence segments', () => {
  const seg = (start: number, ...values: number[]) => ({ start, bytes: bytesOf(...values) });
  const starts = async (p: IdbCachePersistence, id: string) => ((await p.loadSegments(id)) ?? []).map((s) => [s.start, [...s.bytes]]);

  it('appends in one transaction, keeps earlier segments, lists the whole; a save or delete drops them', async () => {
    const factory = new IDBFactory();
    const p = await openFresh(factory);
    expect(await p.loadSegments('a')).toBeNull();
    await expect(p.appendSegment('a', seg(16, 9), record('a', 1, 20))).rejects.toBeInstanceOf(InvalidRequestError);
    await p.save('a', bytesOf(1, 2, 3), record('a', 1, 20));
    await p.appendSegment('a', seg(16, 4, 4), record('a', 2, 30));
    await p.appendSegment('a', seg(16, 5, 5, 5), record('a', 3, 40)); // replaces the segment at 16
    await p.appendSegment('a', seg(32, 6), record('a', 4, 50));
    await expect(p.appendSegment('a', seg(64, 7), record('a', 5, 70))).rejects.toBeInstanceOf(InvalidRequestError);
    expect(await starts(p, 'a')).toEqual([[0, [1, 2, 3]], [16, [5, 5, 5]], [32, [6]]]);
    expect(await p.listCachedAgents()).toEqual([{ agentId: 'a', modelFingerprint: 'fp-1', tokenCount: 50, bytes: 7, lastUsed: 4, tier: 'cold' }]);
    expect(await p.load('a')).toEqual(bytesOf(1, 2, 3)); // old callers: the first segment
    // Reopened (a reload): the same state.
    const again = await openFresh(factory);
    expect(await starts(again, 'a')).toEqual([[0, [1, 2, 3]], [16, [5, 5, 5]], [32, [6]]]);
    await p.save('a', bytesOf(8), record('a', 6, 55));
    expect(await starts(p, 'a')).toEqual([[0, [8]]]);
    await p.appendSegment('a', seg(48, 9), record('a', 7, 60));
    expect(await p.delete('a')).toBe(true);
    expect(await p.loadSegments('a')).toBeNull();
    // No segment rows are left behind under any key.
    const db = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open(DEFAULT_IDB_NAME);
      r.onsuccess = () => resolve(r.result);
    });
    const keys = await new Promise<IDBValidKey[]>((resolve) => {
      const r = db.transaction('blobs').objectStore('blobs').getAllKeys();
      r.onsuccess = () => resolve(r.result);
    });
    db.close();
    expect(keys).toEqual([]);
  });

  it('a failed append leaves the previous state (the transaction aborts as a whole)', async () => {
    const p = await openFresh();
    await p.save('a', bytesOf(1, 2), record('a', 1, 20));
    await p.appendSegment('a', seg(16, 3), record('a', 2, 30));
    failPut('agents', (_store, put) => abortAfter(put(), 'UnknownError'));
    await expect(p.appendSegment('a', seg(16, 4, 4), record('a', 3, 40))).rejects.toBeInstanceOf(InternalError);
    vi.restoreAllMocks();
    expect(await starts(p, 'a')).toEqual([[0, [1, 2]], [16, [3]]]);
    expect((await p.listCachedAgents())[0].tokenCount).toBe(30);
  });

  it('appends with durability strict', async () => {
    const p = await openFresh();
    await p.save('a', bytesOf(1), record('a', 1, 20));
    const spy = vi.spyOn(IDBDatabase.prototype, 'transaction');
    await p.appendSegment('a', seg(16, 2), record('a', 2, 30));
    expect(spy.mock.calls.some((c) => c[1] === 'readwrite' && (c[2] as { durability?: string } | undefined)?.durability === 'strict')).toBe(true);
  });
});

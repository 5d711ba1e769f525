/**
 * The cold tier in the browser: one safetensors blob per agent in IndexedDB, through `idb`.
 *
 * Schema (version 1):
 *   blobs   key agentId -> { agentId, bytes: ArrayBuffer }      the blob, opaque here
 *   agents  key agentId -> CachedAgentRecord (tier 'cold')       index `lastUsed`
 * A blob and its record are written and deleted in one readwrite transaction over both stores,
 * so a crash or a closed tab leaves the old pair or the new pair, never a torn pair.
 *
 * Segments (incremental checkpoints). An appended segment is stored in `blobs` under the key
 * `<agentId>~<start, 12 digits>` ('~' never occurs in an agent id), and the agent's record
 * lists the segments. An append (drop the segments from its start on, put it, update the
 * record) and a save (put the blob, drop every segment) are each one transaction, and
 * `loadSegments` reads the blob, the record and the segments in one transaction too.
 *
 * Scopes. Blobs are keyed by agent and model: an instance opened with `modelFingerprint` uses
 * its own database, `<name>:<fingerprint>`, so agents of two models live side by side. Opening a
 * scope moves that model's blobs out of the unscoped database (the older layout): copy first,
 * then delete, so a crash in between leaves a duplicate, never a loss. `forModel` and
 * `listAllCachedAgents` reach the other models' scopes.
 *
 * Durability. Writes use `durability: 'strict'`: a checkpoint that resolved is on disk.
 *
 * The factory is injectable (tests pass fake-indexeddb's IDBFactory; a worker may pass its own);
 * we open through it and let idb's `wrap` add promises, because idb's `openDB` always uses the
 * global `indexedDB`.
 */
import { wrap, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { InternalError, InvalidRequestError } from '../../domain/errors.ts';
import { isFingerprint, validateAgentId, validateFingerprint } from '../../domain/values.ts';
import type { CachePersistencePort, CachedAgentRecord, StoredSegment } from '../../ports/outbound.ts';
import {
  abortQuietly,
  asRecord,
  blobBytes,
  IDB_SCHEMA_VERSION,
  isStoredAgent,
  openError,
  ownBuffer,
  segmentsOf,
  toPersistenceError,
  toStoredAgent,
  type StoredAgent,
  type StoredSegmentInfo,
} from './idb-values.ts';

export { IDB_SCHEMA_VERSION } from './idb-values.ts';

export const DEFAULT_IDB_NAME = 'semantic-kv';

const BLOBS = 'blobs';
const AGENTS = 'agents';
const BY_LAST_USED = 'lastUsed';

interface StoredBlob {
  readonly agentId: string;
  readonly bytes: ArrayBuffer;
}

interface KvDatabase extends DBSchema {
  blobs: { key: string; value: StoredBlob };
  agents: { key: string; value: StoredAgent; indexes: { lastUsed: number } };
}

type Db = IDBPDatabase<KvDatabase>;
type WriteTx = IDBPTransaction<KvDatabase, ['blobs', 'agents'], 'readwrite'>;
type Track = <T>(promise: Promise<T>) => Promise<T>;

export interface IdbCachePersistenceOptions {
  /** Database name; one per app or per model family. Default "semantic-kv". */
  readonly name?: string;
  /** The IndexedDB factory; default the global `indexedDB`. */
  readonly indexedDB?: IDBFactory;
  /** The model whose blobs this instance holds; omitted: the unscoped database (older layout). */
  readonly modelFingerprint?: string;
}

export class IdbCachePersistence implements CachePersistencePort {
  readonly name: string;
  private readonly db: Db;

  private constructor(
    db: Db,
    name: string,
    private readonly base: string,
    private readonly factory: IDBFactory,
    readonly modelFingerprint: string | null,
  ) {
    this.db = db;
    this.name = name;
  }

  /** Open (and create or upgrade) the database. */
  static async open(options: IdbCachePersistenceOptions = {}): Promise<IdbCachePersistence> {
    const name = options.name ?? DEFAULT_IDB_NAME;
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (factory === undefined) {
      throw new InternalError('IndexedDB is not available in this environment', { reason: 'no-indexeddb' });
    }
    const fp = options.modelFingerprint === undefined ? null : validateFingerprint(options.modelFingerprint);
    const scoped = fp === null ? name : `${name}:${fp}`;
    const persistence = new IdbCachePersistence(await openDatabase(factory, scoped), scoped, name, factory, fp);
    await persistence.adoptLegacy();
    return persistence;
  }

  /** The same storage scoped to another model (to list or delete its blobs). Close it after use. */
  forModel(modelFingerprint: string): Promise<IdbCachePersistence> {
    return IdbCachePersistence.open({ name: this.base, indexedDB: this.factory, modelFingerprint });
  }

  /** Every stored agent of every model: the unscoped database and each model's. */
  async listAllCachedAgents(): Promise<CachedAgentRecord[]> {
    const names = await this.databaseNames();
    const all: CachedAgentRecord[] = [];
    for (const dbName of names) {
      if (dbName === this.name) {
        all.push(...(await this.listCachedAgents()));
        continue;
      }
      const fp = dbName === this.base ? undefined : dbName.slice(this.base.length + 1);
      const other = await IdbCachePersistence.open({ name: this.base, indexedDB: this.factory, ...(fp ? { modelFingerprint: fp } : {}) });
      try {
        all.push(...(await other.listCachedAgents()));
      } finally {
        other.close();
      }
    }
    return all;
  }

  /** Names of this family's databases that exist (opening one that does not would create it). */
  private async databaseNames(): Promise<string[]> {
    const listed = typeof this.factory.databases === 'function' ? await this.factory.databases() : [];
    const names = listed.map((d) => d.name ?? '').filter((n) => n === this.base || (n.startsWith(`${this.base}:`) && isFingerprint(n.slice(this.base.length + 1))));
    return names.includes(this.name) ? names : [...names, this.name];
  }

  /** Move this model's blobs out of the unscoped database: copy, then delete. */
  private async adoptLegacy(): Promise<void> {
    if (this.modelFingerprint === null || !(await this.databaseNames()).includes(this.base)) return;
    const legacy = await IdbCachePersistence.open({ name: this.base, indexedDB: this.factory });
    try {
      for (const record of await legacy.listCachedAgents()) {
        if (record.modelFingerprint !== this.modelFingerprint) continue;
        const bytes = await legacy.load(record.agentId);
        if (bytes !== null && !(await this.exists(record.agentId))) await this.save(record.agentId, bytes, record);
        await legacy.delete(record.agentId);
      }
    } finally {
      legacy.close();
    }
  }

  async save(agentId: string, blob: Uint8Array, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void> {
    const id = validateAgentId(agentId);
    this.checkScope(id, record);
    const stored = toStoredAgent(id, blob.byteLength, record);
    const value: StoredBlob = { agentId: id, bytes: ownBuffer(blob) };
    await this.transact({ agentId: id, bytes: blob.byteLength }, async (tx, track) => {
      // Both puts are issued before anything is awaited; tx.done decides for the pair.
      // The get runs before the puts (requests run in order): it sees the segments to drop.
      const old = track(tx.objectStore(AGENTS).get(id));
      void track(tx.objectStore(BLOBS).put(value));
      void track(tx.objectStore(AGENTS).put(stored));
      dropSegments(tx, track, id, await old, 1);
    });
  }

  /** Extend the stored blob with a segment, in one transaction (see the header). */
  async appendSegment(agentId: string, segment: StoredSegment, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void> {
    const id = validateAgentId(agentId);
    this.checkScope(id, record);
    const checked = toStoredAgent(id, 0, record);
    await this.transact({ agentId: id, bytes: segment.bytes.byteLength }, async (tx, track) => {
      const old = await track(tx.objectStore(AGENTS).get(id));
      const hasBlob = (await track(tx.objectStore(BLOBS).getKey(id))) !== undefined;
      if (old === undefined || !isStoredAgent(old) || !hasBlob) throw new InvalidRequestError(`agent ${id} has no stored blob to append to`, { agentId: id, start: segment.start });
      const baseTokens = old.baseTokens ?? old.tokenCount;
      const baseBytes = old.baseBytes ?? old.bytes;
      const kept = segmentsOf(old).filter((x) => x.start < segment.start);
      const covered = kept.at(-1)?.end ?? baseTokens;
      if (!Number.isSafeInteger(segment.start) || segment.start <= 0 || segment.start > covered || record.tokenCount <= segment.start) {
        throw new InvalidRequestError(`a segment at ${segment.start} does not extend the ${covered} stored tokens of agent ${id}`, { agentId: id, start: segment.start, stored: covered });
      }
      const segments: StoredSegmentInfo[] = [...kept, { start: segment.start, end: record.tokenCount, bytes: segment.bytes.byteLength }];
      const bytes = baseBytes + segments.reduce((n, x) => n + x.bytes, 0);
      dropSegments(tx, track, id, old, segment.start);
      void track(tx.objectStore(BLOBS).put({ agentId: segmentKey(id, segment.start), bytes: ownBuffer(segment.bytes) }));
      void track(tx.objectStore(AGENTS).put({ ...checked, bytes, baseTokens, baseBytes, segments }));
    });
  }

  /** The blob (at 0) and the segments its record lists, read in one transaction; null when absent. */
  async loadSegments(agentId: string): Promise<StoredSegment[] | null> {
    const id = validateAgentId(agentId);
    return this.read(id, async () => {
      const tx = this.db.transaction([BLOBS, AGENTS], 'readonly');
      const [base, record] = await Promise.all([tx.objectStore(BLOBS).get(id), tx.objectStore(AGENTS).get(id)]);
      const listed = record !== undefined && isStoredAgent(record) ? segmentsOf(record) : [];
      const rows = await Promise.all(listed.map((x) => tx.objectStore(BLOBS).get(segmentKey(id, x.start))));
      await tx.done;
      if (base === undefined) return null;
      const out: StoredSegment[] = [{ start: 0, bytes: await blobBytes(base, id) }];
      for (const [i, row] of rows.entries()) {
        if (row === undefined) break;
        out.push({ start: listed[i].start, bytes: await blobBytes(row, id) });
      }
      return out;
    });
  }

  async load(agentId: string): Promise<Uint8Array | null> {
    const id = validateAgentId(agentId);
    const value = await this.read(id, () => this.db.get(BLOBS, id));
    return value === undefined ? null : blobBytes(value, id);
  }

  /** A key lookup: the blob itself is not read. */
  async exists(agentId: string): Promise<boolean> {
    const id = validateAgentId(agentId);
    return (await this.read(id, () => this.db.getKey(BLOBS, id))) !== undefined;
  }

  async delete(agentId: string): Promise<boolean> {
    const id = validateAgentId(agentId);
    return this.transact({ agentId: id, bytes: 0 }, async (tx, track) => {
      const [blobKey, old] = await Promise.all([track(tx.objectStore(BLOBS).getKey(id)), track(tx.objectStore(AGENTS).get(id))]);
      const agentKey = old === undefined ? undefined : id;
      dropSegments(tx, track, id, old, 1);
      void track(tx.objectStore(BLOBS).delete(id));
      void track(tx.objectStore(AGENTS).delete(id));
      return blobKey !== undefined || agentKey !== undefined;
    });
  }

  /** Every record, tier 'cold'. Records that do not have our shape are skipped, not fatal. */
  async listCachedAgents(): Promise<CachedAgentRecord[]> {
    const all = await this.read(undefined, () => this.db.getAll(AGENTS));
    return all.filter(isStoredAgent).map(asRecord);
  }

  /** Up to `limit` records, least recently used first: the store's eviction candidates. */
  async oldestAgents(limit: number): Promise<CachedAgentRecord[]> {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new InvalidRequestError('limit must be a non-negative integer', { limit });
    }
    // IndexedDB reads a count of 0 as "no limit".
    if (limit === 0) return [];
    const rows = await this.read(undefined, () => this.db.getAllFromIndex(AGENTS, BY_LAST_USED, undefined, limit));
    return rows.filter(isStoredAgent).map(asRecord);
  }

  close(): void {
    this.db.close();
  }

  /** A scoped instance holds one model's blobs only. */
  private checkScope(id: string, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): void {
    if (this.modelFingerprint !== null && record.modelFingerprint !== this.modelFingerprint) {
      throw new InvalidRequestError(`a blob of model ${record.modelFingerprint} cannot be saved in the scope of model ${this.modelFingerprint}`, {
        agentId: id,
        modelFingerprint: record.modelFingerprint,
        scope: this.modelFingerprint,
      });
    }
  }

  /**
   * Run a readwrite transaction over both stores. Every request promise goes through `track`
   * so none is left unobserved; on any failure the transaction is aborted (a put that throws
   * synchronously does not abort it by itself, and the other store's put would then commit).
   */
  private async transact<T>(details: { agentId: string; bytes: number }, body: (tx: WriteTx, track: Track) => Promise<T>): Promise<T> {
    let tx: WriteTx;
    try {
      tx = this.db.transaction([BLOBS, AGENTS], 'readwrite', { durability: 'strict' });
    } catch (error) {
      throw toPersistenceError([error], details);
    }
    const pending: Promise<unknown>[] = [tx.done];
    const track: Track = (promise) => {
      pending.push(promise);
      return promise;
    };
    try {
      const result = await body(tx, track);
      await Promise.all(pending);
      return result;
    } catch (error) {
      abortQuietly(tx);
      const settled = await Promise.allSettled(pending);
      const reasons = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
      throw toPersistenceError([error, tx.error, ...reasons], details);
    }
  }

  private async read<T>(agentId: string | undefined, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
      throw toPersistenceError([error], { agentId, bytes: 0 });
    }
  }
}

function openDatabase(factory: IDBFactory, name: string): Promise<Db> {
  return new Promise<Db>((resolve, reject) => {
    let request: IDBOpenDBRequest;
    try {
      request = factory.open(name, IDB_SCHEMA_VERSION);
    } catch (error) {
      reject(openError(error, name));
      return;
    }
    request.addEventListener('upgradeneeded', (event) => {
      upgrade(wrap(request.result) as unknown as Db, event.oldVersion);
    });
    request.addEventListener('success', () => {
      const db = request.result;
      // Another tab wants a newer schema: step aside, or its open would block forever.
      db.addEventListener('versionchange', () => db.close());
      resolve(wrap(db) as unknown as Db);
    });
    request.addEventListener('error', () => reject(openError(request.error, name)));
  });
}

/** Schema migrations, one step per version; a fresh database runs them all. */
function upgrade(db: Db, oldVersion: number): void {
  if (oldVersion < 1) {
    db.createObjectStore(BLOBS, { keyPath: 'agentId' });
    const agents = db.createObjectStore(AGENTS, { keyPath: 'agentId' });
    agents.createIndex(BY_LAST_USED, 'lastUsed');
  }
}

/** Key of an appended segment in the blobs store; zero-padded so keys sort by start. */
function segmentKey(agentId: string, start: number): string {
  return `${agentId}~${String(start).padStart(12, '0')}`;
}

/** Delete the segments a record lists from `start` on, inside the caller's transaction. */
function dropSegments(tx: WriteTx, track: Track, agentId: string, record: unknown, start: number): void {
  if (record === undefined || !isStoredAgent(record)) return;
  for (const x of segmentsOf(record)) if (x.start >= start) void track(tx.objectStore(BLOBS).delete(segmentKey(agentId, x.start)));
}

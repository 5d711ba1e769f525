/**
 * The cold tier in the browser: one safetensors blob per agent in IndexedDB, through `idb`.
 *
 * Schema (version 1):
 *   blobs   key agentId -> { agentId, bytes: ArrayBuffer }      the blob, opaque here
 *   agents  key agentId -> CachedAgentRecord (tier 'cold')       index `lastUsed`
 * A blob and its record are written and deleted in one readwrite transaction over both stores,
 * so a crash or a closed tab leaves the old pair or the new pair, never a torn pair.
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
import {
  CacheCorruptError,
  InternalError,
  InvalidRequestError,
  QuotaExceededError,
  SemanticError,
  type ErrorDetails,
} from '../../domain/errors.ts';
import { isFingerprint, validateAgentId, validateCacheRecord, validateFingerprint } from '../../domain/values.ts';
import type { CachePersistencePort, CachedAgentRecord } from '../../ports/outbound.ts';

export const DEFAULT_IDB_NAME = 'semantic-kv';
export const IDB_SCHEMA_VERSION = 1;

const BLOBS = 'blobs';
const AGENTS = 'agents';
const BY_LAST_USED = 'lastUsed';

interface StoredBlob {
  readonly agentId: string;
  readonly bytes: ArrayBuffer;
}

type StoredAgent = CachedAgentRecord & { readonly tier: 'cold' };

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
    if (this.modelFingerprint !== null && record.modelFingerprint !== this.modelFingerprint) {
      throw new InvalidRequestError(`a blob of model ${record.modelFingerprint} cannot be saved in the scope of model ${this.modelFingerprint}`, {
        agentId: id,
        modelFingerprint: record.modelFingerprint,
        scope: this.modelFingerprint,
      });
    }
    const stored = toStoredAgent(id, blob.byteLength, record);
    const value: StoredBlob = { agentId: id, bytes: ownBuffer(blob) };
    await this.transact({ agentId: id, bytes: blob.byteLength }, async (tx, track) => {
      // Both puts are issued before anything is awaited; tx.done decides for the pair.
      void track(tx.objectStore(BLOBS).put(value));
      void track(tx.objectStore(AGENTS).put(stored));
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
      const [blobKey, agentKey] = await Promise.all([
        track(tx.objectStore(BLOBS).getKey(id)),
        track(tx.objectStore(AGENTS).getKey(id)),
      ]);
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

function openError(error: unknown, name: string): SemanticError {
  const errorName = nameOf(error);
  // VersionError: the database was created by a newer build of the runtime.
  const message = errorName === 'VersionError'
    ? `IndexedDB "${name}" has a newer schema than version ${IDB_SCHEMA_VERSION}`
    : `cannot open IndexedDB "${name}"`;
  return new InternalError(message, { database: name, originalName: errorName ?? null }, { cause: error });
}

function toStoredAgent(agentId: string, bytes: number, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): StoredAgent {
  validateCacheRecord(agentId, record);
  const { modelFingerprint, tokenCount, lastUsed } = record;
  return { agentId, modelFingerprint, tokenCount, bytes, lastUsed, tier: 'cold' };
}

/** A buffer holding exactly the blob; a view into a larger buffer would store all of it. */
function ownBuffer(blob: Uint8Array): ArrayBuffer {
  const { buffer } = blob;
  if (buffer instanceof ArrayBuffer && blob.byteOffset === 0 && blob.byteLength === buffer.byteLength) return buffer;
  return blob.slice().buffer;
}

function isArrayBuffer(value: unknown): value is ArrayBuffer {
  // A tag test, so buffers from another realm pass.
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

/** Values come back from storage that other code may have written: check before trusting. */
async function blobBytes(value: unknown, agentId: string): Promise<Uint8Array> {
  const bytes: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, 'bytes') : undefined;
  if (isArrayBuffer(bytes)) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (typeof Blob !== 'undefined' && bytes instanceof Blob) return new Uint8Array(await bytes.arrayBuffer());
  throw new CacheCorruptError(`IndexedDB entry of agent ${agentId} holds no bytes`, { reason: 'invalid-record', agentId });
}

function isStoredAgent(value: unknown): value is StoredAgent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof StoredAgent, unknown>>;
  return (
    typeof v.agentId === 'string' &&
    typeof v.modelFingerprint === 'string' &&
    Number.isSafeInteger(v.tokenCount) &&
    Number.isSafeInteger(v.bytes) &&
    typeof v.lastUsed === 'number'
  );
}

function asRecord(stored: StoredAgent): CachedAgentRecord {
  const { agentId, modelFingerprint, tokenCount, bytes, lastUsed } = stored;
  return { agentId, modelFingerprint, tokenCount, bytes, lastUsed, tier: 'cold' };
}

function abortQuietly(tx: WriteTx): void {
  try {
    tx.abort();
  } catch {
    // Already committed or aborted: nothing left to undo.
  }
}

function nameOf(error: unknown): string | undefined {
  const name: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'name') : undefined;
  return typeof name === 'string' ? name : undefined;
}

// Firefox before the standard name used its own.
const QUOTA_NAMES: ReadonlySet<string> = new Set(['QuotaExceededError', 'NS_ERROR_DOM_QUOTA_REACHED']);

/**
 * The most telling of the errors a failed operation produced: quota wins wherever it surfaced
 * (the put, the request, or the transaction's error at commit); then our own typed errors; the
 * rest is an InternalError that keeps the DOMException's name.
 */
function toPersistenceError(candidates: readonly unknown[], details: { agentId: string | undefined; bytes: number }): SemanticError {
  const quota = candidates.find((e) => QUOTA_NAMES.has(nameOf(e) ?? ''));
  if (quota !== undefined) {
    return new QuotaExceededError(`storage quota exceeded writing ${details.bytes} bytes for agent ${details.agentId ?? '?'}`, details, {
      cause: quota,
    });
  }
  const first = candidates.find((e) => e !== null && e !== undefined);
  if (first instanceof SemanticError) return first;
  const info: ErrorDetails = { ...details, originalName: nameOf(first) ?? null };
  return new InternalError(`IndexedDB operation failed: ${String(first)}`, info, { cause: first });
}

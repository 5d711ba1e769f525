/**
 * The cold tier in Node: one folder, per agent `<agentId>.safetensors` (the same bytes as in
 * IndexedDB) and `<agentId>.json` (its CachedAgentRecord). Agent ids are validated, so they are
 * safe file names.
 *
 * Scopes. Blobs are keyed by agent and model: an instance opened with `modelFingerprint` keeps
 * its files in `<dir>/<fingerprint>/`, so agents of two models live side by side and a model
 * switch never overwrites the other model's memory. `forModel` gives the same folder scoped to
 * another model (to list or delete its blobs); `listAllCachedAgents` spans every scope. Opening
 * a scope moves legacy blobs of that model from the root (older layout) into it, blob first.
 *
 * Crash safety. Every file is written to `<file>.tmp-<random>`, flushed, then renamed over its
 * target (rename is atomic on POSIX). The blob is the source of truth and is renamed first;
 * the record is renamed after it. The record carries the identity (size, mtime in ns, inode) of
 * the blob file it describes, which rename keeps, so a record left behind by a crash between
 * the two renames, or one with no blob at all, is recognised as stale: the listing then derives
 * the record from the blob's own metadata instead of trusting it. Leftover temp files are
 * ignored by every read and removed by `cleanup()` (run by `open`).
 *
 * Segments. `appendSegment` extends the blob with segment files and a manifest (fs-segments.ts);
 * the manifest names the blob's identity, so a later `save` supersedes it atomically.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CacheCorruptError, InvalidRequestError, ModelMismatchError } from '../../domain/errors.ts';
import { isFingerprint, validateAgentId, validateCacheRecord, validateFingerprint } from '../../domain/values.ts';
import type { CachePersistencePort, CachedAgentRecord, StoredSegment } from '../../ports/outbound.ts';
import { readAgentBlobMeta } from '../safetensors/agent-blob.ts';
import {
  blobIdentity,
  codeOf,
  fsError,
  identityOf,
  MISSING_CODES,
  ownBytes,
  readRecordFile,
  removeFile,
  removeOrphanRecord,
  sameIdentity,
  syncDir,
  tempPath,
  type BlobIdentity,
  type RecordFile,
} from './fs-files.ts';
import { appendSegmentFiles, cleanupSegments, fileHeaderDigest, headerDigest, readManifest, readSegmentFiles, removeSegments, type BaseInfo } from './fs-segments.ts';

const BLOB_EXT = '.safetensors';
const RECORD_EXT = '.json';
// Only our own temp names: cleanup must never touch other files someone keeps in the folder.
const TEMP_SUFFIX = /\.(safetensors|json|kvseg|kvman)\.tmp-[0-9a-f]{16}$/;
const DEFAULT_STALE_TEMP_MS = 60_000;

export interface FsCachePersistenceOptions {
  readonly dir: string;
  /** The model whose blobs this instance holds; omitted: the root folder (older layout). */
  readonly modelFingerprint?: string;
  /**
   * `cleanup` removes temp files older than this. Another process may be writing into the same
   * folder, so a fresh temp file may be a save in progress. Default 60 s.
   */
  readonly staleTempMs?: number;
}

type SaveRecord = Omit<CachedAgentRecord, 'tier' | 'bytes'>;

export class FsCachePersistence implements CachePersistencePort {
  /** The folder this instance's files live in (the scope's, under `root`). */
  readonly dir: string;
  readonly root: string;
  readonly modelFingerprint: string | null;
  private readonly staleTempMs: number;
  /** Saves and deletes of one agent run one after another, so their renames never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Temp files of this instance's saves in progress; cleanup leaves them alone. */
  private readonly inFlight = new Set<string>();

  constructor(options: FsCachePersistenceOptions) {
    this.root = resolve(options.dir);
    this.modelFingerprint = options.modelFingerprint === undefined ? null : validateFingerprint(options.modelFingerprint);
    this.dir = this.modelFingerprint === null ? this.root : join(this.root, this.modelFingerprint);
    this.staleTempMs = options.staleTempMs ?? DEFAULT_STALE_TEMP_MS;
  }

  /** Create the folder if needed and clean up after earlier crashes. */
  static async open(options: FsCachePersistenceOptions): Promise<FsCachePersistence> {
    const persistence = new FsCachePersistence(options);
    await mkdir(persistence.dir, { recursive: true }).catch((error: unknown) => {
      throw fsError(error, 'create the cache folder', undefined, 0);
    });
    await persistence.cleanup();
    await persistence.adoptLegacy();
    return persistence;
  }

  /** The same folder, scoped to another model (list or delete that model's blobs). */
  async forModel(modelFingerprint: string): Promise<FsCachePersistence> {
    return this.scope(modelFingerprint);
  }

  private scope(modelFingerprint: string): FsCachePersistence {
    return new FsCachePersistence({ dir: this.root, modelFingerprint, staleTempMs: this.staleTempMs });
  }

  /** Every stored agent of every model: the root (older layout) and each model's folder. */
  async listAllCachedAgents(): Promise<CachedAgentRecord[]> {
    const root = this.modelFingerprint === null ? this : new FsCachePersistence({ dir: this.root });
    const scopes = (await readdir(this.root, { withFileTypes: true }).catch(() => []))
      .filter((e) => e.isDirectory() && isFingerprint(e.name))
      .map((e) => this.scope(e.name));
    const lists = await Promise.all([root, ...scopes].map((p) => p.listCachedAgents()));
    return lists.flat();
  }

  /**
   * Blobs of this model still at the root (written before scopes existed) move into the scope:
   * the blob is renamed first, then its record; a crash between leaves an orphan root record,
   * which `cleanup` removes.
   */
  private async adoptLegacy(): Promise<void> {
    if (this.modelFingerprint === null) return;
    const legacy = new FsCachePersistence({ dir: this.root });
    for (const record of await legacy.listCachedAgents()) {
      if (record.modelFingerprint !== this.modelFingerprint || (await this.exists(record.agentId))) continue;
      await mkdir(this.dir, { recursive: true });
      await rename(legacy.blobPath(record.agentId), this.blobPath(record.agentId)).catch(() => undefined);
      await rename(legacy.recordPath(record.agentId), this.recordPath(record.agentId)).catch(() => undefined);
    }
    await syncDir(this.dir);
  }

  async save(agentId: string, blob: Uint8Array, record: SaveRecord): Promise<void> {
    const id = validateAgentId(agentId);
    checkRecord(id, record);
    checkScope(this.modelFingerprint, record);
    await this.exclusive(id, async () => {
      await this.writePair(id, blob, record);
      // The new blob already made any manifest stale; its segments are garbage now.
      await removeSegments(this.dir, id);
    });
  }

  /** Extend the stored blob with a segment (see fs-segments.ts); the manifest rename commits. */
  async appendSegment(agentId: string, segment: StoredSegment, record: SaveRecord): Promise<void> {
    const id = validateAgentId(agentId);
    checkRecord(id, record);
    checkScope(this.modelFingerprint, record);
    await this.exclusive(id, async () => {
      const blob = await this.statBlob(id);
      const digest = blob === null ? null : await fileHeaderDigest(this.blobPath(id));
      if (blob === null || digest === null) throw new InvalidRequestError(`agent ${id} has no stored blob to append to`, { agentId: id, start: segment.start });
      const base: BaseInfo = { digest, bytes: Number(blob.size), tokens: () => this.baseTokens(id, blob) };
      await appendSegmentFiles(this.dir, id, segment, record, base, this.inFlight);
    });
  }

  /** The blob (at 0) and the segments its manifest names, or null when nothing is stored. */
  async loadSegments(agentId: string): Promise<StoredSegment[] | null> {
    const id = validateAgentId(agentId);
    return this.exclusive(id, async () => {
      const blob = await this.statBlob(id);
      const bytes = blob === null ? null : await this.load(id);
      if (blob === null || bytes === null) return null;
      const manifest = await readManifest(this.dir, id, headerDigest(bytes));
      return [{ start: 0, bytes }, ...(await readSegmentFiles(this.dir, manifest))];
    });
  }

  /** Tokens of the blob: its record's count when the record describes it, else its metadata's. */
  private async baseTokens(id: string, identity: BlobIdentity): Promise<number> {
    const stored = await readRecordFile(this.recordPath(id));
    if (stored !== null && stored.agentId === id && sameIdentity(stored.blob, identity)) return stored.tokenCount;
    const bytes = await this.load(id);
    return bytes === null ? 0 : readAgentBlobMeta(bytes).tokens;
  }

  async load(agentId: string): Promise<Uint8Array | null> {
    const id = validateAgentId(agentId);
    try {
      return ownBytes(await readFile(this.blobPath(id)));
    } catch (error) {
      if (MISSING_CODES.has(codeOf(error) ?? '')) return null;
      throw fsError(error, 'read the blob', id, 0);
    }
  }

  async exists(agentId: string): Promise<boolean> {
    const id = validateAgentId(agentId);
    return (await this.statBlob(id)) !== null;
  }

  /** Blob first: once it is gone the agent is gone, whatever happens to the record. */
  async delete(agentId: string): Promise<boolean> {
    const id = validateAgentId(agentId);
    return this.exclusive(id, async () => {
      const blobExisted = await removeFile(this.blobPath(id), id);
      const recordExisted = await removeFile(this.recordPath(id), id);
      await removeSegments(this.dir, id);
      return blobExisted || recordExisted;
    });
  }

  /** One record per blob, tier 'cold'; blobs that are neither recorded nor readable are skipped. */
  async listCachedAgents(): Promise<CachedAgentRecord[]> {
    const ids = (await this.names())
      .filter((name) => name.endsWith(BLOB_EXT))
      .map((name) => name.slice(0, -BLOB_EXT.length))
      .filter(isAgentId);
    const records = await Promise.all(ids.map((id) => this.recordOf(id)));
    return records.filter((r): r is CachedAgentRecord => r !== null);
  }

  /** Up to `limit` records, least recently used first: the store's eviction candidates. */
  async oldestAgents(limit: number): Promise<CachedAgentRecord[]> {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new InvalidRequestError('limit must be a non-negative integer', { limit });
    }
    const all = await this.listCachedAgents();
    all.sort((a, b) => a.lastUsed - b.lastUsed || (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
    return all.slice(0, limit);
  }

  /** Remove stale temp files, and records of ours whose blob is gone (a crash during `delete`). */
  async cleanup(): Promise<void> {
    const names = await this.names();
    const present = new Set(names);
    await Promise.all(
      names.map(async (name) => {
        if (TEMP_SUFFIX.test(name)) await this.removeStaleTemp(join(this.dir, name));
        else if (name.endsWith(RECORD_EXT) && !present.has(`${name.slice(0, -RECORD_EXT.length)}${BLOB_EXT}`)) {
          await removeOrphanRecord(join(this.dir, name), name.slice(0, -RECORD_EXT.length));
        }
      }),
    );
    const digest = async (id: string): Promise<string | null> => (isAgentId(id) ? fileHeaderDigest(this.blobPath(id)) : null);
    await cleanupSegments(this.dir, await this.names(), digest, this.staleTempMs, this.inFlight);
  }

  private async removeStaleTemp(path: string): Promise<void> {
    if (this.inFlight.has(path)) return;
    const info = await stat(path).catch(() => null);
    if (info !== null && Date.now() - info.mtimeMs >= this.staleTempMs) await rm(path, { force: true });
  }

  protected blobPath(id: string): string {
    return join(this.dir, `${id}${BLOB_EXT}`);
  }

  protected recordPath(id: string): string {
    return join(this.dir, `${id}${RECORD_EXT}`);
  }

  private async names(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (error) {
      if (MISSING_CODES.has(codeOf(error) ?? '')) return [];
      throw fsError(error, 'list the cache folder', undefined, 0);
    }
  }

  /**
   * The commit point is the blob's rename. A failure before it leaves the old pair; a failure
   * renaming the record after it leaves a stale record that listing recognises and bypasses,
   * so it is not reported as a failed save.
   */
  private async writePair(id: string, blob: Uint8Array, record: SaveRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true }).catch((error: unknown) => {
      throw fsError(error, 'create the cache folder', id, blob.byteLength);
    });
    const blobTemp = tempPath(this.blobPath(id));
    const recordTemp = tempPath(this.recordPath(id));
    this.inFlight.add(blobTemp).add(recordTemp);
    try {
      await this.commitBlob(id, blob, record, blobTemp, recordTemp);
      try {
        await rename(recordTemp, this.recordPath(id));
      } catch {
        await rm(recordTemp, { force: true }).catch(() => undefined);
      }
    } finally {
      this.inFlight.delete(blobTemp);
      this.inFlight.delete(recordTemp);
    }
    await syncDir(this.dir);
  }

  /** Write both temp files, then rename the blob into place; on failure remove both temps. */
  private async commitBlob(id: string, blob: Uint8Array, record: SaveRecord, blobTemp: string, recordTemp: string): Promise<void> {
    try {
      await writeFile(blobTemp, blob, { flush: true });
      const identity = await blobIdentity(blobTemp);
      const file: RecordFile = { ...pickRecord(record), agentId: id, bytes: blob.byteLength, blob: identity };
      await writeFile(recordTemp, JSON.stringify(file), { flush: true });
      await rename(blobTemp, this.blobPath(id));
    } catch (error) {
      await Promise.all([rm(blobTemp, { force: true }), rm(recordTemp, { force: true })]).catch(() => undefined);
      throw fsError(error, 'save the blob', id, blob.byteLength);
    }
  }

  private async statBlob(id: string): Promise<BlobIdentity & { readonly mtimeMs: number } | null> {
    try {
      const info = await stat(this.blobPath(id), { bigint: true });
      return { ...identityOf(info), mtimeMs: Number(info.mtimeMs) };
    } catch (error) {
      if (MISSING_CODES.has(codeOf(error) ?? '')) return null;
      throw fsError(error, 'inspect the blob', id, 0);
    }
  }

  /** The stored record if it describes the blob on disk; else one derived from the blob. */
  private async recordOf(id: string): Promise<CachedAgentRecord | null> {
    const blob = await this.statBlob(id);
    if (blob === null) return null;
    const manifest = await readManifest(this.dir, id, await fileHeaderDigest(this.blobPath(id)));
    if (manifest !== null) {
      const bytes = manifest.baseBytes + manifest.segments.reduce((n, s) => n + s.bytes, 0);
      return { agentId: id, modelFingerprint: manifest.modelFingerprint, tokenCount: manifest.tokenCount, bytes, lastUsed: manifest.lastUsed, tier: 'cold' };
    }
    const stored = await readRecordFile(this.recordPath(id));
    if (stored !== null && stored.agentId === id && sameIdentity(stored.blob, blob)) {
      const { modelFingerprint, tokenCount, bytes, lastUsed } = stored;
      return { agentId: id, modelFingerprint, tokenCount, bytes, lastUsed, tier: 'cold' };
    }
    return this.deriveRecord(id, blob.mtimeMs);
  }

  private async deriveRecord(id: string, mtimeMs: number): Promise<CachedAgentRecord | null> {
    const bytes = await this.load(id);
    if (bytes === null) return null;
    try {
      const meta = readAgentBlobMeta(bytes);
      return { agentId: id, modelFingerprint: meta.modelFingerprint, tokenCount: meta.tokens, bytes: bytes.byteLength, lastUsed: mtimeMs, tier: 'cold' };
    } catch (error) {
      // Not a blob we can read: no truthful record exists, and loading it would fail the same way.
      if (error instanceof CacheCorruptError || error instanceof ModelMismatchError) return null;
      throw error;
    }
  }

  private async exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }
}

function checkRecord(agentId: string, record: SaveRecord): void {
  validateCacheRecord(agentId, record);
}

/** A scoped instance holds one model's blobs only. */
export function checkScope(scope: string | null, record: SaveRecord): void {
  if (scope !== null && record.modelFingerprint !== scope) {
    throw new InvalidRequestError(`a blob of model ${record.modelFingerprint} cannot be saved in the scope of model ${scope}`, {
      agentId: record.agentId,
      modelFingerprint: record.modelFingerprint,
      scope,
    });
  }
}

function pickRecord(record: SaveRecord): Pick<RecordFile, 'modelFingerprint' | 'tokenCount' | 'lastUsed'> {
  const { modelFingerprint, tokenCount, lastUsed } = record;
  return { modelFingerprint, tokenCount, lastUsed };
}

function isAgentId(id: string): boolean {
  try {
    validateAgentId(id);
    return true;
  } catch {
    return false;
  }
}


/** Values and errors of the IndexedDB cache (idb-cache-persistence.ts): checked, never trusted. */
import { CacheCorruptError, InternalError, QuotaExceededError, SemanticError, type ErrorDetails } from '../../domain/errors.ts';
import { validateCacheRecord } from '../../domain/values.ts';
import type { CachedAgentRecord } from '../../ports/outbound.ts';

export const IDB_SCHEMA_VERSION = 1;

/** One appended segment as the agent's record lists it (its bytes live in the blobs store). */
export interface StoredSegmentInfo {
  readonly start: number;
  /** The agent's token count when the segment was appended: the end of what it holds. */
  readonly end: number;
  readonly bytes: number;
}

export type StoredAgent = CachedAgentRecord & {
  readonly tier: 'cold';
  /** Present once segments were appended: the base's tokens and bytes, then each segment. */
  readonly baseTokens?: number;
  readonly baseBytes?: number;
  readonly segments?: readonly StoredSegmentInfo[];
};

/** The segments a stored record lists, when well formed; anything else reads as none. */
export function segmentsOf(value: StoredAgent): readonly StoredSegmentInfo[] {
  const segs: unknown = value.segments;
  if (!Array.isArray(segs)) return [];
  const ok = segs.every((x: unknown) => {
    if (typeof x !== 'object' || x === null) return false;
    const v = x as Partial<Record<keyof StoredSegmentInfo, unknown>>;
    return Number.isSafeInteger(v.start) && Number.isSafeInteger(v.end) && Number.isSafeInteger(v.bytes);
  });
  return ok ? (segs as StoredSegmentInfo[]) : [];
}

export function openError(error: unknown, name: string): SemanticError {
  const errorName = nameOf(error);
  // VersionError: the database was created by a newer build of the runtime.
  const message = errorName === 'VersionError'
    ? `IndexedDB "${name}" has a newer schema than version ${IDB_SCHEMA_VERSION}`
    : `cannot open IndexedDB "${name}"`;
  return new InternalError(message, { database: name, originalName: errorName ?? null }, { cause: error });
}

export function toStoredAgent(agentId: string, bytes: number, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): StoredAgent {
  validateCacheRecord(agentId, record);
  const { modelFingerprint, tokenCount, lastUsed } = record;
  return { agentId, modelFingerprint, tokenCount, bytes, lastUsed, tier: 'cold' };
}

/** A buffer holding exactly the blob; a view into a larger buffer would store all of it. */
export function ownBuffer(blob: Uint8Array): ArrayBuffer {
  const { buffer } = blob;
  if (buffer instanceof ArrayBuffer && blob.byteOffset === 0 && blob.byteLength === buffer.byteLength) return buffer;
  return blob.slice().buffer;
}

export function isArrayBuffer(value: unknown): value is ArrayBuffer {
  // A tag test, so buffers from another realm pass.
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

/** Values come back from storage that other code may have written: check before trusting. */
export async function blobBytes(value: unknown, agentId: string): Promise<Uint8Array> {
  const bytes: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, 'bytes') : undefined;
  if (isArrayBuffer(bytes)) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (typeof Blob !== 'undefined' && bytes instanceof Blob) return new Uint8Array(await bytes.arrayBuffer());
  throw new CacheCorruptError(`IndexedDB entry of agent ${agentId} holds no bytes`, { reason: 'invalid-record', agentId });
}

export function isStoredAgent(value: unknown): value is StoredAgent {
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

export function asRecord(stored: StoredAgent): CachedAgentRecord {
  const { agentId, modelFingerprint, tokenCount, bytes, lastUsed } = stored;
  return { agentId, modelFingerprint, tokenCount, bytes, lastUsed, tier: 'cold' };
}

export function abortQuietly(tx: { abort(): void }): void {
  try {
    tx.abort();
  } catch {
    // Already committed or aborted: nothing left to undo.
  }
}

export function nameOf(error: unknown): string | undefined {
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
export function toPersistenceError(candidates: readonly unknown[], details: { agentId: string | undefined; bytes: number }): SemanticError {
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

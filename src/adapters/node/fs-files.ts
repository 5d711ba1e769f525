/**
 * File helpers of the folder cache (fs-cache-persistence.ts): temp names, blob identity, record
 * files, and the mapping of Node's errors to typed ones.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { InternalError, QuotaExceededError, SemanticError } from '../../domain/errors.ts';

const QUOTA_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);
export const MISSING_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR']);

/** Which blob file a record was written for; rename keeps all three. */
export interface BlobIdentity {
  readonly size: string;
  readonly mtimeNs: string;
  readonly ino: string;
}

export interface RecordFile {
  readonly agentId: string;
  readonly modelFingerprint: string;
  readonly tokenCount: number;
  readonly bytes: number;
  readonly lastUsed: number;
  readonly blob: BlobIdentity;
}

export function tempPath(path: string): string {
  return `${path}.tmp-${randomBytes(8).toString('hex')}`;
}

interface BigStats {
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
}

export function identityOf(info: BigStats): BlobIdentity {
  return { size: String(info.size), mtimeNs: String(info.mtimeNs), ino: String(info.ino) };
}

export async function blobIdentity(path: string): Promise<BlobIdentity> {
  return identityOf(await stat(path, { bigint: true }));
}

export function sameIdentity(a: BlobIdentity, b: BlobIdentity): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino;
}

/** A record file, or null when absent or not ours: a stale or foreign record is just bypassed. */
export async function readRecordFile(path: string): Promise<RecordFile | null> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
  return isRecordFile(value) ? value : null;
}

export function isRecordFile(value: unknown): value is RecordFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof RecordFile, unknown>>;
  const blob = v.blob as Partial<Record<keyof BlobIdentity, unknown>> | null | undefined;
  return (
    typeof v.agentId === 'string' &&
    typeof v.modelFingerprint === 'string' &&
    Number.isSafeInteger(v.tokenCount) &&
    Number.isSafeInteger(v.bytes) &&
    typeof v.lastUsed === 'number' &&
    typeof blob === 'object' &&
    blob !== null &&
    typeof blob.size === 'string' &&
    typeof blob.mtimeNs === 'string' &&
    typeof blob.ino === 'string'
  );
}

/** Only a file that is one of our records, for this very agent id, is ever removed. */
export async function removeOrphanRecord(path: string, id: string): Promise<void> {
  const record = await readRecordFile(path);
  if (record !== null && record.agentId === id) await rm(path, { force: true });
}

/** Node may hand back a slice of a shared pool; give callers a buffer of their own. */
export function ownBytes(buffer: Buffer): Uint8Array {
  return buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength
    ? new Uint8Array(buffer.buffer, 0, buffer.byteLength)
    : new Uint8Array(buffer);
}

export async function removeFile(path: string, agentId: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (error) {
    if (MISSING_CODES.has(codeOf(error) ?? '')) return false;
    throw fsError(error, 'delete', agentId, 0);
  }
}

/** Make the renames themselves durable; not every platform can fsync a folder, so best effort. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The data files were flushed; only the directory entry's durability is at stake.
  }
}

export function codeOf(error: unknown): string | undefined {
  const code: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
  return typeof code === 'string' ? code : undefined;
}

export function fsError(error: unknown, action: string, agentId: string | undefined, bytes: number): SemanticError {
  if (error instanceof SemanticError) return error;
  const code = codeOf(error);
  if (code !== undefined && QUOTA_CODES.has(code)) {
    return new QuotaExceededError(`no space left to ${action} (${bytes} bytes) for agent ${agentId ?? '?'}`, { agentId, bytes }, { cause: error });
  }
  return new InternalError(`cannot ${action}${agentId ? ` of agent ${agentId}` : ''}: ${String(error)}`, { agentId, code: code ?? null }, { cause: error });
}

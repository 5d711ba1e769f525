/**
 * Appended segments of the folder cache (fs-cache-persistence.ts). Per agent:
 *   `<id>.safetensors`         the base: segment 0, written whole by `save`
 *   `<id>~<start>-<hex>.kvseg` one appended segment (a whole agent blob of positions from start)
 *   `<id>.kvman`               the manifest: the segments that extend the base, in order
 * '~' never occurs in an agent id, and neither extension is a blob's or a record's, so no name
 * of one agent is another agent's.
 *
 * Crash safety. An append writes its segment to a temp file and renames it to its own new name,
 * then writes the manifest to a temp file and renames it over the old one: that rename is the
 * commit point. The manifest names the base it extends by a digest of the base's safetensors
 * header (size + CRC-32C of the header, which holds every tensor's checksum and the creation
 * time): a `save` renames a new base into place, which makes every older manifest stale at that
 * same instant, so a save never needs to touch the manifest to win. A digest, not the file's
 * inode, so that a copied or restored cache folder keeps its segments. Segment files no valid manifest names
 * (a crash before the commit, or dropped segments) are removed by `cleanup` once stale.
 */
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32cHex } from '../../domain/crc32c.ts';
import { InvalidRequestError } from '../../domain/errors.ts';
import type { CachedAgentRecord, StoredSegment } from '../../ports/outbound.ts';
import { codeOf, fsError, MISSING_CODES, ownBytes, syncDir, tempPath } from './fs-files.ts';

export const SEGMENT_EXT = '.kvseg';
export const MANIFEST_EXT = '.kvman';
const SEGMENT_NAME = /^(.+)~(\d+)-[0-9a-f]{16}\.kvseg$/;

interface ManifestSegment {
  readonly start: number;
  /** Tokens stored up to (the agent's count when it was appended). */
  readonly end: number;
  readonly file: string;
  readonly bytes: number;
}

export interface Manifest {
  readonly agentId: string;
  readonly modelFingerprint: string;
  /** headerDigest of the base blob this manifest extends. */
  readonly base: string;
  readonly baseTokens: number;
  readonly baseBytes: number;
  readonly tokenCount: number;
  readonly lastUsed: number;
  readonly segments: readonly ManifestSegment[];
}

/** What an append needs to know about the agent's base blob. */
export interface BaseInfo {
  readonly digest: string;
  readonly bytes: number;
  /** Its token count (from its record, or its own metadata). */
  tokens(): Promise<number>;
}

type SaveRecord = Omit<CachedAgentRecord, 'tier' | 'bytes'>;

export function manifestPath(dir: string, id: string): string {
  return join(dir, `${id}${MANIFEST_EXT}`);
}

/** Size and CRC-32C of a safetensors file's header; null when it has none (too short). */
export function headerDigest(bytes: Uint8Array): string | null {
  if (bytes.byteLength < 8) return null;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.byteLength - 8) return null;
  return `${bytes.byteLength}:${crc32cHex(bytes.subarray(0, 8 + n))}`;
}

/** headerDigest of a file, reading its header only; null when it is absent or has none. */
export async function fileHeaderDigest(path: string): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = (await handle.stat()).size;
    const head = new Uint8Array(8);
    await handle.read(head, 0, 8, 0);
    const n = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (size < 8 || n > size - 8) return null;
    const header = new Uint8Array(8 + n);
    await handle.read(header, 0, 8 + n, 0);
    return `${size}:${crc32cHex(header)}`;
  } finally {
    await handle.close();
  }
}

/** The manifest, when it extends this very base; a stale or foreign one is null. */
export async function readManifest(dir: string, id: string, base: string | null): Promise<Manifest | null> {
  if (base === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(await readFile(manifestPath(dir, id), 'utf8'));
  } catch {
    return null;
  }
  return isManifest(value) && value.agentId === id && value.base === base ? value : null;
}

/** Append one segment; `inFlight` holds the temp names cleanup must leave alone meanwhile. */
export async function appendSegmentFiles(dir: string, id: string, segment: StoredSegment, record: SaveRecord, base: BaseInfo, inFlight: Set<string>): Promise<void> {
  const old = await readManifest(dir, id, base.digest);
  const kept = (old?.segments ?? []).filter((s) => s.start < segment.start);
  const covered = kept.at(-1)?.end ?? (await base.tokens());
  if (!Number.isSafeInteger(segment.start) || segment.start <= 0 || segment.start > covered || record.tokenCount <= segment.start) {
    throw new InvalidRequestError(`a segment at ${segment.start} does not extend the ${covered} stored tokens of agent ${id}`, { agentId: id, start: segment.start, stored: covered });
  }
  const file = `${id}~${segment.start}-${randomBytes(8).toString('hex')}${SEGMENT_EXT}`;
  const entry: ManifestSegment = { start: segment.start, end: record.tokenCount, file, bytes: segment.bytes.byteLength };
  const segments = [...kept, entry];
  const manifest: Manifest = {
    agentId: id,
    modelFingerprint: record.modelFingerprint,
    base: base.digest,
    baseTokens: old?.baseTokens ?? (await base.tokens()),
    baseBytes: base.bytes,
    tokenCount: record.tokenCount,
    lastUsed: record.lastUsed,
    segments,
  };
  const segTemp = tempPath(join(dir, file));
  const manTemp = tempPath(manifestPath(dir, id));
  inFlight.add(segTemp).add(manTemp).add(join(dir, file));
  try {
    await commit(dir, id, segment.bytes, manifest, segTemp, manTemp, file);
  } finally {
    inFlight.delete(segTemp);
    inFlight.delete(manTemp);
    inFlight.delete(join(dir, file));
  }
  // Dropped segments are garbage once the new manifest is in place.
  const live = new Set(segments.map((s) => s.file));
  await Promise.all((old?.segments ?? []).filter((s) => !live.has(s.file)).map((s) => rm(join(dir, s.file), { force: true }).catch(() => undefined)));
}

async function commit(dir: string, id: string, bytes: Uint8Array, manifest: Manifest, segTemp: string, manTemp: string, file: string): Promise<void> {
  try {
    await writeFile(segTemp, bytes, { flush: true });
    await rename(segTemp, join(dir, file));
    await writeFile(manTemp, JSON.stringify(manifest), { flush: true });
    await syncDir(dir);
    await rename(manTemp, manifestPath(dir, id));
  } catch (error) {
    await Promise.all([rm(segTemp, { force: true }), rm(manTemp, { force: true }), rm(join(dir, file), { force: true })]).catch(() => undefined);
    throw fsError(error, 'append a segment', id, bytes.byteLength);
  }
  await syncDir(dir);
}

/** The segments after the base, in order; reading stops at a missing file (the rest is newer). */
export async function readSegmentFiles(dir: string, manifest: Manifest | null): Promise<StoredSegment[]> {
  const out: StoredSegment[] = [];
  for (const s of manifest?.segments ?? []) {
    try {
      out.push({ start: s.start, bytes: ownBytes(await readFile(join(dir, s.file))) });
    } catch (error) {
      if (MISSING_CODES.has(codeOf(error) ?? '')) break;
      throw fsError(error, 'read a segment', manifest?.agentId, 0);
    }
  }
  return out;
}

/**
 * Remove the agent's manifest and the segment files it names (after a whole save, or a delete);
 * the manifest is read, not the folder, so a save costs no directory listing. Files no manifest
 * names are `cleanup`'s.
 */
export async function removeSegments(dir: string, id: string): Promise<void> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(manifestPath(dir, id), 'utf8'));
  } catch {
    return;
  }
  const mine = isManifest(value) && value.agentId === id ? value.segments.map((s) => s.file) : [];
  await Promise.all(mine.map((n) => rm(join(dir, n), { force: true }).catch(() => undefined)));
  await rm(manifestPath(dir, id), { force: true }).catch(() => undefined);
}

/**
 * Segment files that no valid manifest names, once older than `staleMs` (another process may be
 * appending right now), and manifests whose base is gone.
 */
export async function cleanupSegments(dir: string, names: readonly string[], digestOf: (id: string) => Promise<string | null>, staleMs: number, inFlight: ReadonlySet<string>): Promise<void> {
  const live = new Map<string, Set<string>>();
  const liveFiles = async (id: string): Promise<Set<string>> => {
    const known = live.get(id);
    if (known) return known;
    const manifest = await readManifest(dir, id, await digestOf(id));
    const files = new Set((manifest?.segments ?? []).map((s) => s.file));
    live.set(id, files);
    return files;
  };
  for (const name of names) {
    const path = join(dir, name);
    if (inFlight.has(path)) continue;
    const id = SEGMENT_NAME.exec(name)?.[1];
    if (id !== undefined && !(await liveFiles(id)).has(name)) await removeIfStale(path, staleMs);
    if (name.endsWith(MANIFEST_EXT) && (await readManifest(dir, name.slice(0, -MANIFEST_EXT.length), await digestOf(name.slice(0, -MANIFEST_EXT.length)))) === null) await removeIfStale(path, staleMs);
  }
}

async function removeIfStale(path: string, staleMs: number): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (info !== null && Date.now() - info.mtimeMs >= staleMs) await rm(path, { force: true });
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof Manifest, unknown>>;
  const ints = [v.baseTokens, v.baseBytes, v.tokenCount].every((n) => Number.isSafeInteger(n));
  const segs = Array.isArray(v.segments) && v.segments.every(isManifestSegment);
  return typeof v.agentId === 'string' && typeof v.modelFingerprint === 'string' && typeof v.lastUsed === 'number' && ints && segs && typeof v.base === 'string';
}

function isManifestSegment(value: unknown): value is ManifestSegment {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof ManifestSegment, unknown>>;
  return Number.isSafeInteger(v.start) && Number.isSafeInteger(v.end) && Number.isSafeInteger(v.bytes) && typeof v.file === 'string' && SEGMENT_NAME.test(v.file);
}

import { CacheCorruptError } from '../../domain/errors.ts';
import type { ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import type { CachePersistencePort, DecodedAgentKv, KvBlobCodecPort, KvSnapshot, StoredSegment } from '../../ports/outbound.ts';

/**
 * Joins an agent's stored segments into one cache. Segment i contributes positions
 * [start_i, start_{i+1}) (the last one all it holds): a later segment starts on the block
 * boundary at or before the end of the earlier one and overwrites the partial block.
 */

/** Dense KV of consecutive pieces: piece i contributes its first `take[i]` tokens. Pure. */
export function concatSnapshots(pieces: readonly KvSnapshot[], take: readonly number[]): KvSnapshot {
  if (pieces.length === 0) return { tokens: 0, keys: [], values: [] };
  if (pieces.length === 1 && take[0] === pieces[0].tokens) return pieces[0];
  const tokens = take.reduce((a, b) => a + b, 0);
  const per = perToken(pieces);
  const join = (layer: (s: KvSnapshot) => readonly Float32Array[], i: number): Float32Array => {
    const out = new Float32Array(tokens * per);
    let at = 0;
    pieces.forEach((p, j) => {
      out.set(layer(p)[i].subarray(0, take[j] * per), at);
      at += take[j] * per;
    });
    return out;
  };
  const layers = pieces[0].keys.length;
  return {
    tokens,
    keys: Array.from({ length: layers }, (_, i) => join((s) => s.keys, i)),
    values: Array.from({ length: layers }, (_, i) => join((s) => s.values, i)),
  };
}

/** Floats per token of a layer (kvHeads * headDim), the same in every piece. */
function perToken(pieces: readonly KvSnapshot[]): number {
  const first = pieces.find((p) => p.tokens > 0);
  return first ? first.keys[0].length / first.tokens : 0;
}

/**
 * Decode every segment (each checks its own checksums and model) and join them. Segments that
 * leave a gap, overlap backwards, or disagree on quantization are a CacheCorruptError: the
 * caller recomputes, exactly as for a damaged whole blob.
 */
export function joinSegments(codec: KvBlobCodecPort, spec: ModelCacheSpec, segments: readonly StoredSegment[]): DecodedAgentKv & { bytes: number } {
  if (segments.length === 0) throw new CacheCorruptError('an agent stored with no segments', { reason: 'segment-gap', segment: 0, start: 0 });
  const decoded = segments.map((s) => codec.decode(s.bytes, spec));
  const take = segments.map((s, i) => (i + 1 < segments.length ? segments[i + 1].start - s.start : decoded[i].tokenIds.length));
  segments.forEach((s, i) => {
    // Each segment must reach the next one's start, and the starts must increase from 0.
    const ok = (i > 0 || s.start === 0) && take[i] >= 1 && take[i] <= decoded[i].tokenIds.length && decoded[i].quantization === decoded[0].quantization;
    if (!ok) throw new CacheCorruptError(`agent segments do not join at segment ${i} (start ${s.start})`, { reason: 'segment-gap', segment: i, start: s.start });
  });
  const tokenIds = decoded.flatMap((d, i) => d.tokenIds.slice(0, take[i]));
  const snapshot = concatSnapshots(
    decoded.map((d) => d.snapshot),
    take,
  );
  const bytes = segments.reduce((n, s) => n + s.bytes.byteLength, 0);
  return { agentId: decoded[0].agentId, tokenIds, snapshot, quantization: decoded[0].quantization, bytes };
}

/** An agent's memory as cold storage holds it: its segments (one, for a whole blob). */
export interface StoredAgentKv {
  readonly segments: readonly StoredSegment[];
  /** Bytes of all segments together. */
  readonly bytes: number;
}

/** Read an agent's stored segments, through `loadSegments` where storage has it. */
export async function loadStoredAgent(persistence: CachePersistencePort, agentId: string): Promise<StoredAgentKv | null> {
  const segments = persistence.loadSegments
    ? await persistence.loadSegments(agentId)
    : await persistence.load(agentId).then((bytes) => (bytes ? [{ start: 0, bytes }] : null));
  if (!segments || segments.length === 0) return null;
  return { segments, bytes: segments.reduce((n, s) => n + s.bytes.byteLength, 0) };
}

/** One self-contained blob of the whole agent (export): a lone segment as is, else joined. */
export function joinedBlob(codec: KvBlobCodecPort, spec: ModelCacheSpec, stored: StoredAgentKv): Uint8Array {
  if (stored.segments.length === 1) return stored.segments[0].bytes;
  const joined = joinSegments(codec, spec, stored.segments);
  return codec.encode({ agentId: joined.agentId, spec, tokenIds: joined.tokenIds, snapshot: joined.snapshot, quantization: joined.quantization });
}

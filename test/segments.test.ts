import { describe, expect, it } from 'vitest';
import { concatSnapshots, joinedBlob, joinSegments } from '../src/application/cache/segments.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import { CacheCorruptError } from '../src/domain/errors.ts';
import type { ModelCacheSpec } from '../src/domain/model-cache-spec.ts';
import type { KvSnapshot } from '../src/ports/outbound.ts';

const SPEC: ModelCacheSpec = { modelId: 'm', fingerprint: 'fp-1', nLayers: 2, nKvHeads: 2, headDim: 4, blockTokens: 4, dtype: 'f32' };
const PER = SPEC.nKvHeads * SPEC.headDim;

/** KV whose every value names its layer, K or V, and absolute position: joins are checkable. */
function kv(from: number, to: number): KvSnapshot {
  const layer = (l: number, sign: number): Float32Array => Float32Array.from({ length: (to - from) * PER }, (_, i) => sign * (l * 1000 + from + Math.floor(i / PER) + (i % PER) / 100));
  return { tokens: to - from, keys: [0, 1].map((l) => layer(l, 1)), values: [0, 1].map((l) => layer(l, -1)) };
}

const tokens = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => 100 + from + i);
const segment = (from: number, to: number) => ({
  start: from,
  bytes: safetensorsBlobCodec.encode({ agentId: 'a', spec: SPEC, tokenIds: tokens(from, to), snapshot: kv(from, to) }),
});

describe('concatSnapshots', () => {
  it('takes the first take[i] tokens of each piece, per layer, K and V', () => {
    const joined = concatSnapshots([kv(0, 6), kv(4, 9)], [4, 5]);
    expect(joined.tokens).toBe(9);
    expect(joined.keys.map((k) => [...k])).toEqual(kv(0, 9).keys.map((k) => [...k]));
    expect(joined.values.map((v) => [...v])).toEqual(kv(0, 9).values.map((v) => [...v]));
  });
});

describe('joinSegments', () => {
  it('joins a whole blob and appended segments (each overwriting the partial block) into the full cache', () => {
    // Stored 6 tokens, then 9 (segment at floor(6/4)*4 = 4), then 13 (segment at 8).
    const joined = joinSegments(safetensorsBlobCodec, SPEC, [segment(0, 6), segment(4, 9), segment(8, 13)]);
    expect(joined.tokenIds).toEqual(tokens(0, 13));
    expect(joined.snapshot.keys.map((k) => [...k])).toEqual(kv(0, 13).keys.map((k) => [...k]));
    expect(joined.snapshot.values.map((v) => [...v])).toEqual(kv(0, 13).values.map((v) => [...v]));
    // Export: one blob that decodes to the same.
    const one = joinedBlob(safetensorsBlobCodec, SPEC, { segments: [segment(0, 6), segment(4, 9), segment(8, 13)], bytes: 0 });
    const back = safetensorsBlobCodec.decode(one, SPEC);
    expect(back.tokenIds).toEqual(tokens(0, 13));
    expect([...back.snapshot.keys[1]]).toEqual([...kv(0, 13).keys[1]]);
  });

  it('a gap between segments, or a first segment not at 0, is a CacheCorruptError', () => {
    expect(() => joinSegments(safetensorsBlobCodec, SPEC, [segment(0, 4), segment(8, 12)])).toThrow(CacheCorruptError);
    expect(() => joinSegments(safetensorsBlobCodec, SPEC, [segment(4, 8)])).toThrow(CacheCorruptError);
    expect(() => joinSegments(safetensorsBlobCodec, SPEC, [])).toThrow(CacheCorruptError);
  });

  it('a flipped data byte in any segment is a CacheCorruptError (its checksum)', () => {
    const segs = [segment(0, 6), segment(4, 9)];
    const bad = segs[1].bytes.slice();
    bad[bad.length - 3] ^= 0x40;
    expect(() => joinSegments(safetensorsBlobCodec, SPEC, [segs[0], { start: 4, bytes: bad }])).toThrow(CacheCorruptError);
  });
});

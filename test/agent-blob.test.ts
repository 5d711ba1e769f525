import { describe, expect, it } from 'vitest';
import {
  AGENT_BLOB_FORMAT,
  AGENT_BLOB_FORMAT_VERSION,
  verifyAgentBlob,
  decodeAgentBlob,
  encodeAgentBlob,
  readAgentBlobMeta,
  type EncodeAgentBlobInput,
} from '../src/adapters/safetensors/agent-blob.ts';
import { parseSafetensors, serializeSafetensors, type TensorInput } from '../src/adapters/safetensors/index.ts';
import { crc32cHex } from '../src/domain/crc32c.ts';
import { CacheCorruptError, InvalidRequestError, ModelMismatchError } from '../src/domain/errors.ts';
import { f16ArrayToF32, f32ArrayToF16 } from '../src/domain/half.ts';
import type { KvQuantization, ModelCacheSpec } from '../src/domain/model-cache-spec.ts';
import type { KvSnapshot } from '../src/ports/outbound.ts';

const SPEC: ModelCacheSpec = {
  modelId: 'tiny-llama',
  fingerprint: 'fp-0123456789abcdef',
  nLayers: 2,
  nKvHeads: 2,
  headDim: 8,
  blockTokens: 16,
  dtype: 'f32',
};

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeSnapshot(spec: ModelCacheSpec, tokens: number, seed = 1): KvSnapshot {
  const next = rng(seed);
  const layer = (): Float32Array => Float32Array.from({ length: tokens * spec.nKvHeads * spec.headDim }, () => next() * 8 - 4);
  return {
    tokens,
    keys: Array.from({ length: spec.nLayers }, layer),
    values: Array.from({ length: spec.nLayers }, layer),
  };
}

function input(overrides: Partial<EncodeAgentBlobInput> = {}): EncodeAgentBlobInput {
  const spec = overrides.spec ?? SPEC;
  const tokens = overrides.snapshot?.tokens ?? 5;
  return {
    agentId: 'agent-1',
    spec,
    tokenIds: Array.from({ length: tokens }, (_, i) => 100 + i),
    snapshot: makeSnapshot(spec, tokens),
    createdAt: new Date('2025-01-02T03:04:05.000Z'),
    ...overrides,
  };
}

/** Re-serialize a blob after changing its metadata or tensors: a "hand-torn" blob. */
function rewrite(
  blob: Uint8Array,
  mutate: (meta: Record<string, string>, tensors: Map<string, TensorInput>) => void,
  resign = true,
): Uint8Array {
  const file = parseSafetensors(blob);
  const meta: Record<string, string> = { ...file.metadata };
  const tensors = new Map<string, TensorInput>();
  for (const [name, t] of file.tensors) tensors.set(name, { dtype: t.dtype, shape: t.shape, data: t.data.slice() });
  mutate(meta, tensors);
  // Re-sign: a forged blob with valid checksums must still be refused by the value checks.
  for (const [name, t] of resign ? tensors : []) {
    if (meta[`crc32c.${name}`] !== undefined) meta[`crc32c.${name}`] = crc32cHex(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return serializeSafetensors(tensors, meta);
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return expect.fail('expected a throw');
}

function expectCorrupt(fn: () => unknown, reason: string): void {
  const error = caught(fn);
  expect(error).toBeInstanceOf(CacheCorruptError);
  expect((error as CacheCorruptError).details?.['reason']).toBe(reason);
}

function expectMismatch(fn: () => unknown, reason: string): void {
  const error = caught(fn);
  expect(error).toBeInstanceOf(ModelMismatchError);
  expect((error as ModelMismatchError).details?.['reason']).toBe(reason);
}

/** |a - b| <= half a quantization step of the group each value belongs to. */
function expectQuantBound(original: Float32Array, restored: Float32Array, group: number, qMax: number): void {
  for (let g = 0; g < original.length / group; g++) {
    const slice = original.subarray(g * group, (g + 1) * group);
    const scale = Math.fround(slice.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / qMax);
    for (let i = g * group; i < (g + 1) * group; i++) {
      expect(Math.abs(original[i] - restored[i])).toBeLessThanOrEqual(scale / 2 + Math.abs(original[i]) * 2 ** -22);
    }
  }
}

describe('agent blob round trip', () => {
  it('is exact for quantization none (f32)', () => {
    const inp = input();
    const blob = encodeAgentBlob(inp);
    const out = decodeAgentBlob(blob, SPEC);
    expect(out.agentId).toBe('agent-1');
    expect(out.tokenIds).toEqual(inp.tokenIds);
    expect(out.quantization).toBe('none');
    expect(out.snapshot.tokens).toBe(5);
    for (let i = 0; i < SPEC.nLayers; i++) {
      expect(out.snapshot.keys[i]).toEqual(inp.snapshot.keys[i]);
      expect(out.snapshot.values[i]).toEqual(inp.snapshot.values[i]);
    }
    expect(out.meta).toMatchObject({
      format: 'semantic-kv',
      formatVersion: AGENT_BLOB_FORMAT_VERSION,
      modelId: 'tiny-llama',
      modelFingerprint: SPEC.fingerprint,
      blockTokens: 16,
      dtype: 'f32',
      groupSize: 0,
      nLayers: 2,
      nKvHeads: 2,
      headDim: 8,
      tokens: 5,
      createdAt: '2025-01-02T03:04:05.000Z',
      byteLength: blob.byteLength,
    });
  });

  it('writes the documented layout and metadata', () => {
    const file = parseSafetensors(encodeAgentBlob(input({ quantization: 'q8' })));
    expect([...file.tensors.keys()].sort()).toEqual(
      ['token_ids', ...[0, 1].flatMap((i) => ['k', 'v'].flatMap((kv) => [`layers.${i}.${kv}.q8`, `layers.${i}.${kv}.scale`]))].sort(),
    );
    expect(file.tensors.get('token_ids')).toMatchObject({ dtype: 'I32', shape: [5] });
    expect(file.tensors.get('layers.1.v.q8')).toMatchObject({ dtype: 'I8', shape: [5, 2, 8] });
    expect(file.tensors.get('layers.1.v.scale')).toMatchObject({ dtype: 'F32', shape: [5, 2, 1] });
    const keys = Object.keys(file.metadata);
    expect(keys.filter((k) => k.startsWith('crc32c.')).sort()).toEqual([...file.tensors.keys()].map((n) => `crc32c.${n}`).sort());
    expect(keys.filter((k) => !k.startsWith('crc32c.')).sort()).toEqual(
      ['format', 'format_version', 'model_fingerprint', 'model_id', 'agent_id', 'block_tokens', 'dtype', 'quantization',
        'group_size', 'n_layers', 'n_kv_heads', 'head_dim', 'tokens', 'created_at'].sort(),
    );
    expect(file.metadata['group_size']).toBe('8');
  });

  it('stores F16 when the spec dtype is f16 and widens exactly on read', () => {
    const spec: ModelCacheSpec = { ...SPEC, dtype: 'f16' };
    const raw = makeSnapshot(spec, 4, 9);
    const snapshot: KvSnapshot = {
      tokens: 4,
      keys: raw.keys.map((k) => f16ArrayToF32(f32ArrayToF16(k))),
      values: raw.values.map((v) => f16ArrayToF32(f32ArrayToF16(v))),
    };
    const blob = encodeAgentBlob(input({ spec, snapshot }));
    expect(parseSafetensors(blob).tensors.get('layers.0.k')?.dtype).toBe('F16');
    // A reader whose hot tier is f32 still accepts it: only fingerprint and shape must agree.
    const out = decodeAgentBlob(blob, SPEC);
    expect(out.snapshot.keys).toEqual(snapshot.keys);
    expect(out.snapshot.values).toEqual(snapshot.values);
    expect(out.meta.dtype).toBe('f16');
  });

  it.each([
    ['q8', 127],
    ['q4', 7],
  ] as const)('%s restores within half a step per group', (quantization, qMax) => {
    for (const groupSize of [2, 4, 8, 32]) {
      const inp = input({ quantization, groupSize });
      const out = decodeAgentBlob(encodeAgentBlob(inp), SPEC);
      const group = Math.min(groupSize, SPEC.headDim);
      expect(out.meta.groupSize).toBe(group);
      expect(out.quantization).toBe(quantization);
      for (let i = 0; i < SPEC.nLayers; i++) {
        expectQuantBound(inp.snapshot.keys[i], out.snapshot.keys[i], group, qMax);
        expectQuantBound(inp.snapshot.values[i], out.snapshot.values[i], group, qMax);
      }
    }
  });

  it('clamps the group size to a divisor of headDim and shrinks the blob', () => {
    const spec: ModelCacheSpec = { ...SPEC, headDim: 12 };
    const inp = input({ spec, quantization: 'q8', groupSize: 8 });
    const q8 = encodeAgentBlob(inp);
    expect(decodeAgentBlob(q8, spec).meta.groupSize).toBe(6);
    const none = encodeAgentBlob({ ...inp, quantization: 'none' });
    const q4 = encodeAgentBlob({ ...inp, quantization: 'q4' });
    expect(q8.byteLength).toBeLessThan(none.byteLength);
    expect(q4.byteLength).toBeLessThan(q8.byteLength);
  });

  it('round trips an empty cache', () => {
    for (const quantization of ['none', 'q8', 'q4'] as const) {
      const out = decodeAgentBlob(encodeAgentBlob(input({ snapshot: makeSnapshot(SPEC, 0), tokenIds: [], quantization })), SPEC);
      expect(out.tokenIds).toEqual([]);
      expect(out.snapshot.keys.map((k) => k.length)).toEqual([0, 0]);
    }
  });

  it('returns arrays that do not alias the blob bytes', () => {
    const blob = encodeAgentBlob(input());
    const out = decodeAgentBlob(blob, SPEC);
    const before = Float32Array.from(out.snapshot.keys[0]);
    blob.fill(0);
    expect(out.snapshot.keys[0]).toEqual(before);
  });
});

describe('encodeAgentBlob input checks', () => {
  it.each<[string, Partial<EncodeAgentBlobInput>]>([
    ['token count differs', { tokenIds: [1, 2] }],
    ['negative token id', { tokenIds: [1, 2, 3, 4, -5] }],
    ['fractional token id', { tokenIds: [1, 2, 3, 4, 5.5] }],
    ['token id beyond int32', { tokenIds: [1, 2, 3, 4, 2 ** 31] }],
    ['missing layer', { snapshot: { ...makeSnapshot(SPEC, 5), keys: makeSnapshot(SPEC, 5).keys.slice(1) } }],
    ['short layer', { snapshot: { ...makeSnapshot(SPEC, 5), values: [new Float32Array(3), new Float32Array(80)] } }],
    ['bad agent id', { agentId: 'no/slashes' }],
    ['unknown quantization', { quantization: 'q2' as KvQuantization }],
    ['q4 with odd headDim', { spec: { ...SPEC, headDim: 7 }, snapshot: makeSnapshot({ ...SPEC, headDim: 7 }, 5), quantization: 'q4' }],
    ['zero group size', { quantization: 'q8', groupSize: 0 }],
  ])('refuses %s with InvalidRequestError', (_label, overrides) => {
    expect(() => encodeAgentBlob(input(overrides))).toThrow(InvalidRequestError);
  });

  it('refuses non-finite values and f16 overflow', () => {
    for (const quantization of ['none', 'q8', 'q4'] as const) {
      const snapshot = makeSnapshot(SPEC, 5);
      snapshot.keys[1][7] = NaN;
      expect(() => encodeAgentBlob(input({ snapshot, quantization }))).toThrow(InvalidRequestError);
    }
    const spec: ModelCacheSpec = { ...SPEC, dtype: 'f16' };
    const snapshot = makeSnapshot(spec, 5);
    snapshot.values[0][3] = 1e6;
    expect(() => encodeAgentBlob(input({ spec, snapshot }))).toThrow(InvalidRequestError);
  });
});

describe('decodeAgentBlob refuses other models and formats', () => {
  const blob = encodeAgentBlob(input());

  it('another fingerprint', () => {
    expectMismatch(() => decodeAgentBlob(blob, { ...SPEC, fingerprint: 'fp-other' }), 'fingerprint');
  });

  it.each([
    ['nLayers', { nLayers: 3 }],
    ['nKvHeads', { nKvHeads: 1 }],
    ['headDim', { headDim: 16 }],
  ])('another shape (%s)', (_label, change) => {
    expectMismatch(() => decodeAgentBlob(blob, { ...SPEC, ...change }), 'shape');
  });

  it('accepts another model id, block size and hot dtype with the same fingerprint', () => {
    const out = decodeAgentBlob(blob, { ...SPEC, modelId: 'alias', blockTokens: 32, dtype: 'f16' });
    expect(out.snapshot.tokens).toBe(5);
  });

  it('another format version', () => {
    expectMismatch(() => decodeAgentBlob(rewrite(blob, (m) => (m['format_version'] = '3')), SPEC), 'format-version');
    expectMismatch(() => readAgentBlobMeta(rewrite(blob, (m) => delete m['format_version'])), 'format-version');
  });

  it('another format, or a plain safetensors file', () => {
    expectMismatch(() => decodeAgentBlob(rewrite(blob, (m) => (m['format'] = 'gguf')), SPEC), 'format');
    const weights = serializeSafetensors({ 'model.embed.weight': { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
    expectMismatch(() => decodeAgentBlob(weights, SPEC), 'format');
  });

  it('checks the model before the layout', () => {
    const torn = rewrite(blob, (_m, t) => t.delete('layers.0.k'));
    expectMismatch(() => decodeAgentBlob(torn, { ...SPEC, fingerprint: 'x' }), 'fingerprint');
    expectCorrupt(() => decodeAgentBlob(torn, SPEC), 'missing-tensor');
  });
});

describe('decodeAgentBlob refuses corrupt blobs', () => {
  const blob = encodeAgentBlob(input());
  const q8 = encodeAgentBlob(input({ quantization: 'q8', groupSize: 4 }));
  const q4 = encodeAgentBlob(input({ quantization: 'q4', groupSize: 4 }));
  const meta = (key: string, value: string | undefined) => (m: Record<string, string>) => {
    if (value === undefined) delete m[key];
    else m[key] = value;
  };

  it.each<[string, Uint8Array, (m: Record<string, string>, t: Map<string, TensorInput>) => void, string]>([
    ['tokens not an integer', blob, meta('tokens', '4.5'), 'invalid-metadata'],
    ['tokens with a sign', blob, meta('tokens', '-5'), 'invalid-metadata'],
    ['tokens with a leading zero', blob, meta('tokens', '05'), 'invalid-metadata'],
    ['tokens in exponent form', blob, meta('tokens', '5e0'), 'invalid-metadata'],
    ['tokens missing', blob, meta('tokens', undefined), 'invalid-metadata'],
    ['tokens disagree with tensors', blob, meta('tokens', '4'), 'invalid-shape'],
    ['n_layers zero', blob, meta('n_layers', '0'), 'invalid-metadata'],
    ['unknown quantization', blob, meta('quantization', 'q2'), 'invalid-metadata'],
    ['unknown dtype', blob, meta('dtype', 'bf16'), 'invalid-metadata'],
    ['group size on none', blob, meta('group_size', '4'), 'invalid-metadata'],
    ['group size not dividing headDim', q8, meta('group_size', '3'), 'invalid-metadata'],
    ['group size disagrees with scales', q8, meta('group_size', '8'), 'invalid-shape'],
    ['quantization disagrees with tensors', q8, meta('quantization', 'q4'), 'missing-tensor'],
    ['dtype disagrees with tensors', blob, meta('dtype', 'f16'), 'invalid-dtype'],
    ['bad agent id', blob, meta('agent_id', '../../etc'), 'invalid-metadata'],
    ['bad created_at', blob, meta('created_at', 'yesterday'), 'invalid-metadata'],
    ['empty fingerprint', blob, meta('model_fingerprint', ''), 'invalid-metadata'],
    ['missing tensor', blob, (_m, t) => t.delete('layers.1.v'), 'missing-tensor'],
    ['missing token ids', blob, (_m, t) => t.delete('token_ids'), 'missing-tensor'],
    ['missing scale', q4, (_m, t) => t.delete('layers.0.k.scale'), 'missing-tensor'],
    ['extra tensor', blob, (_m, t) => t.set('extra', { dtype: 'U8', shape: [1], data: new Uint8Array(1) }), 'unexpected-tensor'],
    ['wrong dtype', q8, (_m, t) => t.set('layers.0.v.q8', { dtype: 'U8', shape: [5, 2, 8], data: new Uint8Array(80) }), 'invalid-dtype'],
    ['wrong token dtype', blob, (_m, t) => t.set('token_ids', { dtype: 'I64', shape: [5], data: new BigInt64Array(5) }), 'invalid-dtype'],
    ['wrong shape', blob, (_m, t) => t.set('layers.0.k', { dtype: 'F32', shape: [5, 16], data: new Float32Array(80) }), 'invalid-shape'],
    ['wrong q4 shape', q4, (_m, t) => t.set('layers.1.k.q4', { dtype: 'U8', shape: [5, 2, 8], data: new Uint8Array(80) }), 'invalid-shape'],
    ['negative token id', blob, (_m, t) => t.set('token_ids', { dtype: 'I32', shape: [5], data: Int32Array.of(1, 2, -3, 4, 5) }), 'invalid-token-id'],
    ['NaN in K', blob, (_m, t) => t.set('layers.0.k', { dtype: 'F32', shape: [5, 2, 8], data: new Float32Array(80).fill(NaN) }), 'non-finite'],
    ['infinite scale', q8, (_m, t) => t.set('layers.1.v.scale', { dtype: 'F32', shape: [5, 2, 2], data: new Float32Array(20).fill(Infinity) }), 'invalid-scale'],
    ['negative scale', q4, (_m, t) => t.set('layers.0.v.scale', { dtype: 'F32', shape: [5, 2, 2], data: new Float32Array(20).fill(-1) }), 'invalid-scale'],
  ])('%s', (_label, source, mutate, reason) => {
    expectCorrupt(() => decodeAgentBlob(rewrite(source, mutate), SPEC), reason);
  });

  it('rejects a huge n_layers without walking it', () => {
    const torn = rewrite(blob, meta('n_layers', '9007199254740991'));
    expectCorrupt(() => readAgentBlobMeta(torn), 'missing-tensor');
  });

  it('rejects every truncation with CacheCorruptError', () => {
    for (const source of [blob, q4]) {
      for (let n = 0; n < source.byteLength; n++) {
        expect(() => decodeAgentBlob(source.subarray(0, n), SPEC)).toThrow(CacheCorruptError);
      }
    }
  });

  it('rejects bytes appended after the data', () => {
    const longer = new Uint8Array(blob.byteLength + 4);
    longer.set(blob);
    expectCorrupt(() => decodeAgentBlob(longer, SPEC), 'trailing-data');
  });

  it('fuzz: 3000 mutations fail only with CacheCorruptError or ModelMismatchError', () => {
    const sources = [blob, q8, q4, encodeAgentBlob(input({ spec: { ...SPEC, dtype: 'f16' }, quantization: 'none' }))];
    const next = rng(20250101);
    const counts = { ok: 0, corrupt: 0, mismatch: 0 };
    for (let round = 0; round < 3000; round++) {
      const source = sources[round % sources.length];
      const bytes = mutate(source, next);
      for (const run of [() => decodeAgentBlob(bytes, SPEC), () => readAgentBlobMeta(bytes)]) {
        try {
          run();
          counts.ok++;
        } catch (error) {
          if (error instanceof CacheCorruptError) {
            // 'unexpected' is the guard's net for our own bugs: the fuzzer must never reach it.
            expect(error.details?.['reason'], `round ${round}`).not.toBe('unexpected');
            counts.corrupt++;
          } else if (error instanceof ModelMismatchError) counts.mismatch++;
          else expect.fail(`round ${round}: ${String(error)}`);
        }
      }
    }
    // The fuzzer must reach all three outcomes, or it is not exercising the decoder.
    expect(counts.ok).toBeGreaterThan(0);
    expect(counts.corrupt).toBeGreaterThan(0);
    expect(counts.mismatch).toBeGreaterThan(0);
  });
});

/** One random corruption: bit flips (mostly in the header, where parsing happens), a byte
 * overwrite, a cut, or a splice of the blob with itself. */
function mutate(source: Uint8Array, next: () => number): Uint8Array {
  const headerEnd = 8 + new DataView(source.buffer, source.byteOffset).getUint32(0, true);
  const pick = (limit: number): number => Math.floor(next() * limit);
  const out = source.slice();
  const kind = pick(5);
  if (kind <= 1) {
    const flips = 1 + pick(3);
    for (let i = 0; i < flips; i++) {
      const at = kind === 0 ? pick(headerEnd) : pick(out.length);
      out[at] ^= 1 << pick(8);
    }
    return out;
  }
  if (kind === 2) {
    out[pick(headerEnd)] = [0x22, 0x30, 0x39, 0x2c, 0x7d, 0x5b, 0x2d, 0x00, 0xff][pick(9)];
    return out;
  }
  if (kind === 3) return out.subarray(0, pick(out.length));
  const cut = pick(out.length);
  const from = pick(out.length);
  return Uint8Array.from([...out.subarray(0, cut), ...out.subarray(from)]);
}

describe('readAgentBlobMeta', () => {
  it('reads the header without decoding or checking data', () => {
    const blob = encodeAgentBlob(input({ quantization: 'q4', groupSize: 4 }));
    // Poison every scale: decoding refuses it, the metadata read never looks at data.
    const poisoned = rewrite(blob, (_m, t) => {
      for (const [name, entry] of t) {
        if (name.endsWith('.scale')) t.set(name, { ...entry, data: new Float32Array(entry.data.byteLength / 4).fill(NaN) });
      }
    });
    expectCorrupt(() => decodeAgentBlob(poisoned, SPEC), 'invalid-scale');
    const meta = readAgentBlobMeta(poisoned);
    expect(meta).toMatchObject({
      format: AGENT_BLOB_FORMAT,
      agentId: 'agent-1',
      quantization: 'q4',
      groupSize: 4,
      tokens: 5,
      modelFingerprint: SPEC.fingerprint,
      byteLength: poisoned.byteLength,
    });
  });

  it('needs no model spec and still checks the layout', () => {
    const blob = encodeAgentBlob(input());
    expect(readAgentBlobMeta(blob).nLayers).toBe(2);
    expectCorrupt(() => readAgentBlobMeta(rewrite(blob, (_m, t) => t.delete('layers.0.v'))), 'missing-tensor');
  });
});

describe('agent blob checksums', () => {
  const blob = encodeAgentBlob(input());
  const q4 = encodeAgentBlob(input({ quantization: 'q4', groupSize: 4 }));

  it('refuses every single flipped data byte with checksum-mismatch', () => {
    for (const source of [blob, q4]) {
      const dataStart = 8 + Number(new DataView(source.buffer, source.byteOffset).getUint32(0, true));
      for (let at = dataStart; at < source.byteLength; at++) {
        const flipped = source.slice();
        flipped[at] ^= 0x01;
        expectCorrupt(() => decodeAgentBlob(flipped, SPEC), 'checksum-mismatch');
      }
    }
  });

  it('refuses a version 2 blob without a checksum, and verifyAgentBlob checks without decoding', () => {
    expectCorrupt(() => decodeAgentBlob(rewrite(blob, (m) => delete m['crc32c.layers.1.k']), SPEC), 'missing-checksum');
    expectCorrupt(() => decodeAgentBlob(rewrite(blob, (m) => (m['crc32c.token_ids'] = 'xyz'), false), SPEC), 'missing-checksum');
    expect(verifyAgentBlob(blob).formatVersion).toBe(AGENT_BLOB_FORMAT_VERSION);
    const flipped = blob.slice();
    flipped[flipped.byteLength - 1] ^= 0x80;
    expectCorrupt(() => verifyAgentBlob(flipped), 'checksum-mismatch');
  });

  it('still reads a version 1 blob, which has no checksums', () => {
    const v1 = rewrite(blob, (m) => {
      m['format_version'] = '1';
      for (const k of Object.keys(m)) if (k.startsWith('crc32c.')) delete m[k];
    });
    const out = decodeAgentBlob(v1, SPEC);
    expect(out.meta.formatVersion).toBe('1');
    expect(out.snapshot.keys[0]).toEqual(decodeAgentBlob(blob, SPEC).snapshot.keys[0]);
  });
});


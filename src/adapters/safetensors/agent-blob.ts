/**
 * The agent cache blob: one safetensors file per agent, the unit of the warm and cold tiers.
 *
 * Tensors (T = tokens, H = nKvHeads, D = headDim, G = groupSize):
 *   token_ids                      I32 [T]
 *   quantization 'none':  layers.{i}.k, layers.{i}.v            F32 [T, H, D] (F16 when dtype is 'f16')
 *   quantization 'q8':    layers.{i}.k.q8, layers.{i}.v.q8      I8  [T, H, D]
 *                         layers.{i}.k.scale, layers.{i}.v.scale F32 [T, H, D / G]
 *   quantization 'q4':    layers.{i}.k.q4, layers.{i}.v.q4      U8  [T, H, D / 2] (low nibble first)
 *                         layers.{i}.k.scale, layers.{i}.v.scale F32 [T, H, D / G]
 * `__metadata__` (all strings): format "semantic-kv", format_version "1", model_fingerprint,
 * model_id, agent_id, block_tokens, dtype, quantization, group_size ("0" for 'none'), n_layers,
 * n_kv_heads, head_dim, tokens, created_at (ISO 8601), and since format version 2
 * `crc32c.<tensor name>` for every tensor: CRC-32C of its data bytes, 8 lowercase hex digits.
 *
 * Reading is a parse of untrusted bytes. Order of checks: safetensors structure
 * (CacheCorruptError), format and version (ModelMismatchError), metadata values
 * (CacheCorruptError), the expected model (ModelMismatchError), then every tensor's presence,
 * dtype and shape against the metadata, all before a byte of data is read (CacheCorruptError);
 * then every tensor's checksum, before any value is used (CacheCorruptError 'checksum-mismatch').
 * block_tokens, dtype and model_id may differ from the reading model: the snapshot is dense over
 * tokens and f16 widens to f32 exactly, and the fingerprint, not the id, names the weights.
 */
import { crc32c, crc32cHex } from '../../domain/crc32c.ts';
import { CacheCorruptError, InvalidRequestError, ModelMismatchError } from '../../domain/errors.ts';
import { f16ArrayToF32, f32ArrayToF16 } from '../../domain/half.ts';
import {
  DEFAULT_KV_GROUP_SIZE,
  dequantizeQ4,
  dequantizeQ8,
  quantizeQ4,
  quantizeQ8,
  resolveGroupSize,
} from '../../domain/kv-quant.ts';
import {
  createModelCacheSpec,
  type KvDtype,
  type KvQuantization,
  type ModelCacheSpec,
} from '../../domain/model-cache-spec.ts';
import { validateAgentId } from '../../domain/values.ts';
import type { KvSnapshot } from '../../ports/outbound.ts';
import {
  AGENT_BLOB_FORMAT,
  AGENT_BLOB_FORMAT_VERSION,
  KV_QUANTIZATIONS,
  checkExpected,
  checkLayout,
  checksumKey,
  corrupt,
  readChecksums,
  readMeta,
  type AgentBlobMeta,
} from './agent-blob-meta.ts';
import { parseSafetensors, type SafetensorsFile, type TensorEntry } from './parse.ts';
import { serializeSafetensors, type TensorInput } from './serialize.ts';
import { typedView } from './views.ts';

export {
  AGENT_BLOB_FORMAT,
  AGENT_BLOB_FORMAT_VERSION,
  type AgentBlobCorruptReason,
  type AgentBlobMeta,
  type AgentBlobMismatchReason,
} from './agent-blob-meta.ts';

export interface EncodeAgentBlobInput {
  readonly agentId: string;
  readonly spec: ModelCacheSpec;
  readonly tokenIds: readonly number[];
  readonly snapshot: KvSnapshot;
  readonly quantization?: KvQuantization;
  /** Requested values per scale (q8/q4), clamped to a divisor of headDim. Default 32. */
  readonly groupSize?: number;
  /** Stamp for `created_at`; now when omitted. */
  readonly createdAt?: Date;
}

export interface DecodedAgentBlob {
  readonly agentId: string;
  readonly tokenIds: number[];
  readonly snapshot: KvSnapshot;
  readonly quantization: KvQuantization;
  readonly meta: AgentBlobMeta;
}

const I32_MAX = 0x7fffffff;

// ---------------------------------------------------------------------------------------------
// Encoding

/** Serialize one agent's cache; refuses inconsistent input with InvalidRequestError. */
export function encodeAgentBlob(input: EncodeAgentBlobInput): Uint8Array {
  const spec = createModelCacheSpec(input.spec);
  const agentId = validateAgentId(input.agentId);
  const quantization = input.quantization ?? 'none';
  if (!KV_QUANTIZATIONS.includes(quantization)) {
    throw new InvalidRequestError(`unknown KV quantization ${String(quantization)}`, { quantization });
  }
  const groupSize = encodeGroupSize(spec, quantization, input.groupSize);
  checkSnapshot(spec, input.snapshot, input.tokenIds);
  const tensors = new Map<string, TensorInput>();
  const tokens = input.snapshot.tokens;
  tensors.set('token_ids', { dtype: 'I32', shape: [tokens], data: Int32Array.from(input.tokenIds) });
  for (let i = 0; i < spec.nLayers; i++) {
    addKv(tensors, `layers.${i}.k`, input.snapshot.keys[i], spec, quantization, groupSize, tokens);
    addKv(tensors, `layers.${i}.v`, input.snapshot.values[i], spec, quantization, groupSize, tokens);
  }
  const createdAt = (input.createdAt ?? new Date()).toISOString();
  const metadata = encodeMetadata(spec, agentId, quantization, groupSize, tokens, createdAt);
  for (const [name, t] of tensors) metadata[checksumKey(name)] = crc32cHex(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return serializeSafetensors(tensors, metadata);
}

function encodeGroupSize(spec: ModelCacheSpec, quantization: KvQuantization, requested: number | undefined): number {
  if (quantization === 'none') return 0;
  if (quantization === 'q4' && spec.headDim % 2 !== 0) {
    throw new InvalidRequestError('q4 packs two values per byte and needs an even headDim', { headDim: spec.headDim });
  }
  return resolveGroupSize(spec.headDim, requested ?? DEFAULT_KV_GROUP_SIZE);
}

function checkSnapshot(spec: ModelCacheSpec, snapshot: KvSnapshot, tokenIds: readonly number[]): void {
  const tokens = snapshot.tokens;
  if (!Number.isSafeInteger(tokens) || tokens < 0 || tokens !== tokenIds.length) {
    throw new InvalidRequestError('snapshot.tokens must equal the number of token ids', { tokens, tokenIds: tokenIds.length });
  }
  tokenIds.forEach((id, index) => {
    if (!Number.isInteger(id) || id < 0 || id > I32_MAX) {
      throw new InvalidRequestError(`token id at index ${index} is not a non-negative 32-bit integer`, { index, id });
    }
  });
  if (snapshot.keys.length !== spec.nLayers || snapshot.values.length !== spec.nLayers) {
    throw new InvalidRequestError('snapshot needs K and V for every layer', {
      nLayers: spec.nLayers,
      keys: snapshot.keys.length,
      values: snapshot.values.length,
    });
  }
  const elements = tokens * spec.nKvHeads * spec.headDim;
  for (const [kind, arrays] of [['keys', snapshot.keys], ['values', snapshot.values]] as const) {
    arrays.forEach((a, layer) => {
      if (!(a instanceof Float32Array) || a.length !== elements) {
        throw new InvalidRequestError(`snapshot.${kind}[${layer}] must be a Float32Array of ${elements} values`, {
          layer,
          expected: elements,
          actual: a instanceof Float32Array ? a.length : typeof a,
        });
      }
    });
  }
}

function addKv(
  tensors: Map<string, TensorInput>,
  name: string,
  values: Float32Array,
  spec: ModelCacheSpec,
  quantization: KvQuantization,
  groupSize: number,
  tokens: number,
): void {
  const { nKvHeads: h, headDim: d } = spec;
  if (quantization === 'none') {
    tensors.set(name, plainTensor(name, values, spec.dtype, [tokens, h, d]));
    return;
  }
  const scaleShape = [tokens, h, d / groupSize];
  if (quantization === 'q8') {
    const { q, scales } = quantizeQ8(values, groupSize);
    tensors.set(`${name}.q8`, { dtype: 'I8', shape: [tokens, h, d], data: q });
    tensors.set(`${name}.scale`, { dtype: 'F32', shape: scaleShape, data: scales });
  } else {
    const { q, scales } = quantizeQ4(values, groupSize);
    tensors.set(`${name}.q4`, { dtype: 'U8', shape: [tokens, h, d / 2], data: q });
    tensors.set(`${name}.scale`, { dtype: 'F32', shape: scaleShape, data: scales });
  }
}

/** Unquantized K or V; non-finite values are refused so a reader can treat them as corruption. */
function plainTensor(name: string, values: Float32Array, dtype: KvDtype, shape: number[]): TensorInput {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new InvalidRequestError(`${name}: value at index ${bad} is not finite`, { tensor: name, index: bad });
  }
  if (dtype === 'f32') return { dtype: 'F32', shape, data: values };
  const half = f32ArrayToF16(values);
  const overflow = half.findIndex(isF16NonFinite);
  if (overflow >= 0) {
    throw new InvalidRequestError(`${name}: value at index ${overflow} overflows f16`, { tensor: name, index: overflow });
  }
  return { dtype: 'F16', shape, data: half };
}

function isF16NonFinite(bits: number): boolean {
  return (bits & 0x7c00) === 0x7c00;
}

function encodeMetadata(
  spec: ModelCacheSpec,
  agentId: string,
  quantization: KvQuantization,
  groupSize: number,
  tokens: number,
  createdAt: string,
): Record<string, string> {
  return {
    format: AGENT_BLOB_FORMAT,
    format_version: AGENT_BLOB_FORMAT_VERSION,
    model_fingerprint: spec.fingerprint,
    model_id: spec.modelId,
    agent_id: agentId,
    block_tokens: String(spec.blockTokens),
    dtype: spec.dtype,
    quantization,
    group_size: String(groupSize),
    n_layers: String(spec.nLayers),
    n_kv_heads: String(spec.nKvHeads),
    head_dim: String(spec.headDim),
    tokens: String(tokens),
    created_at: createdAt,
  };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * The blob's metadata, with every tensor's dtype and shape checked against it; no tensor data
 * is read or converted. Does not compare with a model: use decodeAgentBlob for that.
 */
export function readAgentBlobMeta(bytes: Uint8Array): AgentBlobMeta {
  return guard(() => {
    const file = parseSafetensors(bytes);
    const meta = readMeta(file.metadata, bytes.byteLength);
    checkLayout(file, meta);
    return meta;
  });
}

/** Parse, check against the expected model, and restore the snapshot (dequantized to f32). */
export function decodeAgentBlob(bytes: Uint8Array, expected: ModelCacheSpec): DecodedAgentBlob {
  const spec = createModelCacheSpec(expected);
  return guard(() => {
    const file = parseSafetensors(bytes);
    const meta = readMeta(file.metadata, bytes.byteLength);
    checkExpected(meta, spec);
    checkLayout(file, meta);
    verifyChecksums(file, meta);
    const tokenIds = readTokenIds(file);
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let i = 0; i < meta.nLayers; i++) {
      keys.push(readKv(file, `layers.${i}.k`, meta));
      values.push(readKv(file, `layers.${i}.v`, meta));
    }
    const snapshot: KvSnapshot = { tokens: meta.tokens, keys, values };
    return { agentId: meta.agentId, tokenIds, snapshot, quantization: meta.quantization, meta };
  });
}

/** Every tensor's bytes against its stored CRC-32C: a flipped data byte is refused, never used. */
function verifyChecksums(file: SafetensorsFile, meta: AgentBlobMeta): void {
  for (const [name, want] of readChecksums(file.metadata, file, meta)) {
    const got = crc32c(tensor(file, name).data);
    if (got !== want) {
      throw corrupt('checksum-mismatch', `tensor "${name}" does not match its checksum`, { tensor: name });
    }
  }
}

/** Check a blob's structure and every checksum without decoding it (export, import, fsck). */
export function verifyAgentBlob(bytes: Uint8Array): AgentBlobMeta {
  return guard(() => {
    const file = parseSafetensors(bytes);
    const meta = readMeta(file.metadata, bytes.byteLength);
    checkLayout(file, meta);
    verifyChecksums(file, meta);
    return meta;
  });
}

/**
 * Untrusted bytes may only ever produce CacheCorruptError or ModelMismatchError; anything else
 * escaping the checks is our bug, reported as corruption so callers can still drop the blob.
 */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof CacheCorruptError || error instanceof ModelMismatchError) throw error;
    throw new CacheCorruptError('agent blob: unexpected failure while decoding', { reason: 'unexpected' }, { cause: error });
  }
}

function tensor(file: SafetensorsFile, name: string): TensorEntry {
  const entry = file.tensors.get(name);
  // checkLayout ran first, so this is a broken invariant rather than a bad blob; guard() reports it.
  if (entry === undefined) throw corrupt('unexpected', `tensor "${name}" vanished after the layout check`);
  return entry;
}

function readTokenIds(file: SafetensorsFile): number[] {
  const ids = typedView({ dtype: 'I32', data: tensor(file, 'token_ids').data });
  const bad = ids.findIndex((id) => id < 0);
  if (bad >= 0) throw corrupt('invalid-token-id', `token id at index ${bad} is negative`, { index: bad, id: ids[bad] });
  return Array.from(ids);
}

/** One layer's K or V as f32 [T, H, D]; always a fresh array, never a view of `bytes`. */
function readKv(file: SafetensorsFile, base: string, meta: AgentBlobMeta): Float32Array {
  if (meta.quantization === 'none') {
    const entry = tensor(file, base);
    const out = entry.dtype === 'F16'
      ? f16ArrayToF32(typedView({ dtype: 'F16', data: entry.data }))
      : new Float32Array(typedView({ dtype: 'F32', data: entry.data }));
    const bad = out.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw corrupt('non-finite', `tensor "${base}" holds a non-finite value at index ${bad}`, { tensor: base, index: bad });
    return out;
  }
  const scales = readScales(file, `${base}.scale`);
  if (meta.quantization === 'q8') {
    return dequantizeQ8(typedView({ dtype: 'I8', data: tensor(file, `${base}.q8`).data }), scales, meta.groupSize);
  }
  return dequantizeQ4(typedView({ dtype: 'U8', data: tensor(file, `${base}.q4`).data }), scales, meta.groupSize);
}

/** Scales are maxAbs / qMax: finite and never negative in a blob we wrote. */
function readScales(file: SafetensorsFile, name: string): Float32Array {
  const scales = typedView({ dtype: 'F32', data: tensor(file, name).data });
  const bad = scales.findIndex((s) => !(Number.isFinite(s) && s >= 0));
  if (bad >= 0) throw corrupt('invalid-scale', `tensor "${name}" has an invalid scale at index ${bad}`, { tensor: name, index: bad });
  return scales;
}

/**
 * Metadata and layout rules of the agent cache blob (see agent-blob.ts for the format).
 * Everything here reads only the safetensors header: metadata strings, tensor names, dtypes
 * and shapes. No tensor data is touched.
 */
import { CacheCorruptError, ModelMismatchError, type ErrorDetails } from '../../domain/errors.ts';
import type { KvDtype, KvQuantization, ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import { validateAgentId } from '../../domain/values.ts';
import type { SafetensorsDtype } from './dtype.ts';
import type { SafetensorsFile } from './parse.ts';

export const AGENT_BLOB_FORMAT = 'semantic-kv';
/** Version 2 adds a CRC-32C of every tensor's bytes; version 1 blobs (no checksums) still load. */
export const AGENT_BLOB_FORMAT_VERSION = '2';
const READABLE_VERSIONS = ['1', '2'] as const;
export type AgentBlobFormatVersion = (typeof READABLE_VERSIONS)[number];
/** Metadata key of a tensor's checksum: 8 lowercase hex digits of CRC-32C over its data bytes. */
export const checksumKey = (tensor: string): string => `crc32c.${tensor}`;

/** `details.reason` of the CacheCorruptErrors raised here (parse failures keep their own). */
export type AgentBlobCorruptReason =
  | 'invalid-metadata'
  | 'missing-tensor'
  | 'unexpected-tensor'
  | 'invalid-dtype'
  | 'invalid-shape'
  | 'invalid-token-id'
  | 'invalid-scale'
  | 'non-finite'
  | 'missing-checksum'
  | 'checksum-mismatch'
  | 'unexpected';

/** `details.reason` of the ModelMismatchErrors raised here. */
export type AgentBlobMismatchReason = 'format' | 'format-version' | 'fingerprint' | 'shape';

export interface AgentBlobMeta {
  readonly format: typeof AGENT_BLOB_FORMAT;
  readonly formatVersion: AgentBlobFormatVersion;
  readonly agentId: string;
  readonly modelId: string;
  readonly modelFingerprint: string;
  readonly blockTokens: number;
  readonly dtype: KvDtype;
  readonly quantization: KvQuantization;
  /** Values per scale; 0 when quantization is 'none'. */
  readonly groupSize: number;
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly tokens: number;
  readonly createdAt: string;
  /** Size of the whole blob in bytes. */
  readonly byteLength: number;
}

export const KV_QUANTIZATIONS: readonly KvQuantization[] = ['none', 'q8', 'q4'];
const DTYPES: readonly KvDtype[] = ['f32', 'f16'];

/** A CacheCorruptError of the agent blob reader. */
export function corrupt(reason: AgentBlobCorruptReason, message: string, extra?: ErrorDetails): CacheCorruptError {
  return new CacheCorruptError(`agent blob: ${message}`, { reason, ...extra });
}

function mismatch(reason: AgentBlobMismatchReason, message: string, extra?: ErrorDetails): ModelMismatchError {
  return new ModelMismatchError(`agent blob: ${message}`, { reason, ...extra });
}

type Metadata = Readonly<Record<string, string>>;

/** Own keys only: the metadata object inherits from Object, so md['constructor'] exists. */
function field(md: Metadata, key: string): string | undefined {
  return Object.hasOwn(md, key) ? md[key] : undefined;
}

function requireString(md: Metadata, key: string): string {
  const value = field(md, key);
  if (value === undefined || value === '') throw corrupt('invalid-metadata', `metadata "${key}" is missing`, { key });
  return value;
}

const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

function requireInt(md: Metadata, key: string, min: number): number {
  const text = requireString(md, key);
  const value = DECIMAL.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw corrupt('invalid-metadata', `metadata "${key}" is not an integer >= ${min}`, { key, value: text });
  }
  return value;
}

function requireOneOf<T extends string>(md: Metadata, key: string, allowed: readonly T[]): T {
  const text = requireString(md, key);
  const found = allowed.find((a) => a === text);
  if (found === undefined) throw corrupt('invalid-metadata', `metadata "${key}" is not one of ${allowed.join(', ')}`, { key });
  return found;
}

export function readMeta(md: Metadata, byteLength: number): AgentBlobMeta {
  const format = field(md, 'format');
  if (format !== AGENT_BLOB_FORMAT) {
    throw mismatch('format', `format ${JSON.stringify(format ?? null)} is not ${AGENT_BLOB_FORMAT}`, { actual: format ?? null });
  }
  const version = READABLE_VERSIONS.find((v) => v === field(md, 'format_version'));
  if (version === undefined) {
    const actual = field(md, 'format_version') ?? null;
    throw mismatch('format-version', `format version ${JSON.stringify(actual)} is not one of ${READABLE_VERSIONS.join(', ')}`, {
      expected: AGENT_BLOB_FORMAT_VERSION,
      actual,
    });
  }
  const quantization = requireOneOf(md, 'quantization', KV_QUANTIZATIONS);
  const meta: AgentBlobMeta = {
    format: AGENT_BLOB_FORMAT,
    formatVersion: version,
    agentId: readAgentId(md),
    modelId: requireString(md, 'model_id'),
    modelFingerprint: requireString(md, 'model_fingerprint'),
    blockTokens: requireInt(md, 'block_tokens', 1),
    dtype: requireOneOf(md, 'dtype', DTYPES),
    quantization,
    groupSize: requireInt(md, 'group_size', 0),
    nLayers: requireInt(md, 'n_layers', 1),
    nKvHeads: requireInt(md, 'n_kv_heads', 1),
    headDim: requireInt(md, 'head_dim', 1),
    tokens: requireInt(md, 'tokens', 0),
    createdAt: readCreatedAt(md),
    byteLength,
  };
  checkGroupSize(meta);
  return meta;
}

function readAgentId(md: Metadata): string {
  const text = requireString(md, 'agent_id');
  try {
    return validateAgentId(text);
  } catch {
    throw corrupt('invalid-metadata', 'metadata "agent_id" is not a valid agent id', { key: 'agent_id' });
  }
}

function readCreatedAt(md: Metadata): string {
  const text = requireString(md, 'created_at');
  if (Number.isNaN(Date.parse(text))) throw corrupt('invalid-metadata', 'metadata "created_at" is not a date', { key: 'created_at' });
  return text;
}

/** 'none' carries no scales (group 0); q8/q4 groups must tile headDim, q4 rows must fill bytes. */
function checkGroupSize(meta: AgentBlobMeta): void {
  const { quantization: q, groupSize: g, headDim: d } = meta;
  const ok = q === 'none' ? g === 0 : g > 0 && d % g === 0 && (q !== 'q4' || d % 2 === 0);
  if (!ok) {
    throw corrupt('invalid-metadata', `group_size ${g} does not fit ${q} with head_dim ${d}`, {
      key: 'group_size',
      groupSize: g,
      headDim: d,
    });
  }
}

export function checkExpected(meta: AgentBlobMeta, spec: ModelCacheSpec): void {
  if (meta.modelFingerprint !== spec.fingerprint) {
    throw mismatch('fingerprint', `blob was written for model ${meta.modelFingerprint}, not ${spec.fingerprint}`, {
      expected: spec.fingerprint,
      actual: meta.modelFingerprint,
    });
  }
  const pairs = [
    ['n_layers', meta.nLayers, spec.nLayers],
    ['n_kv_heads', meta.nKvHeads, spec.nKvHeads],
    ['head_dim', meta.headDim, spec.headDim],
  ] as const;
  for (const [key, actual, wanted] of pairs) {
    if (actual !== wanted) throw mismatch('shape', `${key} is ${actual}, the model has ${wanted}`, { field: key, expected: wanted, actual });
  }
}

interface ExpectedTensor {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
}

/** Every tensor the metadata implies, in a stable order. */
function* expectedTensors(meta: AgentBlobMeta): Generator<ExpectedTensor> {
  const { tokens: t, nKvHeads: h, headDim: d, groupSize: g } = meta;
  yield { name: 'token_ids', dtype: 'I32', shape: [t] };
  for (let i = 0; i < meta.nLayers; i++) {
    for (const kv of ['k', 'v']) {
      const base = `layers.${i}.${kv}`;
      if (meta.quantization === 'none') {
        yield { name: base, dtype: meta.dtype === 'f16' ? 'F16' : 'F32', shape: [t, h, d] };
      } else {
        const q8 = meta.quantization === 'q8';
        yield q8 ? { name: `${base}.q8`, dtype: 'I8', shape: [t, h, d] } : { name: `${base}.q4`, dtype: 'U8', shape: [t, h, d / 2] };
        yield { name: `${base}.scale`, dtype: 'F32', shape: [t, h, d / g] };
      }
    }
  }
}

/**
 * The blob holds exactly the implied tensors with the implied dtypes and shapes. The walk stops
 * at the first absent tensor, so a huge n_layers costs at most one step per tensor present.
 */
export function checkLayout(file: SafetensorsFile, meta: AgentBlobMeta): void {
  let seen = 0;
  for (const want of expectedTensors(meta)) {
    const entry = file.tensors.get(want.name);
    if (entry === undefined) throw corrupt('missing-tensor', `tensor "${want.name}" is missing`, { tensor: want.name });
    if (entry.dtype !== want.dtype) {
      throw corrupt('invalid-dtype', `tensor "${want.name}" is ${entry.dtype}, expected ${want.dtype}`, { tensor: want.name });
    }
    if (!sameShape(entry.shape, want.shape)) {
      throw corrupt('invalid-shape', `tensor "${want.name}" has shape [${entry.shape.join(',')}], expected [${want.shape.join(',')}]`, {
        tensor: want.name,
      });
    }
    seen++;
  }
  if (seen !== file.tensors.size) {
    const names = new Set(Array.from(expectedTensors(meta), (t) => t.name));
    const extra = [...file.tensors.keys()].find((n) => !names.has(n)) ?? '';
    throw corrupt('unexpected-tensor', `tensor "${extra}" does not belong to the layout`, { tensor: extra });
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The checksum of every tensor, from the metadata. Version 2 must carry one per tensor, as 8
 * lowercase hex digits; a version 1 blob carries none (and gets none checked).
 */
export function readChecksums(md: Metadata, file: SafetensorsFile, meta: AgentBlobMeta): Map<string, number> {
  const sums = new Map<string, number>();
  if (meta.formatVersion === '1') return sums;
  for (const name of file.tensors.keys()) {
    const text = field(md, checksumKey(name));
    if (text === undefined || !/^[0-9a-f]{8}$/.test(text)) {
      throw corrupt('missing-checksum', `tensor "${name}" has no valid checksum in the metadata`, { tensor: name });
    }
    sums.set(name, parseInt(text, 16));
  }
  return sums;
}

/**
 * The ModelConfig of a GGUF file, from its `<arch>.*` keys and the tensors it carries. Only the
 * architectures the runtime computes (llama, qwen2, qwen3) are accepted; any key that would change
 * the math and that we do not implement (partial rotary, YaRN) is refused, not ignored.
 */
import { InvalidRequestError, UnsupportedModelError } from '../../domain/errors.ts';
import type { Architecture, ModelConfig, RopeScaling } from '../../domain/model-config.ts';
import type { GgufFile } from './reader.ts';
import type { GgufValue } from './metadata.ts';

const ARCHITECTURES: ReadonlySet<string> = new Set(['llama', 'qwen2', 'qwen3']);

/** A metadata number (any integer or float type); bigint only when it is a safe integer. */
export function metaNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new InvalidRequestError(`gguf: ${key} must be a number, got ${describe(v)}`, { key });
}

export function metaString(file: GgufFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new InvalidRequestError(`gguf: ${key} must be a string, got ${describe(v)}`, { key });
  return v;
}

function describe(v: GgufValue): string {
  return Array.isArray(v) || ArrayBuffer.isView(v) ? 'an array' : typeof v;
}

/**
 * GGUF stores eps and rope theta as f32: 1e-6 arrives as 9.99999997e-7. The shortest decimal that
 * rounds to the same f32 is what the converter was given, and what an HF config holds.
 */
export function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === Math.fround(x)) return v;
  }
  return x;
}

function required(file: GgufFile, key: string): number {
  const v = metaNumber(file, key);
  if (v === undefined || !Number.isInteger(v) || v <= 0) {
    throw new InvalidRequestError(`gguf: ${key} must be a positive integer`, { key, value: v ?? null });
  }
  return v;
}

export function ggufArchitecture(file: GgufFile): Architecture {
  const arch = metaString(file, 'general.architecture');
  if (arch === undefined || !ARCHITECTURES.has(arch)) {
    throw new UnsupportedModelError(`GGUF architecture ${String(arch)} is not supported (llama, qwen2, qwen3 are)`, { architecture: arch ?? null });
  }
  return arch as Architecture;
}

function ropeScaling(file: GgufFile, arch: string, factors: readonly number[] | undefined): RopeScaling {
  const type = metaString(file, `${arch}.rope.scaling.type`) ?? 'none';
  if (factors !== undefined) return { type: 'factors', factors };
  if (type === 'none') return { type: 'default' };
  if (type === 'linear') {
    const factor = metaNumber(file, `${arch}.rope.scaling.factor`) ?? 1;
    return factor === 1 ? { type: 'default' } : { type: 'linear', factor };
  }
  throw new UnsupportedModelError(`GGUF rope scaling ${type} is not supported`, { ropeScaling: type });
}

function hasTensor(file: GgufFile, name: string): boolean {
  return file.tensors.some((t) => t.name === name);
}

function tokenIds(file: GgufFile, keys: readonly string[]): number[] {
  const ids = keys.map((k) => metaNumber(file, `tokenizer.ggml.${k}`)).filter((v): v is number => v !== undefined && v >= 0);
  return [...new Set(ids)];
}

function vocabSize(file: GgufFile, arch: string): number {
  const explicit = metaNumber(file, `${arch}.vocab_size`);
  if (explicit !== undefined) return required(file, `${arch}.vocab_size`);
  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  if (Array.isArray(tokens) && tokens.length > 0) return tokens.length;
  const embd = file.tensors.find((t) => t.name === 'token_embd.weight');
  if (embd === undefined) throw new InvalidRequestError('gguf: no token_embd.weight tensor', {});
  return embd.ne[1];
}

/**
 * The ModelConfig of `file`. `ropeFactors` is the content of `rope_freqs.weight` when the file
 * has one (Llama 3 scaling as llama.cpp stores it).
 */
export function ggufModelConfig(file: GgufFile, ropeFactors?: readonly number[]): ModelConfig {
  const arch = ggufArchitecture(file);
  const k = (key: string): string => `${arch}.${key}`;
  const hiddenSize = required(file, k('embedding_length'));
  const nHeads = required(file, k('attention.head_count'));
  const nKvHeads = metaNumber(file, k('attention.head_count_kv')) ?? nHeads;
  const headDim = metaNumber(file, k('attention.key_length')) ?? hiddenSize / nHeads;
  const valueDim = metaNumber(file, k('attention.value_length')) ?? headDim;
  const ropeDim = metaNumber(file, k('rope.dimension_count')) ?? headDim;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0 || valueDim !== headDim || nHeads % nKvHeads !== 0) {
    throw new InvalidRequestError('gguf: inconsistent attention shape', { nHeads, nKvHeads, headDim, valueDim });
  }
  if (ropeDim !== headDim) throw new UnsupportedModelError(`partial rotary embeddings (${ropeDim} of ${headDim}) are not supported`, { ropeDim, headDim });
  const attentionBias = hasTensor(file, 'blk.0.attn_q.bias');
  const eps = shortestF32(metaNumber(file, k('attention.layer_norm_rms_epsilon')) ?? 1e-6);
  const bos = metaNumber(file, 'tokenizer.ggml.bos_token_id');
  return Object.freeze({
    architecture: arch,
    vocabSize: vocabSize(file, arch),
    hiddenSize,
    intermediateSize: required(file, k('feed_forward_length')),
    nLayers: required(file, k('block_count')),
    nHeads,
    nKvHeads,
    headDim,
    rmsNormEps: eps,
    ropeTheta: shortestF32(metaNumber(file, k('rope.freq_base')) ?? 10000),
    ropeScaling: ropeScaling(file, arch, ropeFactors),
    maxPositionEmbeddings: metaNumber(file, k('context_length')) ?? 2048,
    tieWordEmbeddings: !hasTensor(file, 'output.weight'),
    attentionBias: arch === 'qwen2' || attentionBias,
    attentionOutputBias: hasTensor(file, 'blk.0.attn_output.bias'),
    qkNorm: arch === 'qwen3',
    bosTokenId: bos ?? null,
    eosTokenIds: Object.freeze(tokenIds(file, ['eos_token_id', 'eot_token_id', 'eom_token_id'])),
  });
}

import { InvalidRequestError, UnsupportedModelError } from './errors.ts';
import {
  DEFAULT_BLOCK_TOKENS,
  createModelCacheSpec,
  type KvDtype,
  type ModelCacheSpec,
} from './model-cache-spec.ts';

/**
 * A Hugging Face `config.json` normalized into the one shape every backend reads. Parsing is
 * strict: a field we would silently misread (an unknown RoPE type, a non-SiLU activation, a
 * sliding window) is refused here rather than producing plausible garbage later.
 */

export type Architecture = 'llama' | 'qwen2' | 'qwen3';

export type RopeScaling =
  | { readonly type: 'default' }
  | { readonly type: 'linear'; readonly factor: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositionEmbeddings: number;
    }
  /**
   * Per-frequency divisors of inv_freq, as GGUF files carry Llama 3 scaling (`rope_freqs.weight`,
   * headDim/2 values) instead of its parameters.
   */
  | { readonly type: 'factors'; readonly factors: readonly number[] };

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (always for Qwen2; `attention_bias` for Llama and Qwen3). */
  readonly attentionBias: boolean;
  /** o_proj carries a bias: Llama and Qwen3 tie it to `attention_bias`, Qwen2 never has one. */
  readonly attentionOutputBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  readonly qkNorm: boolean;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}

type Json = Readonly<Record<string, unknown>>;

const ARCH_BY_CLASS: Readonly<Record<string, Architecture>> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(key: string, value: unknown, why: string): InvalidRequestError {
  return new InvalidRequestError(`config.json: ${key} ${why}`, { key, value });
}

function positiveInt(json: Json, key: string, fallback?: number): number {
  const value = json[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw bad(key, value, 'must be a positive integer');
  }
  return value;
}

function positiveNumber(json: Json, key: string, fallback?: number): number {
  const value = json[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw bad(key, value, 'must be a positive finite number');
  }
  return value;
}

function bool(json: Json, key: string, fallback: boolean): boolean {
  const value = json[key] ?? fallback;
  if (typeof value !== 'boolean') throw bad(key, value, 'must be a boolean');
  return value;
}

function tokenId(value: unknown, key: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw bad(key, value, 'must be a non-negative integer token id');
  }
  return value;
}

function detectArchitecture(json: Json): Architecture {
  const modelType = json['model_type'];
  if (modelType === 'llama' || modelType === 'qwen2' || modelType === 'qwen3') return modelType;
  const classes = json['architectures'];
  const first: unknown = Array.isArray(classes) ? classes[0] : undefined;
  if (typeof first === 'string' && first in ARCH_BY_CLASS) return ARCH_BY_CLASS[first];
  throw new UnsupportedModelError(
    `Unsupported architecture: model_type=${String(modelType)}, architectures=${JSON.stringify(classes ?? null)}`,
    { modelType, architectures: classes },
  );
}

/** Features of the HF classes we do not implement; each would change the math if ignored. */
function rejectUnsupportedFeatures(json: Json): void {
  const act = json['hidden_act'] ?? 'silu';
  if (act !== 'silu') {
    throw new UnsupportedModelError(`Unsupported hidden_act ${String(act)}`, { hiddenAct: act });
  }
  if (json['mlp_bias'] === true) {
    throw new UnsupportedModelError('mlp_bias is not supported', { mlpBias: true });
  }
  if (json['use_sliding_window'] === true) {
    throw new UnsupportedModelError('sliding-window attention is not supported', { useSlidingWindow: true });
  }
}

/** Transformers v5 moves rope_theta and the scaling into `rope_parameters`; v4 uses the top level. */
function ropeSource(json: Json): { theta: unknown; scaling: unknown } {
  const params = json['rope_parameters'];
  if (isObject(params)) return { theta: params['rope_theta'] ?? json['rope_theta'], scaling: params };
  return { theta: json['rope_theta'], scaling: json['rope_scaling'] };
}

function parseRopeScaling(raw: unknown): RopeScaling {
  if (raw === null || raw === undefined) return Object.freeze({ type: 'default' });
  if (!isObject(raw)) throw bad('rope_scaling', raw, 'must be an object or null');
  const type = raw['rope_type'] ?? raw['type'] ?? 'default';
  switch (type) {
    case 'default':
      return Object.freeze({ type: 'default' });
    case 'linear':
      return Object.freeze({ type: 'linear', factor: positiveNumber(raw, 'factor') });
    case 'llama3':
      return parseLlama3Scaling(raw);
    default:
      throw new UnsupportedModelError(`Unsupported rope scaling type ${String(type)}`, { ropeType: type });
  }
}

function parseLlama3Scaling(raw: Json): RopeScaling {
  const lowFreqFactor = positiveNumber(raw, 'low_freq_factor');
  const highFreqFactor = positiveNumber(raw, 'high_freq_factor');
  // HF divides by (high - low) when smoothing; equal factors would divide by zero.
  if (highFreqFactor <= lowFreqFactor) {
    throw bad('rope_scaling.high_freq_factor', highFreqFactor, 'must exceed low_freq_factor');
  }
  return Object.freeze({
    type: 'llama3',
    factor: positiveNumber(raw, 'factor'),
    lowFreqFactor,
    highFreqFactor,
    originalMaxPositionEmbeddings: positiveInt(raw, 'original_max_position_embeddings'),
  });
}

function parseEosIds(value: unknown): readonly number[] {
  if (value === null || value === undefined) return Object.freeze([]);
  const list = Array.isArray(value) ? value : [value];
  return Object.freeze(list.map((v) => tokenId(v, 'eos_token_id')));
}

function parseBosId(value: unknown): number | null {
  return value === null || value === undefined ? null : tokenId(value, 'bos_token_id');
}

interface AttentionShape {
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

function parseAttentionShape(json: Json, hiddenSize: number): AttentionShape {
  const nHeads = positiveInt(json, 'num_attention_heads');
  const nKvHeads = positiveInt(json, 'num_key_value_heads', nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new InvalidRequestError('config.json: num_attention_heads must be a multiple of num_key_value_heads', {
      nHeads,
      nKvHeads,
    });
  }
  // Qwen3 states head_dim explicitly and it need not equal hidden/heads; others derive it.
  if (json['head_dim'] === undefined || json['head_dim'] === null) {
    if (hiddenSize % nHeads !== 0) throw bad('hidden_size', hiddenSize, 'must be divisible by num_attention_heads');
  }
  const headDim = positiveInt(json, 'head_dim', hiddenSize / nHeads);
  // RoPE rotates pairs (i, i + headDim/2), so an odd head dim has no meaning.
  if (headDim % 2 !== 0) throw bad('head_dim', headDim, 'must be even');
  return { nHeads, nKvHeads, headDim };
}

/** Parse and validate an HF config.json (already JSON-decoded). */
export function parseModelConfig(json: unknown): ModelConfig {
  if (!isObject(json)) throw new InvalidRequestError('config.json must be a JSON object');
  const architecture = detectArchitecture(json);
  rejectUnsupportedFeatures(json);
  const hiddenSize = positiveInt(json, 'hidden_size');
  const rope = ropeSource(json);
  const attentionBias = architecture === 'qwen2' ? true : bool(json, 'attention_bias', false);
  return Object.freeze({
    architecture,
    vocabSize: positiveInt(json, 'vocab_size'),
    hiddenSize,
    intermediateSize: positiveInt(json, 'intermediate_size'),
    nLayers: positiveInt(json, 'num_hidden_layers'),
    ...parseAttentionShape(json, hiddenSize),
    rmsNormEps: positiveNumber(json, 'rms_norm_eps', 1e-6),
    ropeTheta: positiveNumber({ rope_theta: rope.theta }, 'rope_theta', 10000),
    ropeScaling: parseRopeScaling(rope.scaling),
    maxPositionEmbeddings: positiveInt(json, 'max_position_embeddings', 2048),
    // Llama/Qwen2/Qwen3 config classes all default this to false (unlike PretrainedConfig).
    tieWordEmbeddings: bool(json, 'tie_word_embeddings', false),
    attentionBias,
    attentionOutputBias: architecture === 'qwen2' ? false : attentionBias,
    qkNorm: architecture === 'qwen3',
    bosTokenId: parseBosId(json['bos_token_id']),
    eosTokenIds: parseEosIds(json['eos_token_id']),
  });
}

export interface CacheSpecOptions {
  readonly modelId: string;
  readonly fingerprint: string;
  readonly blockTokens?: number;
  readonly dtype?: KvDtype;
}

/** The KV-cache shape this model needs. */
export function toModelCacheSpec(config: ModelConfig, options: CacheSpecOptions): ModelCacheSpec {
  return createModelCacheSpec({
    modelId: options.modelId,
    fingerprint: options.fingerprint,
    nLayers: config.nLayers,
    nKvHeads: config.nKvHeads,
    headDim: config.headDim,
    blockTokens: options.blockTokens ?? DEFAULT_BLOCK_TOKENS,
    dtype: options.dtype ?? 'f32',
  });
}

import { describe, expect, it } from 'vitest';
import { InvalidRequestError, UnsupportedModelError } from '../src/domain/errors.ts';
import { parseModelConfig, toModelCacheSpec } from '../src/domain/model-config.ts';
import { modelTensorSpecs } from '../src/domain/model-tensors.ts';

// Abridged from HuggingFaceTB/SmolLM2-135M's config.json.
const SMOLLM2 = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 576,
  intermediate_size: 1536,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  vocab_size: 49152,
};

// Abridged from meta-llama/Llama-3.2-1B's config.json.
const LLAMA32 = {
  architectures: ['LlamaForCausalLM'],
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  vocab_size: 128256,
};

// Abridged from Qwen/Qwen2.5-0.5B's config.json (no attention_bias key: Qwen2 always has it).
const QWEN2 = {
  architectures: ['Qwen2ForCausalLM'],
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

// Abridged from Qwen/Qwen3-0.6B: head_dim 128 although hidden/heads = 64.
const QWEN3 = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_size: 1024,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  vocab_size: 151936,
};

describe('parseModelConfig', () => {
  it('normalizes a SmolLM2 (Llama) config', () => {
    const c = parseModelConfig(SMOLLM2);
    expect(c).toEqual({
      architecture: 'llama',
      vocabSize: 49152,
      hiddenSize: 576,
      intermediateSize: 1536,
      nLayers: 30,
      nHeads: 9,
      nKvHeads: 3,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 100000,
      ropeScaling: { type: 'default' },
      maxPositionEmbeddings: 8192,
      tieWordEmbeddings: true,
      attentionBias: false,
      attentionOutputBias: false,
      qkNorm: false,
      bosTokenId: 0,
      eosTokenIds: [0],
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.eosTokenIds)).toBe(true);
    expect(Object.isFrozen(c.ropeScaling)).toBe(true);
  });

  it('reads Llama 3.2 rope scaling and a list of eos ids', () => {
    const c = parseModelConfig(LLAMA32);
    expect(c.ropeScaling).toEqual({
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(c.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(c.headDim).toBe(64);
  });

  it('gives Qwen2 q/k/v bias (but no o_proj bias) without an attention_bias key', () => {
    const c = parseModelConfig(QWEN2);
    expect(c.architecture).toBe('qwen2');
    expect(c.attentionBias).toBe(true);
    expect(c.attentionOutputBias).toBe(false);
    expect(c.qkNorm).toBe(false);
    expect(c.headDim).toBe(64);
  });

  it('gives Qwen3 qk-norm and keeps its explicit head_dim', () => {
    const c = parseModelConfig(QWEN3);
    expect(c.architecture).toBe('qwen3');
    expect(c.qkNorm).toBe(true);
    expect(c.headDim).toBe(128);
    expect(c.attentionBias).toBe(false);
  });

  it('reads llama attention_bias for q/k/v and o_proj', () => {
    const c = parseModelConfig({ ...SMOLLM2, attention_bias: true });
    expect(c.attentionBias).toBe(true);
    expect(c.attentionOutputBias).toBe(true);
  });

  it('falls back to architectures[0] when model_type is missing', () => {
    const { model_type: _drop, ...rest } = QWEN2;
    expect(parseModelConfig(rest).architecture).toBe('qwen2');
  });

  it('applies defaults: kv heads = heads, theta 10000, untied, no bos/eos', () => {
    const c = parseModelConfig({
      model_type: 'llama',
      vocab_size: 10,
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      rms_norm_eps: 1e-6,
    });
    expect(c.nKvHeads).toBe(2);
    expect(c.headDim).toBe(4);
    expect(c.ropeTheta).toBe(10000);
    expect(c.tieWordEmbeddings).toBe(false);
    expect(c.bosTokenId).toBeNull();
    expect(c.eosTokenIds).toEqual([]);
  });

  it('accepts linear scaling and transformers-v5 rope_parameters', () => {
    expect(parseModelConfig({ ...SMOLLM2, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling).toEqual({
      type: 'linear',
      factor: 2,
    });
    const { rope_theta: _t, rope_scaling: _s, ...rest } = LLAMA32;
    const v5 = parseModelConfig({ ...rest, rope_parameters: { ...LLAMA32.rope_scaling, rope_theta: 500000 } });
    expect(v5.ropeTheta).toBe(500000);
    expect(v5.ropeScaling.type).toBe('llama3');
  });

  it('refuses unknown architectures and features with UnsupportedModelError', () => {
    expect(() => parseModelConfig({ ...SMOLLM2, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] })).toThrow(
      UnsupportedModelError,
    );
    expect(() => parseModelConfig({ ...SMOLLM2, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(
      UnsupportedModelError,
    );
    expect(() => parseModelConfig({ ...SMOLLM2, hidden_act: 'gelu' })).toThrow(UnsupportedModelError);
    expect(() => parseModelConfig({ ...SMOLLM2, mlp_bias: true })).toThrow(UnsupportedModelError);
    expect(() => parseModelConfig({ ...QWEN2, use_sliding_window: true })).toThrow(UnsupportedModelError);
  });

  it.each([
    ['not an object', [1, 2]],
    ['zero layers', { ...SMOLLM2, num_hidden_layers: 0 }],
    ['fractional vocab', { ...SMOLLM2, vocab_size: 10.5 }],
    ['string hidden size', { ...SMOLLM2, hidden_size: '576' }],
    ['heads not a multiple of kv heads', { ...SMOLLM2, num_key_value_heads: 4 }],
    ['hidden not divisible by heads', { ...SMOLLM2, hidden_size: 577 }],
    ['odd head_dim', { ...SMOLLM2, head_dim: 63 }],
    ['negative eps', { ...SMOLLM2, rms_norm_eps: -1 }],
    ['zero theta', { ...SMOLLM2, rope_theta: 0 }],
    ['negative eos', { ...SMOLLM2, eos_token_id: [2, -1] }],
    ['non-boolean tie', { ...SMOLLM2, tie_word_embeddings: 'yes' }],
    ['llama3 high <= low', { ...LLAMA32, rope_scaling: { ...LLAMA32.rope_scaling, high_freq_factor: 1 } }],
    ['llama3 missing factor', { ...LLAMA32, rope_scaling: { rope_type: 'llama3', low_freq_factor: 1 } }],
  ])('refuses %s with InvalidRequestError', (_label, json) => {
    expect(() => parseModelConfig(json)).toThrow(InvalidRequestError);
  });
});

describe('toModelCacheSpec', () => {
  it('takes layers, kv heads and head dim from the config', () => {
    const spec = toModelCacheSpec(parseModelConfig(QWEN3), { modelId: 'qwen3-0.6b', fingerprint: 'abc' });
    expect(spec).toEqual({
      modelId: 'qwen3-0.6b',
      fingerprint: 'abc',
      nLayers: 28,
      nKvHeads: 8,
      headDim: 128,
      blockTokens: 16,
      dtype: 'f32',
    });
    const custom = toModelCacheSpec(parseModelConfig(QWEN3), {
      modelId: 'm',
      fingerprint: 'f',
      blockTokens: 32,
      dtype: 'f16',
    });
    expect([custom.blockTokens, custom.dtype]).toEqual([32, 'f16']);
    expect(() => toModelCacheSpec(parseModelConfig(QWEN3), { modelId: 'm', fingerprint: 'f', blockTokens: 24 })).toThrow(
      InvalidRequestError,
    );
  });
});

describe('modelTensorSpecs', () => {
  it('lists HF names with [out, in] shapes and the optional tensors each architecture needs', () => {
    const names = (json: object) => modelTensorSpecs(parseModelConfig({ ...json, num_hidden_layers: 1 })).map((s) => s.name);
    expect(names(SMOLLM2)).not.toContain('lm_head.weight');
    expect(names({ ...SMOLLM2, tie_word_embeddings: false })).toContain('lm_head.weight');
    expect(names(QWEN2)).toContain('model.layers.0.self_attn.q_proj.bias');
    expect(names(QWEN2)).not.toContain('model.layers.0.self_attn.o_proj.bias');
    expect(names(QWEN3)).toContain('model.layers.0.self_attn.k_norm.weight');
    const q3 = modelTensorSpecs(parseModelConfig({ ...QWEN3, num_hidden_layers: 1 }));
    expect(q3.find((s) => s.name === 'model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([16 * 128, 1024]);
    expect(q3.find((s) => s.name === 'model.layers.0.self_attn.o_proj.weight')?.shape).toEqual([1024, 16 * 128]);
    expect(q3.find((s) => s.name === 'model.layers.0.mlp.down_proj.weight')?.shape).toEqual([1024, 3072]);
  });
});

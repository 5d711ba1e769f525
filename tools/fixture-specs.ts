/**
 * The three tiny test models: one per architecture the runtime supports, each exercising a
 * different combination of features (tied/untied embeddings, q/k/v bias, q/k norm, an explicit
 * head_dim, Llama 3 RoPE scaling, GQA ratios 2 and 3) and a different weight dtype.
 * Configs follow the field sets of Llama 3.2, Qwen2-Instruct and Qwen3 config.json files.
 */
import { LLAMA3_SPLIT_REGEX, QWEN2_SPLIT_REGEX } from './bpe.ts';
import { LLAMA3_CHAT_TEMPLATE, QWEN2_CHAT_TEMPLATE, QWEN3_CHAT_TEMPLATE } from './chat-templates.ts';
import type { AddedTokenSpec, Json } from './tokenizer-json.ts';

/** Byte-level BPE size shared by all fixtures: 256 bytes + 256 merges. Specials follow. */
export const BPE_VOCAB_SIZE = 512;
export const MAX_POSITIONS = 2048;

export type WeightDtype = 'F32' | 'F16' | 'BF16';

export interface FixtureSpec {
  readonly id: string;
  readonly architecture: string;
  readonly dtype: WeightDtype;
  readonly addedTokens: readonly AddedTokenSpec[];
  readonly splitRegex: string;
  readonly bosToken: string | null;
  readonly eosToken: string;
  readonly padToken: string;
  readonly ignoreMerges: boolean;
  readonly tokenizerClass: string;
  readonly chatTemplate: string;
  /** eos_token_id of generation_config.json, in order (it includes `eosToken`). */
  readonly generationEos: readonly string[];
  /** config.json fields that depend on the architecture; shared ones are added by `configJson`. */
  readonly archConfig: Readonly<Record<string, Json>>;
}

const special = (content: string): AddedTokenSpec => ({ content, special: true });

const LLAMA3_TOKENS: readonly AddedTokenSpec[] = [
  special('<|begin_of_text|>'),
  special('<|end_of_text|>'),
  special('<|start_header_id|>'),
  special('<|end_header_id|>'),
  special('<|eot_id|>'),
];

const CHATML_TOKENS: readonly AddedTokenSpec[] = [
  special('<|endoftext|>'),
  special('<|im_start|>'),
  special('<|im_end|>'),
];

// Qwen3 ships <think> and </think> as added tokens that are not special, so they survive
// skip_special_tokens when a reasoning trace is decoded.
const QWEN3_TOKENS: readonly AddedTokenSpec[] = [
  ...CHATML_TOKENS,
  { content: '<think>', special: false },
  { content: '</think>', special: false },
];

export function tokenId(spec: FixtureSpec, content: string): number {
  const index = spec.addedTokens.findIndex((t) => t.content === content);
  if (index < 0) throw new Error(`${spec.id}: no added token ${content}`);
  return BPE_VOCAB_SIZE + index;
}

export function vocabSize(spec: FixtureSpec): number {
  return BPE_VOCAB_SIZE + spec.addedTokens.length;
}

export const TINY_LLAMA: FixtureSpec = {
  id: 'tiny-llama',
  architecture: 'LlamaForCausalLM',
  dtype: 'F32',
  addedTokens: LLAMA3_TOKENS,
  splitRegex: LLAMA3_SPLIT_REGEX,
  bosToken: '<|begin_of_text|>',
  eosToken: '<|eot_id|>',
  padToken: '<|end_of_text|>',
  ignoreMerges: true,
  tokenizerClass: 'PreTrainedTokenizerFast',
  chatTemplate: LLAMA3_CHAT_TEMPLATE,
  generationEos: ['<|end_of_text|>', '<|eot_id|>'],
  archConfig: {
    model_type: 'llama',
    attention_bias: false,
    mlp_bias: false,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    // original_max_position_embeddings is tiny so that with head_dim 16 the three regimes of
    // Llama 3 scaling (kept, smoothed, divided by factor) all occur.
    rope_scaling: {
      factor: 8,
      high_freq_factor: 4,
      low_freq_factor: 1,
      original_max_position_embeddings: 64,
      rope_type: 'llama3',
    },
    tie_word_embeddings: true,
    pretraining_tp: 1,
  },
};

export const TINY_QWEN2: FixtureSpec = {
  id: 'tiny-qwen2',
  architecture: 'Qwen2ForCausalLM',
  dtype: 'F16',
  addedTokens: CHATML_TOKENS,
  splitRegex: QWEN2_SPLIT_REGEX,
  bosToken: null,
  eosToken: '<|im_end|>',
  padToken: '<|endoftext|>',
  ignoreMerges: false,
  tokenizerClass: 'Qwen2Tokenizer',
  chatTemplate: QWEN2_CHAT_TEMPLATE,
  generationEos: ['<|im_end|>', '<|endoftext|>'],
  archConfig: {
    model_type: 'qwen2',
    hidden_size: 96,
    intermediate_size: 192,
    num_hidden_layers: 2,
    // 6 query heads over 2 kv heads: a GQA group of 3, not a power of two.
    num_attention_heads: 6,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    rope_scaling: null,
    sliding_window: MAX_POSITIONS,
    use_sliding_window: false,
    max_window_layers: 2,
    tie_word_embeddings: false,
  },
};

export const TINY_QWEN3: FixtureSpec = {
  id: 'tiny-qwen3',
  architecture: 'Qwen3ForCausalLM',
  dtype: 'BF16',
  addedTokens: QWEN3_TOKENS,
  splitRegex: QWEN2_SPLIT_REGEX,
  bosToken: null,
  eosToken: '<|im_end|>',
  padToken: '<|endoftext|>',
  ignoreMerges: false,
  tokenizerClass: 'Qwen2Tokenizer',
  chatTemplate: QWEN3_CHAT_TEMPLATE,
  generationEos: ['<|im_end|>', '<|endoftext|>'],
  archConfig: {
    model_type: 'qwen3',
    attention_bias: false,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    // 4 heads x 32 = 128 != hidden 64: q_proj widens and o_proj narrows.
    head_dim: 32,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    rope_scaling: null,
    sliding_window: null,
    use_sliding_window: false,
    max_window_layers: 3,
    tie_word_embeddings: true,
  },
};

export const FIXTURES: readonly FixtureSpec[] = [TINY_LLAMA, TINY_QWEN2, TINY_QWEN3];

const TORCH_DTYPE: Readonly<Record<WeightDtype, string>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

function eosIds(spec: FixtureSpec): number[] {
  return spec.generationEos.map((t) => tokenId(spec, t));
}

/** config.json: shared fields, then the architecture's, then ids; keys sorted as HF writes them. */
export function configJson(spec: FixtureSpec): Record<string, Json> {
  const eos = eosIds(spec);
  const config: Record<string, Json> = {
    architectures: [spec.architecture],
    attention_dropout: 0,
    bos_token_id: spec.bosToken === null ? tokenId(spec, spec.padToken) : tokenId(spec, spec.bosToken),
    eos_token_id: spec.architecture === 'LlamaForCausalLM' ? eos : tokenId(spec, spec.eosToken),
    hidden_act: 'silu',
    initializer_range: 0.02,
    max_position_embeddings: MAX_POSITIONS,
    torch_dtype: TORCH_DTYPE[spec.dtype],
    transformers_version: '4.51.0',
    use_cache: true,
    vocab_size: vocabSize(spec),
    ...spec.archConfig,
  };
  return sortKeys(config);
}

export function generationConfigJson(spec: FixtureSpec): Record<string, Json> {
  const bos = spec.bosToken ?? spec.padToken;
  return {
    bos_token_id: tokenId(spec, bos),
    eos_token_id: eosIds(spec),
    pad_token_id: tokenId(spec, spec.padToken),
    transformers_version: '4.51.0',
  };
}

function sortKeys(obj: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const key of Object.keys(obj).sort()) out[key] = obj[key];
  return out;
}

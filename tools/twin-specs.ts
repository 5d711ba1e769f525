/**
 * The config.json and generation_config.json of four real Hugging Face models, written from the
 * files their repos publish (field for field, at full layer count). `tools/twins.ts` cuts the
 * layer count and fills the weights with random numbers: a "twin" has the real shapes, tying,
 * biases, norms and RoPE settings, so tests and the memory table run on the shapes users load.
 * Every one of these checkpoints is bfloat16 on the hub.
 */
import type { Json } from './tokenizer-json.ts';

export interface TwinSpec {
  /** Short id used for folder names and the opt-in list (SEMANTIC_TWINS). */
  readonly id: string;
  /** The Hugging Face repo the config comes from. */
  readonly hubId: string;
  readonly config: Readonly<Record<string, Json>>;
  readonly generationConfig: Readonly<Record<string, Json>>;
  /** tokenizer_config.json's add_bos_token (what the tokenizer does without a chat template). */
  readonly addBosToken: boolean;
}

export const SMOLLM2_135M: TwinSpec = {
  id: 'smollm2-135m',
  hubId: 'HuggingFaceTB/SmolLM2-135M-Instruct',
  config: {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 576,
    initializer_range: 0.041666666666666664,
    intermediate_size: 1536,
    is_llama_config: true,
    max_position_embeddings: 8192,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: 9,
    num_hidden_layers: 30,
    num_key_value_heads: 3,
    pad_token_id: 2,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_interleaved: false,
    rope_scaling: null,
    rope_theta: 100000,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    transformers_version: '4.42.3',
    use_cache: true,
    vocab_size: 49152,
  },
  generationConfig: { _from_model_config: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, transformers_version: '4.42.3' },
  // SmolLM2's tokenizer does not add <|im_start|>/BOS on its own; the chat template writes it.
  addBosToken: false,
};

export const QWEN25_05B: TwinSpec = {
  id: 'qwen2.5-0.5b',
  hubId: 'Qwen/Qwen2.5-0.5B-Instruct',
  config: {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    hidden_act: 'silu',
    hidden_size: 896,
    initializer_range: 0.02,
    intermediate_size: 4864,
    max_position_embeddings: 32768,
    max_window_layers: 21,
    model_type: 'qwen2',
    num_attention_heads: 14,
    num_hidden_layers: 24,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    sliding_window: 32768,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    transformers_version: '4.43.1',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 151936,
  },
  generationConfig: {
    bos_token_id: 151643,
    pad_token_id: 151643,
    do_sample: true,
    eos_token_id: [151645, 151643],
    repetition_penalty: 1.1,
    temperature: 0.7,
    top_p: 0.8,
    top_k: 20,
    transformers_version: '4.37.0',
  },
  addBosToken: false,
};

export const LLAMA32_1B: TwinSpec = {
  id: 'llama3.2-1b',
  hubId: 'meta-llama/Llama-3.2-1B-Instruct',
  config: {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0,
    bos_token_id: 128000,
    eos_token_id: [128001, 128008, 128009],
    head_dim: 64,
    hidden_act: 'silu',
    hidden_size: 2048,
    initializer_range: 0.02,
    intermediate_size: 8192,
    max_position_embeddings: 131072,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: 32,
    num_hidden_layers: 16,
    num_key_value_heads: 8,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: {
      factor: 32,
      high_freq_factor: 4,
      low_freq_factor: 1,
      original_max_position_embeddings: 8192,
      rope_type: 'llama3',
    },
    rope_theta: 500000,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    transformers_version: '4.45.0.dev0',
    use_cache: true,
    vocab_size: 128256,
  },
  generationConfig: {
    bos_token_id: 128000,
    do_sample: true,
    eos_token_id: [128001, 128008, 128009],
    temperature: 0.6,
    top_p: 0.9,
    transformers_version: '4.45.0.dev0',
  },
  // Llama 3's tokenizer.json adds <|begin_of_text|> in its TemplateProcessing post-processor.
  addBosToken: true,
};

export const QWEN3_06B: TwinSpec = {
  id: 'qwen3-0.6b',
  hubId: 'Qwen/Qwen3-0.6B',
  config: {
    architectures: ['Qwen3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    head_dim: 128,
    hidden_act: 'silu',
    hidden_size: 1024,
    initializer_range: 0.02,
    intermediate_size: 3072,
    max_position_embeddings: 40960,
    max_window_layers: 28,
    model_type: 'qwen3',
    num_attention_heads: 16,
    num_hidden_layers: 28,
    num_key_value_heads: 8,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000,
    sliding_window: null,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    transformers_version: '4.51.0',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 151936,
  },
  generationConfig: {
    bos_token_id: 151643,
    do_sample: true,
    eos_token_id: [151645, 151643],
    pad_token_id: 151643,
    temperature: 0.6,
    top_k: 20,
    top_p: 0.95,
    transformers_version: '4.51.0',
  },
  addBosToken: false,
};

export const TWINS: readonly TwinSpec[] = [SMOLLM2_135M, QWEN25_05B, LLAMA32_1B, QWEN3_06B];

export function twinSpec(id: string): TwinSpec {
  const spec = TWINS.find((t) => t.id === id);
  if (!spec) throw new Error(`no twin ${id}; known: ${TWINS.map((t) => t.id).join(', ')}`);
  return spec;
}

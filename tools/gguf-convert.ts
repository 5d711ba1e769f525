/**
 * An HF checkpoint (config.json, f32 tensors, tokenizer.json) to a GGUF file, as llama.cpp's
 * convert_hf_to_gguf.py lays it out, for the fixtures the llama.cpp oracle runs:
 *   - `<arch>.*` hyperparameters, `general.architecture`;
 *   - tensor names token_embd, blk.N.attn_q ... output_norm, output (ne = HF shape reversed);
 *   - `llama`: Q and K rows permuted per head from HF's rotate-half order to ggml's interleaved
 *     pairs; Llama 3 RoPE scaling as the `rope_freqs.weight` per-frequency divisors;
 *     `qwen2`/`qwen3`: unpermuted (NeoX RoPE);
 *   - the tokenizer as `tokenizer.ggml.*` (gpt2 byte-level BPE) and `tokenizer.chat_template`.
 * Every matrix is quantized to the type `recipe` picks; 1-D tensors stay F32, as llama.cpp keeps them.
 */
import type { GgmlTypeName } from '../src/domain/ggml-types.ts';
import { quantizeGgml } from './ggml-quantize.ts';
import type { GgufMetaValue, GgufTensorInput, GgufWriteInput } from './gguf-writer.ts';

type Json = Readonly<Record<string, unknown>>;

export interface HfTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface ConvertInput {
  readonly name: string;
  readonly config: Json;
  readonly tensors: ReadonlyMap<string, HfTensor>;
  readonly tokenizer: Json;
  readonly tokenizerConfig: Json;
  /** The ggml type of a matrix, by its GGUF name. */
  readonly recipe: (ggufName: string) => GgmlTypeName;
}

const num = (json: Json, key: string): number => {
  const v = json[key];
  if (typeof v !== 'number') throw new TypeError(`config.${key} must be a number`);
  return v;
};

/** HF tensor name -> GGUF tensor name (the llama/qwen2/qwen3 subset). */
export function ggufTensorName(hf: string): string {
  const fixed: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (hf in fixed) return fixed[hf];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (!m) throw new RangeError(`no GGUF name for ${hf}`);
  const parts: Record<string, string> = {
    'input_layernorm.weight': 'attn_norm.weight', 'post_attention_layernorm.weight': 'ffn_norm.weight',
    'self_attn.q_proj.weight': 'attn_q.weight', 'self_attn.k_proj.weight': 'attn_k.weight', 'self_attn.v_proj.weight': 'attn_v.weight',
    'self_attn.q_proj.bias': 'attn_q.bias', 'self_attn.k_proj.bias': 'attn_k.bias', 'self_attn.v_proj.bias': 'attn_v.bias',
    'self_attn.o_proj.weight': 'attn_output.weight', 'self_attn.q_norm.weight': 'attn_q_norm.weight', 'self_attn.k_norm.weight': 'attn_k_norm.weight',
    'mlp.gate_proj.weight': 'ffn_gate.weight', 'mlp.up_proj.weight': 'ffn_up.weight', 'mlp.down_proj.weight': 'ffn_down.weight',
  };
  const part = parts[m[2]];
  if (part === undefined) throw new RangeError(`no GGUF name for ${hf}`);
  return `blk.${m[1]}.${part}`;
}

/**
 * convert_hf_to_gguf.py's LlamaModel.permute: rows of each head go from [2, headDim/2] (the
 * halves HF rotates together) to [headDim/2, 2] (adjacent pairs, ggml's normal RoPE).
 */
export function permuteQk(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const hd = rows / heads;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let t = 0; t < 2; t++) {
        const from = (h * hd + t * (hd / 2) + i) * cols;
        out.set(data.subarray(from, from + cols), (h * hd + 2 * i + t) * cols);
      }
    }
  }
  return out;
}

/** Llama 3 RoPE scaling as llama.cpp stores it: inv_freq[i] is divided by factors[i]. */
export function llama3RopeFactors(config: Json, headDim: number): Float32Array {
  const s = config['rope_scaling'] as Json;
  const theta = num(config, 'rope_theta');
  const factor = num(s, 'factor'), low = num(s, 'low_freq_factor'), high = num(s, 'high_freq_factor');
  const oldLen = num(s, 'original_max_position_embeddings');
  return Float32Array.from({ length: headDim / 2 }, (_, i) => {
    const wavelen = (2 * Math.PI) * Math.pow(theta, (2 * i) / headDim);
    if (wavelen < oldLen / high) return 1;
    if (wavelen > oldLen / low) return factor;
    const smooth = (oldLen / wavelen - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

function hyperparameters(arch: string, c: Json, headDim: number): Record<string, GgufMetaValue> {
  const u32 = (value: number): GgufMetaValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufMetaValue => ({ type: 'f32', value });
  return {
    'general.architecture': { type: 'string', value: arch },
    [`${arch}.context_length`]: u32(num(c, 'max_position_embeddings')),
    [`${arch}.embedding_length`]: u32(num(c, 'hidden_size')),
    [`${arch}.block_count`]: u32(num(c, 'num_hidden_layers')),
    [`${arch}.feed_forward_length`]: u32(num(c, 'intermediate_size')),
    [`${arch}.attention.head_count`]: u32(num(c, 'num_attention_heads')),
    [`${arch}.attention.head_count_kv`]: u32(num(c, 'num_key_value_heads')),
    [`${arch}.attention.key_length`]: u32(headDim),
    [`${arch}.attention.value_length`]: u32(headDim),
    [`${arch}.rope.dimension_count`]: u32(headDim),
    [`${arch}.rope.freq_base`]: f32(num(c, 'rope_theta')),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(num(c, 'rms_norm_eps')),
    [`${arch}.vocab_size`]: u32(num(c, 'vocab_size')),
  };
}

/** tokenizer.json (byte-level BPE) as tokenizer.ggml.* keys. */
export function tokenizerMetadata(arch: string, tok: Json, tokConfig: Json, config: Json): Record<string, GgufMetaValue> {
  const model = tok['model'] as { vocab: Record<string, number>; merges: Array<string | [string, string]> };
  const added = tok['added_tokens'] as Array<{ id: number; content: string; special: boolean }>;
  const size = num(config, 'vocab_size');
  const tokens: string[] = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types: number[] = Array.from({ length: size }, () => 5); // unused
  for (const [t, id] of Object.entries(model.vocab)) { tokens[id] = t; types[id] = 1; }
  for (const a of added) { tokens[a.id] = a.content; types[a.id] = a.special ? 3 : 4; }
  const idOf = (key: string): number | undefined => {
    const v = tokConfig[key];
    const text = typeof v === 'string' ? v : (v as { content?: string } | null | undefined)?.content;
    return text === undefined ? undefined : tokens.indexOf(text);
  };
  const out: Record<string, GgufMetaValue> = {
    'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
    'tokenizer.ggml.pre': { type: 'string', value: arch === 'llama' ? 'llama-bpe' : 'qwen2' },
    'tokenizer.ggml.tokens': { type: 'array', elem: 'string', value: tokens },
    'tokenizer.ggml.token_type': { type: 'array', elem: 'i32', value: types },
    'tokenizer.ggml.merges': { type: 'array', elem: 'string', value: model.merges.map((m) => (typeof m === 'string' ? m : m.join(' '))) },
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: tokConfig['add_bos_token'] === true },
    'tokenizer.chat_template': { type: 'string', value: String(tokConfig['chat_template']) },
  };
  const ids: Array<[string, number | undefined]> = [
    ['bos_token_id', idOf('bos_token') ?? (typeof config['bos_token_id'] === 'number' ? config['bos_token_id'] : undefined)],
    ['eos_token_id', idOf('eos_token')],
    ['padding_token_id', idOf('pad_token')],
  ];
  for (const [key, id] of ids) if (id !== undefined && id >= 0) out[`tokenizer.ggml.${key}`] = { type: 'u32', value: id };
  return out;
}

export function convertToGguf(input: ConvertInput): GgufWriteInput {
  const c = input.config;
  const arch = String(c['model_type']);
  const heads = num(c, 'num_attention_heads');
  const kvHeads = num(c, 'num_key_value_heads');
  const headDim = typeof c['head_dim'] === 'number' ? c['head_dim'] : num(c, 'hidden_size') / heads;
  const tensors: GgufTensorInput[] = [];
  const scaling = c['rope_scaling'] as Json | null | undefined;
  if (arch === 'llama' && scaling && scaling['rope_type'] === 'llama3') {
    tensors.push(tensor('rope_freqs.weight', [headDim / 2], llama3RopeFactors(c, headDim), 'F32'));
  }
  for (const [hf, t] of input.tensors) {
    const name = ggufTensorName(hf);
    let data = t.data;
    if (arch === 'llama' && /attn_[qk]\.weight$/.test(name)) {
      data = permuteQk(data, t.shape[0], t.shape[1], name.includes('attn_q') ? heads : kvHeads);
    }
    tensors.push(tensor(name, t.shape, data, t.shape.length === 1 ? 'F32' : input.recipe(name)));
  }
  return {
    metadata: {
      ...hyperparameters(arch, c, headDim),
      'general.name': { type: 'string', value: input.name },
      ...tokenizerMetadata(arch, input.tokenizer, input.tokenizerConfig, c),
    },
    tensors,
  };
}

function tensor(name: string, shape: readonly number[], data: Float32Array, type: GgmlTypeName): GgufTensorInput {
  return { name, ne: [...shape].reverse(), type, data: quantizeGgml(type, data) };
}

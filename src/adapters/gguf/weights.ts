/**
 * GGUF tensors under the runtime's (Hugging Face) names, still in their ggml block layout.
 *
 * llama.cpp's converter permutes the Q and K rows of `llama` models (within each head, row
 * t*hd/2 + i moves to 2i + t) so that ggml's interleaved RoPE applies; the runtime rotates
 * (i, i + hd/2) pairs as HF does, so we move the rows back. A row is a whole number of blocks,
 * so this moves row byte ranges and works on quantized data unchanged. qwen2/qwen3 are not
 * permuted (NeoX RoPE).
 */
import { InvalidRequestError } from '../../domain/errors.ts';
import { dequantizeGgml } from '../../domain/gguf-blocks.ts';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, layerPrefix } from '../../domain/model-tensors.ts';
import type { ModelConfig } from '../../domain/model-config.ts';
import type { ByteRangeSource } from '../../ports/outbound.ts';
import { readTensorBytes, type GgufFile, type GgufTensorInfo } from './reader.ts';

const LAYER_PARTS: Readonly<Record<string, string>> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'attn_output.bias': 'self_attn.o_proj.bias',
  'attn_q_norm.weight': 'self_attn.q_norm.weight',
  'attn_k_norm.weight': 'self_attn.k_norm.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};

/** Tensors that carry no weights of ours: RoPE factors are read into the config instead. */
export const ROPE_FREQS = 'rope_freqs.weight';

/** The HF name of a GGUF tensor, or undefined for one the runtime does not use. */
export function hfTensorName(gguf: string): string | undefined {
  if (gguf === 'token_embd.weight') return EMBED_TOKENS;
  if (gguf === 'output_norm.weight') return FINAL_NORM;
  if (gguf === 'output.weight') return LM_HEAD;
  const m = /^blk\.(\d+)\.(.+)$/.exec(gguf);
  const part = m ? LAYER_PARTS[m[2]] : undefined;
  return m && part ? `${layerPrefix(Number(m[1]))}${part}` : undefined;
}

/** One weight tensor, in its file's block layout, rows in HF order. */
export interface GgufWeight {
  readonly name: string;
  readonly ggufName: string;
  /** Row-major, outermost first. */
  readonly shape: readonly number[];
  /** ggml type name (Q4_K, F16, ...). */
  readonly type: string;
  readonly bytes: Uint8Array;
}

/** Undo the converter's per-head row permutation of a [heads*hd, cols] matrix (any row layout). */
export function unpermuteRows(bytes: Uint8Array, rows: number, heads: number): Uint8Array {
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0 || bytes.length % rows !== 0) {
    throw new InvalidRequestError('gguf: Q/K rows do not split into heads of even size', { rows, heads });
  }
  const hd = rows / heads;
  const rowBytes = bytes.length / rows;
  const out = new Uint8Array(bytes.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let t = 0; t < 2; t++) {
        const from = (h * hd + 2 * i + t) * rowBytes;
        out.set(bytes.subarray(from, from + rowBytes), (h * hd + t * (hd / 2) + i) * rowBytes);
      }
    }
  }
  return out;
}

function permutedHeads(config: ModelConfig, gguf: string): number | undefined {
  if (config.architecture !== 'llama') return undefined;
  if (/^blk\.\d+\.attn_q\.(weight|bias)$/.test(gguf)) return config.nHeads;
  if (/^blk\.\d+\.attn_k\.(weight|bias)$/.test(gguf)) return config.nKvHeads;
  return undefined;
}

/** Read one weight: its bytes from the source, rows back in HF order. */
export async function readGgufWeight(source: ByteRangeSource, config: ModelConfig, info: GgufTensorInfo): Promise<GgufWeight | undefined> {
  const name = hfTensorName(info.name);
  if (name === undefined) return undefined;
  let bytes = await readTensorBytes(source, info);
  const heads = permutedHeads(config, info.name);
  if (heads !== undefined) bytes = unpermuteRows(bytes, info.shape[0], heads);
  return { name, ggufName: info.name, shape: info.shape, type: info.type.name, bytes };
}

/** The f32 values of a weight (the CPU reference's view of it). */
export function dequantizeWeight(w: GgufWeight): Float32Array {
  return dequantizeGgml(w.type, w.bytes, w.shape.reduce((a, b) => a * b, 1), w.ggufName);
}

/** `rope_freqs.weight` as numbers, when the file has it. */
export async function readRopeFactors(source: ByteRangeSource, file: GgufFile): Promise<number[] | undefined> {
  const info = file.tensors.find((t) => t.name === ROPE_FREQS);
  if (info === undefined) return undefined;
  return [...dequantizeGgml(info.type.name, await readTensorBytes(source, info), info.elements, info.name)];
}

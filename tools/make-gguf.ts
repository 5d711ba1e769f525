/**
 * Writes the GGUF fixtures the llama.cpp oracle and the GGUF loader tests run, under
 * public/models/gguf (or `--out DIR`):
 *   npx tsx tools/make-gguf.ts [--out DIR]
 *   tiny-llama-q8_0.gguf   tiny-llama (llama: permuted Q/K, Llama 3 rope_freqs), every matrix Q8_0
 *   tiny-qwen2-q4_0.gguf   tiny-qwen2 (q/k/v bias, NeoX RoPE), every matrix Q4_0
 *   tiny-qwen3-q8_0.gguf   tiny-qwen3 (q/k norm, head_dim 32 != hidden/heads), Q8_0
 *   llama-k-mix.gguf       a llama whose rows are 256 or 512 long (K-quants need multiples of 256),
 *                          random weights; Q4_K/Q6_K as Q4_K_M mixes them, plus one tensor of each
 *                          other type (Q5_K, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16)
 *   qwen2-k-mix.gguf       a qwen2 (q/k/v bias, not permuted) with 256/512-long rows, random
 *                          weights; Q4_K/Q6_K as Q4_K_M mixes them, Q8_0 and Q4_0 in layer 1
 * Deterministic: the inputs are the committed fixtures and seeded weights.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, tensorToFloat32 } from '../src/adapters/safetensors/index.ts';
import type { GgmlTypeName } from '../src/domain/ggml-types.ts';
import { fixtureTensors } from './fixture-weights.ts';
import { convertToGguf, type HfTensor } from './gguf-convert.ts';
import { writeGguf } from './gguf-writer.ts';

const MODELS = join(import.meta.dirname, '..', 'public', 'models');
type Json = Record<string, unknown>;
const readJson = (path: string): Json => JSON.parse(readFileSync(path, 'utf8')) as Json;

function hfTensors(dir: string): Map<string, HfTensor> {
  const file = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
  return new Map([...file.tensors].map(([name, t]) => [name, { shape: t.shape, data: tensorToFloat32(t) }]));
}

/** The K-quant mix: Q4_K_M's choices (Q6_K for attn_v, ffn_down, output), one odd type per slot in layer 1. */
const K_MIX: Readonly<Record<string, GgmlTypeName>> = {
  'token_embd.weight': 'Q4_K', 'output.weight': 'Q6_K',
  'blk.0.attn_q.weight': 'Q4_K', 'blk.0.attn_k.weight': 'Q4_K', 'blk.0.attn_v.weight': 'Q6_K', 'blk.0.attn_output.weight': 'F16',
  'blk.0.ffn_gate.weight': 'Q4_K', 'blk.0.ffn_up.weight': 'Q4_K', 'blk.0.ffn_down.weight': 'Q6_K',
  'blk.1.attn_q.weight': 'Q5_0', 'blk.1.attn_k.weight': 'Q4_0', 'blk.1.attn_v.weight': 'Q8_0', 'blk.1.attn_output.weight': 'Q5_1',
  'blk.1.ffn_gate.weight': 'Q5_K', 'blk.1.ffn_up.weight': 'Q4_1', 'blk.1.ffn_down.weight': 'BF16',
};

/** A qwen2 (biases, NeoX RoPE) K-quant mix: Q4_K_M's choices in layer 0, Q8_0/Q4_0 next to K-quants in layer 1. */
const QWEN2_K_MIX: Readonly<Record<string, GgmlTypeName>> = {
  'token_embd.weight': 'Q4_K', 'output.weight': 'Q6_K',
  'blk.0.attn_q.weight': 'Q4_K', 'blk.0.attn_k.weight': 'Q4_K', 'blk.0.attn_v.weight': 'Q6_K', 'blk.0.attn_output.weight': 'Q4_K',
  'blk.0.ffn_gate.weight': 'Q4_K', 'blk.0.ffn_up.weight': 'Q4_K', 'blk.0.ffn_down.weight': 'Q6_K',
  'blk.1.attn_q.weight': 'Q8_0', 'blk.1.attn_k.weight': 'Q4_0', 'blk.1.attn_v.weight': 'Q6_K', 'blk.1.attn_output.weight': 'Q4_0',
  'blk.1.ffn_gate.weight': 'Q4_K', 'blk.1.ffn_up.weight': 'Q8_0', 'blk.1.ffn_down.weight': 'Q6_K',
};

interface GgufFixture {
  readonly file: string;
  readonly source: string;
  readonly recipe: (name: string) => GgmlTypeName;
  readonly config?: (base: Json) => Json;
}

export const GGUF_FIXTURES: readonly GgufFixture[] = [
  { file: 'tiny-llama-q8_0.gguf', source: 'tiny-llama', recipe: () => 'Q8_0' },
  { file: 'tiny-qwen2-q4_0.gguf', source: 'tiny-qwen2', recipe: () => 'Q4_0' },
  { file: 'tiny-qwen3-q8_0.gguf', source: 'tiny-qwen3', recipe: () => 'Q8_0' },
  {
    file: 'llama-k-mix.gguf',
    source: 'tiny-llama',
    recipe: (name) => K_MIX[name] ?? 'Q8_0',
    config: (base) => ({ ...base, hidden_size: 256, intermediate_size: 512, head_dim: 64, tie_word_embeddings: false }),
  },
  {
    file: 'qwen2-k-mix.gguf',
    source: 'tiny-qwen2',
    recipe: (name) => QWEN2_K_MIX[name] ?? 'Q8_0',
    config: (base) => ({ ...base, hidden_size: 256, intermediate_size: 512, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: false }),
  },
];

export function buildGguf(fixture: GgufFixture): Uint8Array {
  const dir = join(MODELS, fixture.source);
  const base = readJson(join(dir, 'config.json'));
  const config = fixture.config ? fixture.config(base) : base;
  const tensors = fixture.config
    ? new Map(Object.entries(fixtureTensors(fixture.file, config as Parameters<typeof fixtureTensors>[1], 'F32')).map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }]))
    : hfTensors(dir);
  return writeGguf(convertToGguf({
    name: fixture.file.replace(/\.gguf$/, ''),
    config,
    tensors,
    tokenizer: readJson(join(dir, 'tokenizer.json')),
    tokenizerConfig: readJson(join(dir, 'tokenizer_config.json')),
    recipe: fixture.recipe,
  }));
}

if (process.argv[1]?.endsWith('make-gguf.ts')) {
  const at = process.argv.indexOf('--out');
  const out = at > 0 ? process.argv[at + 1] : join(MODELS, 'gguf');
  mkdirSync(out, { recursive: true });
  for (const f of GGUF_FIXTURES) {
    const bytes = buildGguf(f);
    writeFileSync(join(out, f.file), bytes);
    console.log(`${f.file}: ${bytes.length} bytes`);
  }
}

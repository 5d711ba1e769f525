import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensors, tensorToFloat32, type SafetensorsFile } from '../src/adapters/safetensors/index.ts';
import { buildFixtureTree, MANIFEST_NAME } from '../tools/generate-fixtures.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODELS = join(ROOT, 'public', 'models');
const FILES = [
  'README.md',
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];

type JsonObject = Record<string, unknown>;

interface IndexEntry {
  readonly id: string;
  readonly architecture: string;
  readonly modelType: string;
  readonly dtype: 'F32' | 'F16' | 'BF16';
  readonly path: string;
}

function readJson(path: string): JsonObject {
  return JSON.parse(readFileSync(path, 'utf8')) as JsonObject;
}

const INDEX = readJson(join(MODELS, 'index.json'))['models'] as IndexEntry[];
const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

function int(config: JsonObject, key: string): number {
  const value = config[key];
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${key} is not an integer`);
  return value;
}

/** The tensors an HF checkpoint of this config must hold, written out independently of tools/. */
function expectedTensors(config: JsonObject): Map<string, number[]> {
  const hidden = int(config, 'hidden_size');
  const heads = int(config, 'num_attention_heads');
  const headDim = typeof config['head_dim'] === 'number' ? config['head_dim'] : hidden / heads;
  const q = heads * headDim;
  const kv = int(config, 'num_key_value_heads') * headDim;
  const inter = int(config, 'intermediate_size');
  const vocab = int(config, 'vocab_size');
  const bias = config['model_type'] === 'qwen2' || config['attention_bias'] === true;
  const out = new Map<string, number[]>([['model.embed_tokens.weight', [vocab, hidden]]]);
  for (let i = 0; i < int(config, 'num_hidden_layers'); i++) {
    const p = `model.layers.${i}.`;
    out.set(`${p}input_layernorm.weight`, [hidden]);
    out.set(`${p}post_attention_layernorm.weight`, [hidden]);
    out.set(`${p}self_attn.q_proj.weight`, [q, hidden]);
    out.set(`${p}self_attn.k_proj.weight`, [kv, hidden]);
    out.set(`${p}self_attn.v_proj.weight`, [kv, hidden]);
    out.set(`${p}self_attn.o_proj.weight`, [hidden, q]);
    if (bias) {
      out.set(`${p}self_attn.q_proj.bias`, [q]);
      out.set(`${p}self_attn.k_proj.bias`, [kv]);
      out.set(`${p}self_attn.v_proj.bias`, [kv]);
    }
    if (config['model_type'] === 'qwen3') {
      out.set(`${p}self_attn.q_norm.weight`, [headDim]);
      out.set(`${p}self_attn.k_norm.weight`, [headDim]);
    }
    out.set(`${p}mlp.gate_proj.weight`, [inter, hidden]);
    out.set(`${p}mlp.up_proj.weight`, [inter, hidden]);
    out.set(`${p}mlp.down_proj.weight`, [hidden, inter]);
  }
  out.set('model.norm.weight', [hidden]);
  if (config['tie_word_embeddings'] !== true) out.set('lm_head.weight', [vocab, hidden]);
  return out;
}

function stats(values: Float32Array): { mean: number; std: number } {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / values.length) };
}

it('lists the three fixtures in index.json', () => {
  expect(INDEX.map((m) => [m.id, m.architecture, m.dtype])).toEqual([
    ['tiny-llama', 'LlamaForCausalLM', 'F32'],
    ['tiny-qwen2', 'Qwen2ForCausalLM', 'F16'],
    ['tiny-qwen3', 'Qwen3ForCausalLM', 'BF16'],
  ]);
});

describe.each(INDEX)('fixture $id', (entry) => {
  const dir = join(MODELS, entry.id);
  let config: JsonObject;
  let weights: SafetensorsFile;

  beforeAll(() => {
    config = readJson(join(dir, 'config.json'));
    weights = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
  });

  it('has every file', () => {
    for (const name of FILES) expect(existsSync(join(dir, name)), name).toBe(true);
  });

  it('has a config within the fixture limits that agrees with index.json', () => {
    expect(config['architectures']).toEqual([entry.architecture]);
    expect(config['model_type']).toBe(entry.modelType);
    expect(config['torch_dtype']).toBe(TORCH_DTYPE[entry.dtype]);
    expect(int(config, 'hidden_size')).toBeLessThanOrEqual(128);
    expect(int(config, 'num_hidden_layers')).toBeLessThanOrEqual(4);
    expect(int(config, 'vocab_size')).toBeLessThanOrEqual(1024);
    expect(int(config, 'num_attention_heads') % int(config, 'num_key_value_heads')).toBe(0);
    expect(int(config, 'max_position_embeddings')).toBe(2048);
    for (const key of ['rms_norm_eps', 'rope_theta', 'intermediate_size']) {
      expect(config[key], key).toBeGreaterThan(0);
    }
    expect(config['hidden_act']).toBe('silu');
    expect(config['use_sliding_window'] ?? false).toBe(false);
  });

  it('names its bos/eos ids consistently with the tokenizer files', () => {
    const generation = readJson(join(dir, 'generation_config.json'));
    const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'));
    const added = (readJson(join(dir, 'tokenizer.json'))['added_tokens'] as Array<{ id: number; content: string }>)
      .map((t) => [t.content, t.id] as const);
    const ids = new Map(added);
    const eosId = ids.get(tokenizerConfig['eos_token'] as string);
    expect(generation['eos_token_id']).toContain(eosId);
    expect([config['eos_token_id']].flat()).toContain(eosId);
    expect(generation['bos_token_id']).toBe(config['bos_token_id']);
    expect(Math.max(...ids.values())).toBe(int(config, 'vocab_size') - 1);
  });

  it('holds exactly the tensors of its config, in its dtype', () => {
    const expected = expectedTensors(config);
    expect([...weights.tensors.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, shape] of expected) {
      const tensor = weights.tensors.get(name);
      expect(tensor?.shape, name).toEqual(shape);
      expect(tensor?.dtype, name).toBe(entry.dtype);
    }
    expect(weights.metadata).toEqual({ format: 'pt' });
  });

  it('has finite, non-degenerate weights at the intended scales', () => {
    for (const [name, tensor] of weights.tensors) {
      const values = tensorToFloat32(tensor);
      expect(values.every(Number.isFinite), name).toBe(true);
      const { mean, std } = stats(values);
      const fanIn = tensor.shape[tensor.shape.length - 1];
      // Small tensors (norms over 16 values) are noisy: loose bounds that still tell scales apart.
      if (name.endsWith('norm.weight')) {
        expect(mean, name).toBeGreaterThan(0.85);
        expect(mean, name).toBeLessThan(1.15);
        expect(std, name).toBeGreaterThan(0.04);
      } else if (name.endsWith('.bias')) {
        expect(std, name).toBeGreaterThan(0.04);
        expect(std, name).toBeLessThan(0.2);
      } else if (name === 'model.embed_tokens.weight') {
        expect(std, name).toBeCloseTo(weights.tensors.has('lm_head.weight') ? 1 : 0.1, 1);
      } else {
        expect(std * Math.sqrt(fanIn), name).toBeGreaterThan(0.9);
        expect(std * Math.sqrt(fanIn), name).toBeLessThan(1.1);
      }
    }
  });
});

describe('feature coverage', () => {
  const config = (id: string): JsonObject => readJson(join(MODELS, id, 'config.json'));

  it('ties embeddings for llama and qwen3, not for qwen2', () => {
    expect(config('tiny-llama')['tie_word_embeddings']).toBe(true);
    expect(config('tiny-qwen2')['tie_word_embeddings']).toBe(false);
    expect(config('tiny-qwen3')['tie_word_embeddings']).toBe(true);
  });

  it('gives qwen3 a head_dim that differs from hidden / heads', () => {
    const c = config('tiny-qwen3');
    expect(int(c, 'head_dim')).not.toBe(int(c, 'hidden_size') / int(c, 'num_attention_heads'));
  });

  it('uses Llama 3 RoPE scaling that keeps, smooths and divides frequencies', () => {
    const c = config('tiny-llama');
    const s = c['rope_scaling'] as JsonObject;
    expect(s['rope_type']).toBe('llama3');
    const headDim = int(c, 'head_dim');
    const original = int(s, 'original_max_position_embeddings');
    const lowWavelen = original / (s['low_freq_factor'] as number);
    const highWavelen = original / (s['high_freq_factor'] as number);
    const regimes = new Set<string>();
    for (let i = 0; i < headDim; i += 2) {
      const wavelen = (2 * Math.PI) / (c['rope_theta'] as number) ** (-i / headDim);
      regimes.add(wavelen < highWavelen ? 'kept' : wavelen > lowWavelen ? 'divided' : 'smoothed');
    }
    expect([...regimes].sort()).toEqual(['divided', 'kept', 'smoothed']);
  });
});

describe('regeneration', () => {
  it('reproduces every committed file byte for byte', () => {
    const tree = buildFixtureTree();
    for (const [path, bytes] of tree) {
      const committed = new Uint8Array(readFileSync(join(MODELS, ...path.split('/'))));
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(committed)), path).toBe(0);
    }
  });

  it('matches MANIFEST.sha256', () => {
    const lines = readFileSync(join(MODELS, MANIFEST_NAME), 'utf8').trim().split('\n');
    expect(lines.length).toBe(INDEX.length * FILES.length + 1);
    for (const line of lines) {
      const [hash, path] = line.split('  ');
      const actual = createHash('sha256').update(readFileSync(join(MODELS, path))).digest('hex');
      expect(actual, path).toBe(hash);
    }
  });
});

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CpuReferenceModel } from '../src/adapters/cpu/cpu-model.ts';
import { loadWeights } from '../src/adapters/cpu/load.ts';
import { argmax } from '../src/adapters/cpu/ops.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { loadCpuModel } from '../src/adapters/cpu/index.ts';
import { serializeSafetensors, type TensorInput } from '../src/adapters/safetensors/index.ts';
import { InvalidRequestError, ModelNotFoundError } from '../src/domain/errors.ts';
import { parseModelConfig, type ModelConfig } from '../src/domain/model-config.ts';
import { modelTensorSpecs, tensorElements } from '../src/domain/model-tensors.ts';
import type { ModelFileSource } from '../src/ports/outbound.ts';
import { mulberry32 as prng } from '../tools/prng.ts';


/** Random weights for every tensor the config needs: norms near 1, the rest uniform ±scale. */
function randomWeights(config: ModelConfig, seed: number, extra: string[] = []): Map<string, Float32Array> {
  const rand = prng(seed);
  const weights = new Map<string, Float32Array>();
  const specs = [...modelTensorSpecs(config), ...extra.map((name) => ({ name, shape: [config.vocabSize, config.hiddenSize] }))];
  for (const { name, shape } of specs) {
    const isNorm = name.endsWith('norm.weight');
    const scale = name.endsWith('.bias') ? 0.2 : 0.3;
    weights.set(
      name,
      Float32Array.from({ length: tensorElements(shape) }, () => (isNorm ? 1 + 0.2 * (rand() - 0.5) : scale * (2 * rand() - 1))),
    );
  }
  return weights;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function randomTokens(n: number, vocab: number, seed: number): number[] {
  const rand = prng(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}

const BASE = {
  vocab_size: 37,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
};

const VARIANTS: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
  ['llama, untied, GQA 4/2', { ...BASE, model_type: 'llama' }],
  ['llama, tied, attention_bias (q/k/v/o)', { ...BASE, model_type: 'llama', tie_word_embeddings: true, attention_bias: true }],
  [
    'llama, llama3 rope scaling, MHA',
    {
      ...BASE,
      model_type: 'llama',
      num_key_value_heads: 4,
      rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8 },
    },
  ],
  ['qwen2, q/k/v bias, MQA', { ...BASE, model_type: 'qwen2', num_key_value_heads: 1 }],
  ['qwen3, qk-norm, head_dim ≠ hidden/heads, tied', { ...BASE, model_type: 'qwen3', head_dim: 6, tie_word_embeddings: true }],
];

describe.each(VARIANTS)('CpuReferenceModel (%s)', (_label, json) => {
  const config = parseModelConfig(json);
  const model = new CpuReferenceModel(config, randomWeights(config, 1234));
  const tokens = randomTokens(12, config.vocabSize, 99);

  it('gives the same logits for a whole prefill, one token at a time, and uneven chunks', () => {
    const all = model.forward(tokens, model.createCache());
    expect(all.length).toBe(tokens.length * config.vocabSize);
    expect(all.every(Number.isFinite)).toBe(true);

    const stepCache = model.createCache(1); // capacity 1 forces the cache to grow repeatedly
    const stepwise = new Float32Array(all.length);
    tokens.forEach((t, i) => stepwise.set(model.forward([t], stepCache), i * config.vocabSize));
    expect(stepCache.length).toBe(tokens.length);
    expect(maxAbsDiff(all, stepwise)).toBeLessThanOrEqual(1e-5);

    const chunkCache = model.createCache();
    const chunked = new Float32Array(all.length);
    let at = 0;
    for (const size of [5, 1, 4, 2]) {
      chunked.set(model.forward(tokens.slice(at, at + size), chunkCache), at * config.vocabSize);
      at += size;
    }
    expect(maxAbsDiff(all, chunked)).toBeLessThanOrEqual(1e-5);
  });

  it('lastOnly returns the last row of the full logits', () => {
    const all = model.forward(tokens, model.createCache());
    const last = model.forward(tokens, model.createCache(), { lastOnly: true });
    expect(Array.from(last)).toEqual(Array.from(all.subarray(all.length - config.vocabSize)));
  });

  it('depends on earlier tokens and on their order (RoPE breaks attention\'s symmetry)', () => {
    const last = (ids: number[]) => model.forward(ids, model.createCache(), { lastOnly: true });
    expect(maxAbsDiff(last([1, 2, 3]), last([4, 2, 3]))).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(last([1, 2, 3]), last([2, 1, 3]))).toBeGreaterThan(1e-4);
  });

  it('generates greedily, deterministically, each token the argmax of its logits', () => {
    const prompt = tokens.slice(0, 5);
    const first = model.generateGreedy(prompt, 10, { eosTokenIds: [] });
    const second = model.generateGreedy(prompt, 10, { eosTokenIds: [] });
    expect(first.tokens).toHaveLength(10);
    expect(second.tokens).toEqual(first.tokens);
    first.logits.forEach((row, i) => expect(argmax(row)).toBe(first.tokens[i]));
    // The step logits are the prefill logits of the whole sequence, row by row.
    const full = model.forward([...prompt, ...first.tokens.slice(0, -1)], model.createCache());
    first.logits.forEach((row, i) => {
      const at = (prompt.length - 1 + i) * config.vocabSize;
      expect(maxAbsDiff(row, full.subarray(at, at + config.vocabSize))).toBeLessThanOrEqual(1e-5);
    });
  });

  it('stops at an EOS token and keeps it', () => {
    const prompt = tokens.slice(0, 5);
    const free = model.generateGreedy(prompt, 6, { eosTokenIds: [] });
    const stopped = model.generateGreedy(prompt, 6, { eosTokenIds: [free.tokens[2]] });
    const firstEos = free.tokens.indexOf(free.tokens[2]);
    expect(stopped.tokens).toEqual(free.tokens.slice(0, firstEos + 1));
    expect(model.generateGreedy(prompt, 0).tokens).toEqual([]);
  });
});

describe('CpuReferenceModel contracts', () => {
  const config = parseModelConfig({ ...BASE, model_type: 'llama', tie_word_embeddings: true });

  it('ties lm_head to embed_tokens, ignoring a stray lm_head tensor', () => {
    const weights = randomWeights(config, 7, ['lm_head.weight']);
    const model = new CpuReferenceModel(config, weights);
    expect(model.lmHeadWeight).toBe(weights.get('model.embed_tokens.weight'));
  });

  it('leaves the cache unchanged when a forward pass fails', () => {
    const model = new CpuReferenceModel(config, randomWeights(config, 7));
    const cache = model.createCache();
    const before = model.forward([1, 2], cache);
    expect(() => model.forward([3, config.vocabSize], cache)).toThrow(InvalidRequestError);
    expect(cache.length).toBe(2);
    const after = model.forward([3], cache);
    const reference = model.forward([1, 2, 3], model.createCache());
    expect(maxAbsDiff(after, reference.subarray(2 * config.vocabSize))).toBeLessThanOrEqual(1e-5);
    expect(before.length).toBe(2 * config.vocabSize);
  });

  it('refuses empty input, a bad maxNewTokens and a cache of another shape', () => {
    const model = new CpuReferenceModel(config, randomWeights(config, 7));
    expect(() => model.forward([], model.createCache())).toThrow(InvalidRequestError);
    expect(() => model.generateGreedy([], 3)).toThrow(InvalidRequestError);
    expect(() => model.generateGreedy([1], -1)).toThrow(InvalidRequestError);
    const other = parseModelConfig({ ...BASE, model_type: 'llama', num_hidden_layers: 1 });
    const otherModel = new CpuReferenceModel(other, randomWeights(other, 7));
    expect(() => model.forward([1], otherModel.createCache())).toThrow(InvalidRequestError);
  });

  it('clones and truncates a cache so a suffix can be re-run', () => {
    const model = new CpuReferenceModel(config, randomWeights(config, 7));
    const cache = model.createCache();
    model.forward([1, 2, 3], cache);
    const copy = cache.clone();
    const viaCopy = model.forward([9], copy);
    cache.truncate(2);
    model.forward([3], cache);
    expect(maxAbsDiff(model.forward([9], cache), viaCopy)).toBe(0);
  });
});

describe('FsModelSource', () => {
  it('throws ModelNotFoundError for a missing file or folder and refuses escaping names', async () => {
    const source = new FsModelSource('test/does-not-exist');
    await expect(source.read('config.json')).rejects.toBeInstanceOf(ModelNotFoundError);
    expect(await source.has('config.json')).toBe(false);
    await expect(loadCpuModel(source)).rejects.toBeInstanceOf(ModelNotFoundError);
    await expect(new FsModelSource('public/models').read('../package.json')).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
  });
});

/** Files held in memory, as a browser source would hand them over. */
class MemorySource implements ModelFileSource {
  readonly id = 'memory';
  constructor(private readonly files: ReadonlyMap<string, Uint8Array>) {}
  async read(name: string): Promise<Uint8Array> {
    const file = this.files.get(name);
    if (!file) throw new ModelNotFoundError(`${name} not in memory`);
    return file;
  }
  async has(name: string): Promise<boolean> {
    return this.files.has(name);
  }
}

describe('loadCpuModel from an in-memory source', () => {
  const json = { ...BASE, model_type: 'qwen2' };
  const config = parseModelConfig(json);
  const weights = randomWeights(config, 5);
  const shapes = new Map(modelTensorSpecs(config).map((s) => [s.name, s.shape]));
  const input = (name: string, shape = shapes.get(name) ?? []): TensorInput => ({
    dtype: 'F32',
    shape,
    data: weights.get(name) ?? new Float32Array(),
  });
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

  it('reads a sharded checkpoint through model.safetensors.index.json', async () => {
    const names = [...weights.keys()];
    const half = Math.ceil(names.length / 2);
    const shard = (part: string[]) => serializeSafetensors(new Map(part.map((n) => [n, input(n)])));
    const weightMap = Object.fromEntries(names.map((n, i) => [n, i < half ? 'a.safetensors' : 'b.safetensors']));
    const source = new MemorySource(
      new Map([
        ['config.json', encode(json)],
        ['model.safetensors.index.json', encode({ metadata: {}, weight_map: weightMap })],
        ['a.safetensors', shard(names.slice(0, half))],
        ['b.safetensors', shard(names.slice(half))],
      ]),
    );
    const loaded = await loadCpuModel(source);
    const direct = new CpuReferenceModel(config, weights);
    const ids = [1, 5, 9];
    expect(maxAbsDiff(loaded.model.forward(ids, loaded.model.createCache()), direct.forward(ids, direct.createCache()))).toBe(0);
  });

  it('refuses a tensor with the right element count but the wrong shape, naming it', async () => {
    const name = 'model.layers.0.mlp.down_proj.weight';
    const tensors = new Map([...weights.keys()].map((n) => [n, input(n)]));
    tensors.set(name, input(name, [config.intermediateSize, config.hiddenSize])); // transposed
    const source = new MemorySource(
      new Map([
        ['config.json', encode(json)],
        ['model.safetensors', serializeSafetensors(tensors)],
      ]),
    );
    await expect(loadCpuModel(source)).rejects.toThrow(/down_proj/);
    await expect(loadCpuModel(source)).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it('refuses a config.json that is not JSON', async () => {
    const source = new MemorySource(new Map([['config.json', new TextEncoder().encode('{nope')]]));
    await expect(loadCpuModel(source)).rejects.toBeInstanceOf(InvalidRequestError);
  });
});

const FIXTURES = ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'] as const;

describe.each(FIXTURES)('fixture %s on the CPU reference', (name) => {
  const folder = `public/models/${name}`;
  const present = existsSync(`${folder}/config.json`) && existsSync(`${folder}/model.safetensors`);

  it.skipIf(!present)('prefills 20 tokens and decodes 32 greedy steps consistently', async () => {
    const { config, model } = await loadCpuModel(new FsModelSource(folder));
    const prompt = randomTokens(20, Math.min(config.vocabSize, 512), 2024);
    const { tokens, logits } = model.generateGreedy(prompt, 32, { eosTokenIds: [] });
    expect(tokens).toHaveLength(32);
    for (const row of logits) {
      expect(row.every(Number.isFinite)).toBe(true);
      expect(Math.max(...row) - Math.min(...row)).toBeGreaterThan(1e-2);
    }
    // The context reaches the logits: they change from step to step, and another prompt
    // predicts another token.
    expect(maxAbsDiff(logits[0], logits[31])).toBeGreaterThan(1e-3);
    const other = model.generateGreedy(prompt.map((t) => (t + 1) % 512), 1, { eosTokenIds: [] });
    expect(other.tokens[0]).not.toBe(tokens[0]);
    // Random tied weights make a token's own embedding dominate its logits (e·e ≫ e·e'), so the
    // tied fixtures echo their last prompt token; only untied ones must vary their output.
    if (!config.tieWordEmbeddings) expect(new Set(tokens).size).toBeGreaterThan(1);

    // Same sequence as one prefill: rows 19.. must match the per-step logits.
    const full = model.forward([...prompt, ...tokens.slice(0, -1)], model.createCache());
    let worst = 0;
    logits.forEach((row, i) => {
      const at = (prompt.length - 1 + i) * config.vocabSize;
      worst = Math.max(worst, maxAbsDiff(row, full.subarray(at, at + config.vocabSize)));
    });
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  it.skipIf(!present)('ties lm_head to embed_tokens exactly when the config says so', async () => {
    const source = new FsModelSource(folder);
    const { config, model } = await loadCpuModel(source);
    const tensors = await loadWeights(source);
    const embed = tensors.get('model.embed_tokens.weight')?.data;
    const head = tensors.get('lm_head.weight')?.data;
    expect(embed).toBeDefined();
    if (config.tieWordEmbeddings) {
      expect(Array.from(model.lmHeadWeight)).toEqual(Array.from(embed ?? []));
      if (head) expect(Array.from(head)).toEqual(Array.from(embed ?? []));
    } else {
      expect(head).toBeDefined();
      expect(Array.from(model.lmHeadWeight)).toEqual(Array.from(head ?? []));
    }
  });
});

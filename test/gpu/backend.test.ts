import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { generateBatch, type BatchRequest } from './lockstep.ts';
import { loadCpuModel } from '../../src/adapters/cpu/index.ts';
import type { CpuLoadOptions } from '../../src/adapters/cpu/load.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { maxAbsDiff, testGpu } from './harness.ts';

/**
 * The whole WebGPU forward pass against the CPU reference, on the three fixtures, plus the
 * paging and batching invariances. Tolerance: max abs logit error ≤ 1e-3, for every KV dtype
 * and weight format, each against the CPU reference run on the same numbers: f32 KV against
 * exact K/V; f16 KV (the default) against a reference that rounds K/V to f16 as they are cached;
 * q8/q4 weights against the reference on the dequantized weights. Weights in their checkpoint
 * width (f32, f16, bf16) widen exactly, so the only difference left is f32 summation order.
 */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
const FIXTURES = ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'];
const TOL = 1e-3;

function prompt(seed: number, n: number, vocab = 500): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 131 + i * 17 + ((i * i) % 7)) % vocab);
}

async function backendFor(id: string, options: WebGpuBackendOptions = {}): Promise<{ backend: WebGpuBackend; pool: BlockPool }> {
  const t = await testGpu();
  const backend = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, id)), { kvBudgetBytes: 8 * 1024 * 1024, ...options });
  return { backend, pool: new BlockPool(backend.totalBlocks) };
}

async function parity(id: string, options: WebGpuBackendOptions, cpuOptions: CpuLoadOptions): Promise<void> {
  const { model } = await loadCpuModel(new FsModelSource(join(MODELS, id)), cpuOptions);
  const ids = prompt(3, 20);
  const cpu = model.generateGreedy(ids, 33, { eosTokenIds: [] });
  const { backend, pool } = await backendFor(id, options);
  const [gpu] = await generateBatch(backend, pool, [{ promptIds: ids, maxTokens: 33 }], { returnLogits: true });
  expect(gpu.tokens).toEqual(cpu.tokens);
  const errors = gpu.logits.map((row, i) => maxAbsDiff(row, cpu.logits[i]));
  console.log(`[parity] ${id} ${JSON.stringify(options)}: max |logit error| over prefill + 32 decode steps = ${Math.max(...errors).toExponential(2)}`);
  expect(Math.max(...errors)).toBeLessThanOrEqual(TOL);
  expect(pool.freeCount).toBe(pool.totalBlocks);
  backend.dispose();
}

describe.each(FIXTURES)('%s: WebGPU forward matches the CPU reference', (id) => {
  it('f32 KV: prefill of 20 tokens and 32 decode steps: logits within 1e-3, same greedy tokens', async () => {
    await parity(id, { kvDtype: 'f32' }, { kvDtype: 'f32' });
  });

  it('f16 KV (default): the same against the reference with f16-rounded K/V', async () => {
    await parity(id, {}, { kvDtype: 'f16' });
  });
});

describe.each([
  ['tiny-qwen2', 'q8'], // f16 checkpoint, untied lm_head
  ['tiny-qwen3', 'q4'], // bf16 checkpoint, tied embedding (one q4 table for both)
] as const)('%s with %s weights: WebGPU matches the CPU reference on the dequantized weights', (id, weights) => {
  it('logits within 1e-3 and the same greedy tokens (f16 KV)', async () => {
    await parity(id, { weights }, { weights, kvDtype: 'f16' });
  });
});

describe('paging and batching invariances (tiny-llama)', () => {
  let run: (reqs: BatchRequest[], opts?: WebGpuBackendOptions, chunk?: number) => Promise<{ tokens: number[]; logits: Float32Array[] }[]>;

  const backends = new Map<string, Promise<{ backend: WebGpuBackend; pool: BlockPool }>>();

  beforeAll(() => {
    // One backend per option set, reused across runs: every run starts from a pool with all
    // blocks free (generateBatch releases its blocks), so runs cannot influence each other.
    run = async (reqs, opts = {}, chunk) => {
      const key = JSON.stringify(opts);
      if (!backends.has(key)) backends.set(key, backendFor('tiny-llama', opts));
      const { backend, pool } = await (backends.get(key) as Promise<{ backend: WebGpuBackend; pool: BlockPool }>);
      expect(pool.freeCount).toBe(pool.totalBlocks);
      return generateBatch(backend, pool, reqs, { returnLogits: true, prefillChunk: chunk });
    };
  });

  afterAll(async () => {
    for (const b of backends.values()) (await b).backend.dispose();
  });

  it('block size 16 and one huge block give identical greedy tokens', async () => {
    const req = { promptIds: prompt(5, 37), maxTokens: 24 };
    const [paged] = await run([req], { blockTokens: 16 });
    const [dense] = await run([req], { blockTokens: 128 });
    expect(paged.tokens).toEqual(dense.tokens);
    expect(Math.max(...paged.logits.map((l, i) => maxAbsDiff(l, dense.logits[i])))).toBe(0);
  });

  it('scattered, non-contiguous blocks give the same tokens as contiguous ones', async () => {
    const ids = prompt(7, 30);
    const [contiguous] = await run([{ promptIds: ids, maxTokens: 20, blockTable: [0, 1, 2, 3] }], { blockTokens: 16 });
    const [scattered] = await run([{ promptIds: ids, maxTokens: 20, blockTable: [57, 3, 41, 12] }], { blockTokens: 16 });
    expect(scattered.tokens).toEqual(contiguous.tokens);
    expect(Math.max(...scattered.logits.map((l, i) => maxAbsDiff(l, contiguous.logits[i])))).toBe(0);
  });

  it('8 different prompts decoded together give the same greedy tokens as each alone', async () => {
    const reqs = Array.from({ length: 8 }, (_, i) => ({ promptIds: prompt(11 + i, 5 + i * 3), maxTokens: 12 }));
    const together = await run(reqs);
    const alone = [];
    for (const r of reqs) alone.push((await run([r]))[0]);
    expect(together.map((r) => r.tokens)).toEqual(alone.map((r) => r.tokens));
  });

  it('chunked prefill gives the same tokens as one-shot prefill', async () => {
    const req = { promptIds: prompt(13, 41), maxTokens: 10 };
    const [whole] = await run([req]);
    const [chunked] = await run([req], {}, 7);
    expect(chunked.tokens).toEqual(whole.tokens);
  });

  it('refuses a bad step with InvalidRequestError before any GPU work', async () => {
    const { backend } = await backendFor('tiny-llama');
    const sampling = { temperature: 0, topK: 0, topP: 1, seed: 0 };
    await expect(backend.forward([{ tokenIds: [99999], startPosition: 0, blockTable: [0], sample: true, sampling, sampleStep: 0 }])).rejects.toMatchObject({ name: 'InvalidRequestError' });
    await expect(backend.forward([{ tokenIds: [1, 2], startPosition: 15, blockTable: [0], sample: true, sampling, sampleStep: 0 }])).rejects.toMatchObject({ name: 'InvalidRequestError' });
    backend.dispose();
  });
});

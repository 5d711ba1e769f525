import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { parseModelConfig } from '../../src/domain/model-config.ts';
import { DEVICE_MEMORY_PER_MAX_BUFFER, MAX_DEFAULT_CONTEXTS } from '../../src/domain/kv-budget.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { nodeGpu } from '../../src/adapters/node/dawn.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { readJsonFile } from '../../src/adapters/safetensors/index.ts';
import { createGpuContext, type GpuContext } from '../../src/adapters/webgpu/device.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { testGpu } from './harness.ts';

/**
 * KV pool budgets (issue 9, item 4): bytes, a fraction of what the weights leave, or by default
 * a size derived from the adapter's limits and the weight bytes; a request larger than the whole
 * pool is refused at submit with the numbers; gpu_bytes.kv_pool is the pool's true size.
 */
const MODEL = join(import.meta.dirname, '..', '..', 'public', 'models', 'tiny-llama');
const MiB = 1 << 20;
const loaded: WebGpuBackend[] = [];
const devices: GpuContext[] = [];
afterAll(() => {
  for (const b of loaded) b.dispose();
  for (const d of devices) d.device.destroy();
});

async function load(gpu: GpuContext, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const b = await WebGpuBackend.load(gpu, new FsModelSource(MODEL), options);
  loaded.push(b);
  return b;
}

/** KV bytes per token from the config (f16: 2 bytes), all layers, K and V. */
async function tokenBytes(): Promise<{ perToken: number; maxContext: number }> {
  const c = parseModelConfig(await readJsonFile(new FsModelSource(MODEL), 'config.json'));
  return { perToken: 2 * c.nLayers * c.nKvHeads * c.headDim * 2, maxContext: c.maxPositionEmbeddings };
}

describe('KV pool budget', () => {
  it('default on a roomy device: 8 full contexts (the ceiling), and gpu_bytes.kv_pool is the pool', async () => {
    const t = await testGpu();
    const b = await load(t.gpu);
    const { perToken, maxContext } = await tokenBytes();
    const r = b.loadReport();
    expect(r.kv_budget.rule).toBe('auto');
    expect(r.kv_pool_tokens).toBe(MAX_DEFAULT_CONTEXTS * maxContext);
    expect(r.gpu_bytes.kv_pool).toBe(r.kv_pool_tokens * perToken);
    expect(b.kvBytes).toBe(r.gpu_bytes.kv_pool);
  });

  it('the budget follows the adapter: a fraction of what is left differs with maxBufferSize', async () => {
    // Dawn rounds requested limits up to its tiers: 4 MiB asks for the 256 MiB tier.
    const gpu = await createGpuContext({ gpu: nodeGpu(), limits: { maxBufferSize: 4 * MiB } });
    devices.push(gpu);
    const t = await testGpu();
    const { perToken } = await tokenBytes();
    const sizes: number[] = [];
    for (const g of [gpu, t.gpu]) {
      const b = await load(g, { kvBudgetFraction: 0.01 });
      const budget = Math.floor(0.01 * (DEVICE_MEMORY_PER_MAX_BUFFER * g.caps.maxBufferSize - b.weightBytes));
      const r = b.loadReport();
      expect(r.kv_budget).toMatchObject({ rule: 'fraction', bytes: budget });
      // Whole blocks of 16 tokens within the budget.
      expect(r.gpu_bytes.kv_pool).toBeLessThanOrEqual(budget);
      expect(r.gpu_bytes.kv_pool).toBeGreaterThan(budget - 16 * perToken);
      sizes.push(r.gpu_bytes.kv_pool);
    }
    expect(gpu.caps.maxBufferSize).toBeLessThan(t.gpu.caps.maxBufferSize);
    expect(sizes[0]).toBeLessThan(sizes[1]);
  });

  it('bytes as given; bytes and a fraction together are refused', async () => {
    const t = await testGpu();
    const bytes = await load(t.gpu, { kvBudgetBytes: MiB });
    expect(bytes.loadReport().kv_budget).toMatchObject({ rule: 'bytes', bytes: MiB });
    expect(bytes.loadReport().gpu_bytes.kv_pool).toBeLessThanOrEqual(MiB);
    await expect(load(t.gpu, { kvBudgetBytes: MiB, kvBudgetFraction: 0.5 })).rejects.toMatchObject({ name: 'InvalidRequestError' });
  });

  it('a request larger than the whole pool is refused at submit with PoolExhaustedError naming tokens and capacity', async () => {
    const t = await testGpu();
    const { perToken } = await tokenBytes();
    const b = await load(t.gpu, { kvBudgetBytes: 4 * 16 * perToken }); // 4 blocks = 64 tokens
    const capacity = b.loadReport().kv_pool_tokens;
    expect(capacity).toBe(64);
    const engine = new BlockPoolBatchEngine(b, null);
    const prompt = Array.from({ length: 60 }, (_, i) => (i * 7) % 500);
    const err = await engine.submit({ agentId: 'big', promptIds: prompt, maxTokens: 5 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'PoolExhaustedError', details: { tokensNeeded: 65, poolTokens: 64 } });
    expect(String((err as Error).message)).toContain('65 tokens');
    expect(String((err as Error).message)).toContain('64 tokens');
    // Exactly the pool: accepted at submit (exhaustion past this point follows the engine's policy).
    const uid = await engine.submit({ agentId: 'fits', promptIds: prompt, maxTokens: 4 });
    expect(await engine.cancel(uid)).toBe(true);
  });
});

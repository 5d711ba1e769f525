import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { generateBatch } from './lockstep.ts';
import { loadCpuModel } from '../../src/adapters/cpu/index.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { MAX_KV_SHARDS } from '../../src/adapters/webgpu/ops/attention.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { maxAbsDiff, testGpu } from './harness.ts';

/**
 * A KV pool larger than one storage binding is sharded (issue 9, item 4). Dawn will not give a
 * device a binding limit under 128 MiB, so the test caps KV buffers with `maxKvBindingBytes`
 * (as split-weights.test.ts caps weights with `maxBindingBytes`): 6 blocks per shard buffer, 12
 * blocks in all, so the pool must split in two per layer and side, and a batch that needs 10 blocks reaches both
 * shards (one sequence straddles them). Logits match the CPU reference, equal the unsharded
 * pool's bitwise, and greedy tokens are the same alone and in the batch.
 */
const MODEL = join(import.meta.dirname, '..', '..', 'public', 'models', 'tiny-llama');
/** |GPU - CPU| on logits: f32 weights and f32 KV, so only summation order differs. */
const TOL = 1e-4;
const NEW_TOKENS = 4;
const loaded: WebGpuBackend[] = [];
afterAll(() => {
  for (const b of loaded) b.dispose();
});

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

async function load(options: WebGpuBackendOptions): Promise<WebGpuBackend> {
  const t = await testGpu();
  const b = await WebGpuBackend.load(t.gpu, new FsModelSource(MODEL), { kvDtype: 'f32', blockTokens: 16, ...options });
  loaded.push(b);
  return b;
}

describe('a sharded KV pool', () => {
  it('splits at the binding limit, reaches every shard, and matches the CPU reference and the unsharded pool', async () => {
    const whole = await load({ kvBudgetBytes: 1 << 20 });
    const spec = whole.extractModelSpec();
    const blockBytes = spec.blockTokens * spec.nKvHeads * spec.headDim * 4; // one layer, one side
    const perBlock = 2 * spec.nLayers * blockBytes;
    const sharded = await load({ kvBudgetBytes: 12 * perBlock, maxKvBindingBytes: 6 * blockBytes });
    const report = sharded.loadReport();
    expect(report.kv_budget.shards).toBe(MAX_KV_SHARDS);
    expect(sharded.totalBlocks).toBe(12);
    expect(report.gpu_bytes.kv_pool).toBe(12 * perBlock); // both shards, every layer, K and V
    expect(sharded.kvBytes).toBe(report.gpu_bytes.kv_pool);

    // 3 + 4 + 3 blocks (prompt + 4 new tokens): the second sequence straddles shards 0 and 1, the third is in shard 1.
    const prompts = [40, 52, 30].map((n, s) => Array.from({ length: n }, (_, i) => (s * 131 + i * 37 + 5) % 500));
    const reqs = prompts.map((p) => ({ promptIds: p, maxTokens: NEW_TOKENS }));
    const batch = await generateBatch(sharded, new BlockPool(sharded.totalBlocks), reqs, { returnLogits: true });
    const unsharded = await generateBatch(whole, new BlockPool(whole.totalBlocks), reqs, { returnLogits: true });
    batch.forEach((r, i) => r.logits.forEach((row, j) => expect(bits(row)).toEqual(bits(unsharded[i].logits[j]))));

    const { model } = await loadCpuModel(new FsModelSource(MODEL));
    for (const [i, p] of prompts.entries()) {
      const cpu = model.generateGreedy(p, NEW_TOKENS, { eosTokenIds: [] });
      expect(batch[i].tokens).toEqual(cpu.tokens);
      batch[i].logits.forEach((row, j) => expect(maxAbsDiff(row, cpu.logits[j])).toBeLessThanOrEqual(TOL));
    }
    // Alone, the third sequence sits in shard 0 (in the batch: shard 1); same tokens and bits.
    const [alone] = await generateBatch(sharded, new BlockPool(sharded.totalBlocks), [reqs[2]], { returnLogits: true });
    expect(alone.tokens).toEqual(batch[2].tokens);
    alone.logits.forEach((row, j) => expect(bits(row)).toEqual(bits(batch[2].logits[j])));
  }, 120_000);

  it('snapshots read and write across the shard boundary, and block copies cross it', async () => {
    const whole = await load({ kvBudgetBytes: 1 << 20 });
    const spec = whole.extractModelSpec();
    const blockBytes = spec.blockTokens * spec.nKvHeads * spec.headDim * 4;
    const sharded = await load({ kvBudgetBytes: 8 * 2 * spec.nLayers * blockBytes, maxKvBindingBytes: 4 * blockBytes });
    const tokens = 3 * spec.blockTokens - 5;
    const n = tokens * spec.nKvHeads * spec.headDim;
    const layer = (seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i));
    const snapshot = {
      tokens,
      keys: Array.from({ length: spec.nLayers }, (_, l) => layer(2 * l)),
      values: Array.from({ length: spec.nLayers }, (_, l) => layer(2 * l + 1)),
    };
    const table = [2, 5, 3]; // shard 0, shard 1, shard 0
    await sharded.writeBlocks(table, snapshot);
    expect(await sharded.readBlocks(table, tokens)).toEqual(snapshot);
    await sharded.copyBlocks([{ from: 5, to: 0 }, { from: 3, to: 7 }]);
    expect(await sharded.readBlocks([2, 0, 7], tokens)).toEqual(snapshot);
  });

  it('a budget in bytes beyond the shards the kernel binds is refused with the numbers; a derived one is cut', async () => {
    const whole = await load({ kvBudgetBytes: 1 << 20 });
    const spec = whole.extractModelSpec();
    const blockBytes = spec.blockTokens * spec.nKvHeads * spec.headDim * 4;
    const cap = { maxKvBindingBytes: 4 * blockBytes };
    await expect(load({ ...cap, kvBudgetBytes: 9 * 2 * spec.nLayers * blockBytes })).rejects.toMatchObject({ name: 'InvalidRequestError', details: { maxBytes: 8 * 2 * spec.nLayers * blockBytes } });
    const cut = await load({ ...cap, kvBudgetFraction: 1 });
    expect(cut.totalBlocks).toBe(MAX_KV_SHARDS * 4);
    expect(cut.loadReport().kv_budget).toMatchObject({ rule: 'fraction', bytes: MAX_KV_SHARDS * 4 * 2 * spec.nLayers * blockBytes, shards: MAX_KV_SHARDS });
  });
});

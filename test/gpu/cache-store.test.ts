import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentCacheStore, type CacheStoreOptions } from '../../src/application/agent-cache-store.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { RestoreCostModel } from '../../src/application/cache/cost-model.ts';
import { bytesPerBlock, kvBytesPerElement } from '../../src/domain/model-cache-spec.ts';
import { buildInspectSnapshot } from '../../src/application/inspect-snapshot.ts';
import type { CompletedGeneration } from '../../src/domain/values.ts';
import { FsCachePersistence } from '../../src/adapters/node/fs-cache-persistence.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../../src/adapters/safetensors/blob-codec.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { testGpu } from './harness.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
let llama: WebGpuBackend;
let qwen: WebGpuBackend;
let small: WebGpuBackend;

beforeAll(async () => {
  const t = await testGpu();
  llama = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, 'tiny-llama')), { kvBudgetBytes: 2 * 1024 * 1024 });
  qwen = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, 'tiny-qwen2')), { kvBudgetBytes: 2 * 1024 * 1024 });
  // 8 blocks of 16 tokens (4 KiB each with the default f16 KV): a third 40-token agent pushes an idle one out of the GPU.
  small = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, 'tiny-llama')), { kvBudgetBytes: 8 * 4096 });
  expect(small.totalBlocks).toBe(8);
});

afterAll(() => {
  llama.dispose();
  qwen.dispose();
  small.dispose();
});

function ids(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 53 + i * 29 + ((i * i) % 13)) % 500);
}

/** Restores always win in these tests unless a test says otherwise. */
const eagerRestore = (): RestoreCostModel => new RestoreCostModel({ prefillTokensPerSecond: 1, restoreMegabytesPerSecond: 1e6 });

function runtime(backend: WebGpuBackend, dir: string | null, options: CacheStoreOptions = {}): { engine: BlockPoolBatchEngine; store: AgentCacheStore } {
  const engine = new BlockPoolBatchEngine(backend, null);
  const store = new AgentCacheStore(engine, backend, safetensorsBlobCodec, dir ? new FsCachePersistence({ dir }) : null, { costModel: eagerRestore(), ...options });
  return { engine, store };
}

async function turn(engine: BlockPoolBatchEngine, agentId: string, promptIds: number[], maxTokens = 6): Promise<CompletedGeneration & { reused: number }> {
  const result = await engine.generate({ agentId, promptIds, maxTokens });
  await engine.run();
  return { ...result, reused: engine.accounting(result.uid)?.prefillReused ?? 0 };
}

describe('AgentCacheStore on WebGPU with a folder as cold storage', () => {
  it('an agent evicted to cold storage resumes after a restart with the reply it gives without eviction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'semantic-cold-'));
    const prompt = ids(1, 40);
    // Reference: no eviction at all.
    const ref = runtime(llama, null);
    const first = await turn(ref.engine, 'romeo', prompt);
    const next = [...prompt, ...first.tokenIds, ...ids(2, 9)];
    const expected = await turn(ref.engine, 'romeo', next);

    const a = runtime(llama, dir);
    expect((await turn(a.engine, 'romeo', prompt)).tokenIds).toEqual(first.tokenIds);
    expect(await a.store.evict('romeo')).toBe('warm');
    expect(await a.store.evict('romeo')).toBe('cold');
    await a.store.flush();
    expect(a.store.tierOf('romeo')).toBe('cold');

    // "Restart": a new engine and store over the same folder.
    const b = runtime(llama, dir);
    await b.store.refreshCold();
    expect(b.store.tierOf('romeo')).toBe('cold');
    const resumed = await turn(b.engine, 'romeo', next);
    expect(resumed.tokenIds).toEqual(expected.tokenIds);
    expect(resumed.reused).toBe(prompt.length + first.tokenIds.length - 1);
    expect(b.store.reports.at(-1)).toMatchObject({ agentId: 'romeo', tier: 'cold' });
  });

  it('budgets hold with room for 3 agents while 10 agents talk, and every agent continues correctly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'semantic-budget-'));
    const perAgent = 3 * bytesPerBlock(llama.extractModelSpec());
    const hotBudget = 3 * perAgent;
    // Room for 3 agents' blobs: ~40 KiB each with f32 KV, half that with the default f16 KV
    // (blobs store the pool's dtype).
    const warmBudget = (3 * 40 * 1024 * kvBytesPerElement(llama.extractModelSpec().dtype)) / 4;
    const { engine, store } = runtime(llama, dir, { hotBudgetBytes: hotBudget, warmBudgetBytes: warmBudget });
    const ref = runtime(llama, null);
    const prompts = Array.from({ length: 10 }, (_, i) => ids(10 + i, 30));
    const firsts: number[][] = [];
    for (const [i, p] of prompts.entries()) {
      firsts.push([...(await turn(engine, `agent-${i}`, p)).tokenIds]);
      await store.flush();
      expect(store.hotBytes()).toBeLessThanOrEqual(hotBudget);
      expect(store.stats().warmBytes).toBeLessThanOrEqual(warmBudget);
    }
    const tiers = new Set<string>();
    // Most recent first: the last agents are still hot, the middle ones warm, the first cold.
    for (const [i, p] of [...prompts.entries()].reverse()) {
      const next = [...p, ...firsts[i], ...ids(99, 5)];
      const got = await turn(engine, `agent-${i}`, next);
      tiers.add(store.reports.at(-1)?.tier ?? 'none');
      const want = await turn(ref.engine, `agent-${i}`, next);
      expect(got.tokenIds, `agent ${i}`).toEqual(want.tokenIds);
      expect(got.reused, `agent ${i}`).toBe(p.length + firsts[i].length - 1);
      await store.flush();
      expect(store.hotBytes()).toBeLessThanOrEqual(hotBudget);
    }
    // Returning agents came back from every tier below hot.
    expect([...tiers].sort()).toEqual(expect.arrayContaining(['cold', 'hot', 'warm']));
  });

  it('an idle agent pushed off the GPU by pool pressure is snapshotted before its blocks are reused', async () => {
    const { engine, store } = runtime(small, null);
    const ref = runtime(llama, null);
    const prompts = [ids(31, 40), ids(32, 40), ids(33, 40)];
    const firsts: number[][] = [];
    for (const [i, p] of prompts.entries()) firsts.push([...(await turn(engine, `s${i}`, p, 4)).tokenIds]);
    // Three 44-token contexts need 9 blocks; the pool has 8, so agent s0 went to the warm tier.
    expect(store.tierOf('s0')).toBe('warm');
    const next = [...prompts[0], ...firsts[0], 1, 2, 3];
    const back = await turn(engine, 's0', next, 6);
    expect(store.reports.at(-1)).toMatchObject({ agentId: 's0', tier: 'warm' });
    expect(back.reused).toBe(prompts[0].length + firsts[0].length - 1);
    expect(back.tokenIds).toEqual((await turn(ref.engine, 'fresh', next, 6)).tokenIds);
  });

  it('refuses blobs of another model with ModelMismatchError and leaves them in place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'semantic-model-'));
    const a = runtime(llama, dir);
    await turn(a.engine, 'tybalt', ids(5, 20));
    await a.store.persistAll();
    const b = runtime(qwen, dir);
    const result = await turn(b.engine, 'tybalt', ids(5, 24));
    expect(result.reused).toBe(0);
    expect(b.store.reports.at(-1)?.refused).toMatchObject({ name: 'ModelMismatchError', code: 'MODEL_MISMATCH' });
    expect(await new FsCachePersistence({ dir }).exists('tybalt')).toBe(true);
  });

  it('the cost model recomputes when restoring is measured to be slower', async () => {
    const slowRestore = new RestoreCostModel({ prefillTokensPerSecond: 1e9, restoreMegabytesPerSecond: 0.001 });
    const { engine, store } = runtime(llama, null, { costModel: slowRestore });
    const p = ids(8, 30);
    const first = await turn(engine, 'mercutio', p);
    await store.evict('mercutio');
    const again = await turn(engine, 'mercutio', [...p, ...first.tokenIds]);
    expect(store.reports.at(-1)).toMatchObject({ tier: 'none', estimate: { restore: false } });
    // Not restored: only the full blocks still cached on the GPU (prefix index) are reused.
    expect(again.reused).toBe(Math.floor((p.length + first.tokenIds.length - 1) / 16) * 16);
  });
});

// The cache inspector's snapshot (client.inspect()), on the same loaded model: no extra load.
describe('buildInspectSnapshot (the cache inspector\'s client.inspect())', () => {
  it('names each block\'s owners, marks a shared prefix, and follows an agent down to cold storage and back', async () => {
    const persistence = new FsCachePersistence({ dir: mkdtempSync(join(tmpdir(), 'semantic-inspect-')) });
    const engine = new BlockPoolBatchEngine(llama, null);
    const store = new AgentCacheStore(engine, llama, safetensorsBlobCodec, persistence, { costModel: eagerRestore() });
    const spec = llama.extractModelSpec();
    const snap = async () => buildInspectSnapshot({ engine, store, spec, modelId: 'tiny-llama', stored: await persistence.listCachedAgents(), deviceRecoveries: 0 });
    // Two agents open with the same 32 tokens (two full blocks), then differ.
    const shared = ids(1, 32);
    for (const [agentId, seed] of [['romeo', 2], ['juliet', 3]] as const) {
      await engine.generate({ agentId, promptIds: [...shared, ...ids(seed, 9)], maxTokens: 3 });
      await engine.run();
    }
    const hot = await snap();
    expect(hot.agents.map((a) => [a.agentId, a.tier])).toEqual([['juliet', 'hot'], ['romeo', 'hot']]);
    const both = hot.pool.blocks.filter((b) => b.owners.length === 2);
    expect(both).toHaveLength(2);
    expect(both.every((b) => b.shared && b.indexed && b.state === 'used' && b.refs >= 2)).toBe(true);
    expect(hot.pool.shared).toBe(2);
    const romeo = hot.agents.find((a) => a.agentId === 'romeo');
    const romeoIndex = hot.agents.findIndex((a) => a.agentId === 'romeo');
    expect(romeo?.hotBlocks).toBe(hot.pool.blocks.filter((b) => b.owners.includes(romeoIndex)).length);
    expect(romeo?.bytes).toBe((romeo?.hotBlocks ?? 0) * bytesPerBlock(spec));
    expect(hot.pool.used + hot.pool.cached + hot.pool.free).toBe(hot.pool.totalBlocks);
    expect(hot.pool.blocks.filter((b) => b.state === 'free')).toHaveLength(hot.pool.free);

    // Down to cold storage: no hot blocks left for romeo, stored with its token count.
    expect(await store.evict('romeo')).toBe('warm');
    expect(await store.evict('romeo')).toBe('cold');
    await store.flush();
    const cold = (await snap()).agents.find((a) => a.agentId === 'romeo');
    expect(cold).toMatchObject({ tier: 'cold', stored: true, hotBlocks: 0 });
    expect(cold?.tokens).toBe(32 + 9 + 2);

    // Back from cold: the latest restore says where the context came from.
    await engine.generate({ agentId: 'romeo', promptIds: [...shared, ...ids(2, 9), 7, 8, 9], maxTokens: 2 });
    await engine.run();
    const back = (await snap()).agents.find((a) => a.agentId === 'romeo');
    expect(back?.tier).toBe('hot');
    expect(back?.lastRestore?.tier).toBe('cold');
    expect(back?.lastRestore?.matchedTokens).toBeGreaterThan(32);
  });
});

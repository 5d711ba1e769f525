import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { AgentCacheStore } from '../../src/application/agent-cache-store.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { RestoreCostModel } from '../../src/application/cache/cost-model.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../../src/adapters/safetensors/blob-codec.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { QuotaStore } from '../quota-store.ts';
import { testGpu } from './harness.ts';

/** The cache store when storage is full or a stored blob is damaged: nothing lost, tiers true. */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
let llama: WebGpuBackend;

beforeAll(async () => {
  const t = await testGpu();
  llama = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, 'tiny-llama')), { kvBudgetBytes: 2 * 1024 * 1024 });
});

afterAll(() => llama.dispose());

function ids(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 41 + i * 23 + ((i * i) % 7)) % 500);
}

const eager = (): RestoreCostModel => new RestoreCostModel({ prefillTokensPerSecond: 1, restoreMegabytesPerSecond: 1e6 });

async function reference(promptIds: number[], maxTokens: number): Promise<readonly number[]> {
  const e = new BlockPoolBatchEngine(llama, null);
  const r = await e.generate({ agentId: 'ref', promptIds, maxTokens });
  await e.run();
  return r.tokenIds;
}

/** Evict until the agent is in cold storage or can go no lower (the write may fail). */
async function toCold(store: AgentCacheStore, id: string): Promise<void> {
  for (let i = 0; i < 3 && (store.tierOf(id) === 'hot' || store.tierOf(id) === 'warm'); i++) {
    if ((await store.evict(id)) === null) break;
    await store.flush();
  }
}

describe('AgentCacheStore under a storage quota', () => {
  it('a full store never deletes another agent\'s only copy: the new blob stays in memory, flagged unsaved, and lands later', async () => {
    const engine = new BlockPoolBatchEngine(llama, null);
    const persistence = new QuotaStore(0);
    const store = new AgentCacheStore(engine, llama, safetensorsBlobCodec, persistence, { costModel: eager(), warmBudgetBytes: 1 });
    const contexts = new Map<string, number[]>();
    for (const id of ['a', 'b', 'c']) {
      const prompt = ids(id.charCodeAt(0), 30);
      const r = await engine.generate({ agentId: id, promptIds: prompt, maxTokens: 4 });
      await engine.run();
      contexts.set(id, [...prompt, ...r.tokenIds]);
    }
    // Room for two blobs: learn one blob's size from the codec, then size the quota.
    const one = (await store.exportAgent('a'))?.byteLength ?? 0;
    persistence.quota = 2 * one + one / 2;
    for (const id of ['a', 'b', 'c']) await toCold(store, id);

    expect([...persistence.blobs.keys()].sort()).toEqual(['a', 'b']);
    expect([...store.unsavedAgents().keys()]).toEqual(['c']);
    expect(store.unsavedAgents().get('c')?.name).toBe('QuotaExceededError');
    expect(['a', 'b', 'c'].map((id) => store.tierOf(id))).toEqual(['cold', 'cold', 'warm']);

    // The unsaved agent still resumes from memory, with the right tokens.
    const next = [...(contexts.get('c') ?? []), ...ids(9, 4)];
    const r = await engine.generate({ agentId: 'c', promptIds: next, maxTokens: 6 });
    await engine.run();
    expect(store.lastReport('c')?.tier).toBe('warm');
    expect(r.tokenIds).toEqual(await reference(next, 6));

    // Space freed by the app: the unsaved memory lands and becomes cold.
    await toCold(store, 'c');
    expect(store.tierOf('c')).toBe('warm');
    await store.delete('a');
    store.retryUnsaved();
    await store.flush();
    expect(store.unsavedAgents().size).toBe(0);
    expect(store.tierOf('c')).toBe('cold');
    expect(store.tierOf('a')).toBe('none');
  });

  it('an expendable agent\'s cold blob makes room; the store then reports it gone', async () => {
    const engine = new BlockPoolBatchEngine(llama, null);
    const persistence = new QuotaStore(1e9);
    const store = new AgentCacheStore(engine, llama, safetensorsBlobCodec, persistence, { costModel: eager(), warmBudgetBytes: 1 });
    for (const id of ['scratch', 'keeper']) {
      await engine.generate({ agentId: id, promptIds: ids(id.length, 30), maxTokens: 4 });
      await engine.run();
      await toCold(store, id);
    }
    expect(store.tierOf('scratch')).toBe('cold');
    persistence.quota = 1.5 * (persistence.blobs.get('keeper')?.bytes.byteLength ?? 0); // keeper's next blob, not both
    store.setExpendable('scratch', true);
    await engine.generate({ agentId: 'keeper', promptIds: ids(77, 31), maxTokens: 4 });
    await engine.run();
    await toCold(store, 'keeper');
    expect([...persistence.blobs.keys()]).toEqual(['keeper']);
    expect(store.tierOf('scratch')).toBe('none');
    expect(store.unsavedAgents().size).toBe(0);
  });
});

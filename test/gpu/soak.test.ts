import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentCacheStore } from '../../src/application/agent-cache-store.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { RestoreCostModel } from '../../src/application/cache/cost-model.ts';
import type { CompletedGeneration } from '../../src/domain/values.ts';
import { FsCachePersistence } from '../../src/adapters/node/fs-cache-persistence.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../../src/adapters/safetensors/blob-codec.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { mulberry32 } from '../../tools/prng.ts';
import { testGpu } from './harness.ts';

/**
 * Soak: SEMANTIC_SOAK_OPS (default 400 in the suite; the full run is 1000) mixed operations over 20 agents on a small pool, with
 * hot and warm budgets that force evictions: turns (several in flight at once), cancels,
 * deletes, evictions, exports and imports, and restarts of the store from cold storage.
 * At the end: no agent lost, every request ended exactly once, every completed turn of every
 * agent equals a replay of its conversation on an engine with room for everything, and pool
 * blocks and GPU bytes are back to their idle figures.
 */
const OPS = Number(process.env.SEMANTIC_SOAK_OPS ?? 400);
const AGENTS = 20;
const MODEL = join(import.meta.dirname, '..', '..', 'public', 'models', 'tiny-llama');
let small: WebGpuBackend;
let roomy: WebGpuBackend;

beforeAll(async () => {
  const gpu = (await testGpu()).gpu;
  const files = new FsModelSource(MODEL);
  small = await WebGpuBackend.load(gpu, files, { kvBudgetBytes: 24 * 4096 }); // 24 blocks of 16 tokens (f16 KV)
  expect(small.totalBlocks).toBe(24);
  roomy = await WebGpuBackend.load(gpu, files, { kvBudgetBytes: 8 * 1024 * 1024 });
});

afterAll(() => {
  small.dispose();
  roomy.dispose();
});

interface Turn {
  readonly newIds: number[];
  readonly maxTokens: number;
  readonly got: readonly number[];
}

interface Runtime {
  engine: BlockPoolBatchEngine;
  store: AgentCacheStore;
}

const eager = (): RestoreCostModel => new RestoreCostModel({ prefillTokensPerSecond: 1, restoreMegabytesPerSecond: 1e6 });

function open(persistence: FsCachePersistence): Runtime {
  const engine = new BlockPoolBatchEngine(small, null, { maxBatchTokens: 64, maxPrefillChunk: 32 });
  const store = new AgentCacheStore(engine, small, safetensorsBlobCodec, persistence, {
    costModel: eager(),
    hotBudgetBytes: 6 * 4096, // about 6 blocks of idle agents on the GPU
    warmBudgetBytes: 64 * 1024, // a few blobs in host memory; the rest go cold
    quantization: 'none',
  });
  return { engine, store };
}

/** Replay each agent's conversation on an engine with room for everything: the reference. */
async function replay(conversations: Map<string, Turn[]>): Promise<Map<string, Array<readonly number[]>>> {
  const engine = new BlockPoolBatchEngine(roomy, null, { maxBatchTokens: 1024, maxPrefillChunk: 256 });
  const contexts = new Map<string, number[]>([...conversations.keys()].map((a) => [a, []]));
  const out = new Map<string, Array<readonly number[]>>([...conversations.keys()].map((a) => [a, []]));
  const longest = Math.max(0, ...[...conversations.values()].map((t) => t.length));
  for (let i = 0; i < longest; i++) {
    const wave = [...conversations].filter(([, turns]) => i < turns.length);
    const results = await Promise.all(
      wave.map(([agent, turns]) => {
        const prompt = [...(contexts.get(agent) ?? []), ...turns[i].newIds];
        contexts.set(agent, prompt);
        return engine.generate({ agentId: agent, promptIds: prompt, maxTokens: turns[i].maxTokens });
      }),
    );
    await engine.run();
    wave.forEach(([agent], k) => {
      contexts.get(agent)?.push(...results[k].tokenIds);
      out.get(agent)?.push(results[k].tokenIds);
    });
  }
  return out;
}

describe(`soak: ${OPS} mixed operations over ${AGENTS} agents under eviction pressure`, () => {
  it('loses no agent, ends every request exactly once, matches the reference, and returns to idle', async () => {
    const rand = mulberry32(2026);
    const pick = (n: number): number => Math.floor(rand() * n);
    const dir = mkdtempSync(join(tmpdir(), 'semantic-soak-'));
    const persistence = await FsCachePersistence.open({ dir, modelFingerprint: small.extractModelSpec().fingerprint });
    let rt = open(persistence);
    const idleBlocks = rt.engine.stats().pool.freeBlocks;
    const idleBytes = small.bufferStats().liveBytes;
    const agents = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`);
    const conversations = new Map<string, Turn[]>(agents.map((a) => [a, []]));
    const contexts = new Map<string, number[]>(agents.map((a) => [a, []]));
    const ended = new Map<string, number>();
    const counts = { turn: 0, cancel: 0, delete: 0, evict: 0, exportImport: 0, restart: 0 };
    let ops = 0;
    let restarts = 0;

    const turn = async (agent: string, cancel: boolean): Promise<void> => {
      const newIds = Array.from({ length: 2 + pick(4) }, () => pick(500));
      const maxTokens = 2 + pick(3);
      const prompt = [...(contexts.get(agent) ?? []), ...newIds];
      const { engine } = rt;
      const uid = await engine.submit({ agentId: agent, promptIds: prompt, maxTokens });
      const key = `${restarts}:${uid}`; // uids start again in a restarted engine
      const pending = engine.result(uid).then((g: CompletedGeneration) => {
        ended.set(key, (ended.get(key) ?? 0) + 1);
        return g;
      });
      void engine.run();
      if (cancel) await engine.cancel(uid);
      const g = await pending;
      if (g.finishReason === 'cancelled') return;
      expect(g.finishReason, `${agent}: ${g.error?.message ?? ''}`).toBe('length');
      contexts.set(agent, [...prompt, ...g.tokenIds]);
      conversations.get(agent)?.push({ newIds, maxTokens, got: g.tokenIds });
    };

    while (ops < OPS) {
      // A wave: several agents' operations at once, as a page with many agents would issue them.
      const wave = [...new Set(Array.from({ length: 2 + pick(6) }, () => agents[pick(AGENTS)]))];
      await Promise.all(
        wave.map(async (agent) => {
          ops++;
          const r = rand();
          if (r < 0.62) return void (counts.turn++, await turn(agent, false));
          if (r < 0.72) return void (counts.cancel++, await turn(agent, true));
          if (r < 0.87) return void (counts.evict++, await rt.store.evict(agent));
          if (r < 0.92) {
            counts.delete++;
            await rt.store.delete(agent);
            contexts.set(agent, []);
            conversations.set(agent, []);
            return;
          }
          counts.exportImport++;
          const blob = await rt.store.exportAgent(agent);
          if (blob) {
            await rt.store.delete(agent);
            expect(await rt.store.importAgent(blob)).toBe(agent);
          }
        }),
      );
      if (rand() < 0.02) {
        // Restart: everything to cold storage, then a new engine and store read it back.
        counts.restart++;
        restarts++;
        await rt.store.persistAll();
        expect(rt.engine.trackedRequests()).toBe(0);
        rt.engine.reset();
        rt = open(persistence);
        await rt.store.refreshCold();
      }
    }

    // Every surviving agent's memory: the tier is true and a next turn matches the reference.
    for (const agent of agents) {
      const stored = (contexts.get(agent) ?? []).length > 0;
      expect(rt.store.tierOf(agent) !== 'none', `${agent} tier`).toBe(stored);
    }
    await Promise.all(agents.map((a) => turn(a, false)));
    const want = await replay(conversations);
    for (const agent of agents) {
      expect(conversations.get(agent)?.map((t) => t.got), agent).toEqual(want.get(agent));
    }
    expect([...ended.values()].every((n) => n === 1)).toBe(true);
    expect(rt.engine.trackedRequests()).toBe(0);
    expect(rt.store.unsavedAgents().size).toBe(0);
    console.log(`[soak] ${ops} ops: ${JSON.stringify(counts)}; requests ${ended.size}; preemptions ${rt.engine.stats().preemptions}`);

    // Back to idle: every block free once the agents are dropped, and no GPU buffer left behind.
    await rt.store.persistAll();
    rt.engine.reset();
    expect(rt.engine.stats().pool.freeBlocks).toBe(idleBlocks);
    expect(small.bufferStats().liveBytes).toBe(idleBytes);
  }, 600_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { AgentCacheStore } from '../../src/application/agent-cache-store.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { RestoreCostModel } from '../../src/application/cache/cost-model.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../../src/adapters/safetensors/blob-codec.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { testGpu } from './harness.ts';
import { GatedBackend } from './wrapped-backend.ts';

/**
 * Use-after-free races between a planned step and calls that release blocks (cancel, delete)
 * while the step waits to be submitted. The backend is the real WebGPU one, wrapped so the test
 * can hold a step at the point where it has planned its block writes but not yet submitted them:
 * the window `await copyBlocks(...)` opens in the engine. Inside that window the test cancels or
 * deletes the running agent and restores another agent, whose fresh blocks must never be the
 * ones the held step is about to write.
 */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
let small: WebGpuBackend;
let roomy: WebGpuBackend;

beforeAll(async () => {
  const t = await testGpu();
  const files = new FsModelSource(join(MODELS, 'tiny-llama'));
  small = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 12 * 4096 }); // 12 blocks of 16 tokens (f16 KV)
  expect(small.totalBlocks).toBe(12);
  roomy = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 2 * 1024 * 1024 });
});

afterAll(() => {
  small.dispose();
  roomy.dispose();
});

function ids(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 61 + i * 37 + ((i * i) % 17)) % 500);
}

const eager = (): RestoreCostModel => new RestoreCostModel({ prefillTokensPerSecond: 1, restoreMegabytesPerSecond: 1e6 });

/** Greedy reply of a fresh engine that computes everything: the reference. */
async function reference(promptIds: number[], maxTokens: number): Promise<readonly number[]> {
  const e = new BlockPoolBatchEngine(roomy, null);
  const r = await e.generate({ agentId: 'ref', promptIds, maxTokens });
  await e.run();
  return r.tokenIds;
}

type Interrupt = 'cancel' | 'delete-agent' | 'store-delete';

/**
 * B finishes a turn and is evicted to the warm tier. A fills the pool and decodes. A step of A
 * is held before submission; A is cancelled or deleted; B is restored into whatever blocks are
 * free; the step goes on. B's next turn must give the reference tokens.
 */
async function raceOnce(interrupt: Interrupt): Promise<{ got: readonly number[]; want: readonly number[]; aReason: string }> {
  const gated = new GatedBackend(small);
  const engine = new BlockPoolBatchEngine(gated, null);
  const store = new AgentCacheStore(engine, gated, safetensorsBlobCodec, null, { costModel: eager() });
  const bPrompt = ids(1, 40);
  const b1 = await engine.generate({ agentId: 'B', promptIds: bPrompt, maxTokens: 4 });
  await engine.run();
  const bContext = [...bPrompt, ...b1.tokenIds];
  expect(await store.evict('B')).toBe('warm');

  const aUid = await engine.submit({ agentId: 'A', promptIds: ids(2, 150), maxTokens: 8 });
  const aResult = engine.result(aUid);
  while ((await engine.step()).length === 0 && engine.stats().running > 0) {
    if (engine.stats().pool.freeBlocks <= 2) break; // A's prompt is in: 10 of 12 blocks
  }
  await engine.step(); // one decode step, so the next one writes into A's last block

  const held = gated.holdNext();
  const stepping = engine.step();
  await held.reached;
  if (interrupt === 'cancel') await engine.cancel(aUid);
  else if (interrupt === 'delete-agent') engine.dropAgent('A');
  else await store.delete('A');
  const bNext = [...bContext, ...ids(3, 5)];
  await store.get({ agentId: 'B', modelFingerprint: small.extractModelSpec().fingerprint, tokenIds: bNext });
  held.release();
  await stepping;
  const aFinal = await aResult;

  const b2 = await engine.generate({ agentId: 'B', promptIds: bNext, maxTokens: 8 });
  await engine.run();
  return { got: b2.tokenIds, want: await reference(bNext, 8), aReason: aFinal.finishReason };
}

describe('engine: releases wait for the step that uses the blocks', () => {
  for (const interrupt of ['cancel', 'delete-agent', 'store-delete'] as const) {
    it(`${interrupt} while a step is planned but not submitted leaves another agent's KV intact`, async () => {
      const { got, want, aReason } = await raceOnce(interrupt);
      expect(aReason).toBe('cancelled');
      expect(got).toEqual(want);
    });
  }
});

describe('engine: every request ends exactly once, and nothing is kept after', () => {
  it('a failing preemption snapshot does not hang: requests recompute and finish with the unpressured tokens', async () => {
    const gated = new GatedBackend(small);
    const engine = new BlockPoolBatchEngine(gated, null);
    new AgentCacheStore(engine, gated, safetensorsBlobCodec, null, { costModel: eager() });
    gated.failReads = new Error('snapshot read failed');
    const reqs = [0, 1, 2, 3].map((i) => ({ agentId: `p${i}`, promptIds: ids(7 + i, 30), maxTokens: 30 }));
    const ends = new Map<string, number>();
    const uids = await Promise.all(reqs.map((r) => engine.submit(r)));
    const results = uids.map((uid) => engine.result(uid).then((g) => (ends.set(uid, (ends.get(uid) ?? 0) + 1), g)));
    await engine.run();
    const done = await Promise.race([Promise.all(results), new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
    expect(done, 'every request resolved').not.toBeNull();
    expect(engine.stats().preemptions).toBeGreaterThan(0);
    for (const [i, r] of reqs.entries()) {
      expect(done?.[i].finishReason).toBe('length');
      expect(done?.[i].tokenIds).toEqual(await reference(r.promptIds, 30));
    }
    expect([...ends.values()]).toEqual([1, 1, 1, 1]);
    // Nothing grows: finished requests leave the live map; late queries still answer.
    expect(engine.trackedRequests()).toBe(0);
    expect((await engine.result(uids[0])).uid).toBe(uids[0]);
    expect(engine.accounting(uids[0])?.prefillComputed).toBeGreaterThan(0);
    await expect(engine.result('gen-unknown')).rejects.toMatchObject({ name: 'InvalidRequestError' });
  });

  it('a throwing token listener does not stop the engine or other listeners', async () => {
    const engine = new BlockPoolBatchEngine(roomy, null);
    const uid = await engine.submit({ agentId: 'l', promptIds: ids(4, 10), maxTokens: 6 });
    let seen = 0;
    engine.onToken(uid, () => {
      throw new Error('page callback failed');
    });
    engine.onToken(uid, () => void seen++);
    const result = engine.result(uid);
    await engine.run();
    expect((await result).tokenIds).toEqual(await reference(ids(4, 10), 6));
    expect(seen).toBe(6);
  });
});

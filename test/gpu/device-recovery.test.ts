import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { RestoreCostModel } from '../../src/application/cache/cost-model.ts';
import { RecoveringRuntime, type DeviceBackend } from '../../src/application/recovering-runtime.ts';
import type { CompletedGeneration } from '../../src/domain/values.ts';
import { nodeGpu } from '../../src/adapters/node/dawn.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../../src/adapters/safetensors/blob-codec.ts';
import { createGpuContext, type GpuContext } from '../../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { QuotaStore } from '../quota-store.ts';

/**
 * A lost GPU mid-generation (device.destroy()): requests in flight end with DeviceLostError,
 * the runtime loads the model on a new device, and every agent continues from its warm or cold
 * memory with the tokens of a run that was never interrupted. Each device here is this test's
 * own (never the shared test device).
 */
const MODEL = join(import.meta.dirname, '..', '..', 'public', 'models', 'tiny-llama');

function ids(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 71 + i * 13 + ((i * i) % 23)) % 500);
}

describe('device loss: recover on a new device and resume every agent', () => {
  it('fails in-flight requests with DeviceLostError, reloads, and restores agents from warm and cold', async () => {
    const gpus: GpuContext[] = [];
    const factory = async (): Promise<DeviceBackend> => {
      const gpu = await createGpuContext({ gpu: nodeGpu() });
      gpus.push(gpu);
      const backend = await WebGpuBackend.load(gpu, new FsModelSource(MODEL), { kvBudgetBytes: 2 * 1024 * 1024 });
      return { backend, lost: gpu.lost };
    };
    const persistence = new QuotaStore(1e9);
    const rt = await RecoveringRuntime.start(factory, null, safetensorsBlobCodec, persistence, {
      store: { costModel: new RestoreCostModel({ prefillTokensPerSecond: 1, restoreMegabytesPerSecond: 1e6 }), persistOnFinish: true },
    });
    // Three agents with memory: one evicted to cold, one to warm, one hot (checkpointed on finish).
    const contexts = new Map<string, number[]>();
    for (const [i, agent] of ['cold', 'warm', 'hot'].entries()) {
      const prompt = ids(i + 1, 30);
      const r = await rt.generate({ agentId: agent, promptIds: prompt, maxTokens: 5 });
      contexts.set(agent, [...prompt, ...r.result.tokenIds]);
    }
    await rt.store.flush();
    await rt.store.evict('cold');
    await rt.store.flush();
    await rt.store.evict('cold');
    await rt.store.evict('warm');
    await rt.store.flush();
    expect(['cold', 'warm', 'hot'].map((a) => rt.store.tierOf(a))).toEqual(['cold', 'warm', 'hot']);

    // A long turn of a fourth agent is in flight when the device goes.
    const inflight = rt.engine.generate({ agentId: 'busy', promptIds: ids(9, 20), maxTokens: 200 });
    let lostResult: CompletedGeneration | null = null;
    void inflight.then((r) => (lostResult = r));
    while (rt.engine.stats().steps < 3) await new Promise((r) => setTimeout(r, 5));
    gpus[0].device.destroy();
    const failed = await inflight;
    expect(failed.finishReason).toBe('error');
    expect(failed.error?.name).toBe('DeviceLostError');
    expect(lostResult).not.toBeNull();
    await rt.ready();
    expect(rt.recoveries).toBe(1);
    expect(gpus).toHaveLength(2);

    // Every agent continues; the reference runs each next turn on a fresh engine with no cache.
    const reference = new BlockPoolBatchEngine(rt.backend, null);
    for (const agent of ['cold', 'warm', 'hot']) {
      const next = [...(contexts.get(agent) ?? []), ...ids(7, 4)];
      const r = await rt.generate({ agentId: agent, promptIds: next, maxTokens: 6 });
      const want = await reference.generate({ agentId: `ref-${agent}`, promptIds: next, maxTokens: 6 });
      await reference.run();
      expect(r.result.tokenIds, agent).toEqual(want.tokenIds);
      // The hot agent's GPU memory died with the device; its finished-turn checkpoint brings it back.
      expect(rt.store.lastReport(agent)?.tier, agent).toBe(agent === 'warm' ? 'warm' : 'cold');
      expect(r.prefillReused, agent).toBeGreaterThan(0);
    }
    rt.backend.dispose();
  }, 300_000);
});

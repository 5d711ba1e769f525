import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { AgentService } from '../../src/application/agent-service.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { InferenceService } from '../../src/application/inference-service.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../../src/adapters/tokenizer/index.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { testGpu } from './harness.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');

let backend: WebGpuBackend;
let tokenizer: HfTokenizer;

beforeAll(async () => {
  const t = await testGpu();
  const files = new FsModelSource(join(MODELS, 'tiny-qwen2'));
  tokenizer = await HfTokenizer.load({ modelId: 'tiny-qwen2', localModelPath: MODELS, files });
  backend = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 2 * 1024 * 1024 });
});

afterAll(() => backend.dispose());

function services(): { engine: BlockPoolBatchEngine; agents: AgentService; inference: InferenceService } {
  const engine = new BlockPoolBatchEngine(backend, tokenizer);
  const agents = new AgentService(engine, tokenizer);
  return { engine, agents, inference: new InferenceService(engine, agents) };
}

describe('InferencePort and AgentManagementPort over the engine (tiny-qwen2, WebGPU)', () => {
  it('an agent created with an initial context answers without recomputing it', async () => {
    const { agents, inference } = services();
    const system = [{ role: 'system' as const, content: 'You are Juliet, speaking from the balcony at night.' }];
    const contextIds = tokenizer.applyChatTemplate(system, { addGenerationPrompt: false });
    const created = await agents.createAgent('juliet', { initialContext: system });
    expect(created).toMatchObject({ agentId: 'juliet', tier: 'hot', tokenCount: contextIds.length });
    const chat = [...system, { role: 'user' as const, content: 'Who is there?' }];
    const deltas: string[] = [];
    const reply = await inference.generate('juliet', chat, { maxTokens: 10, onToken: (d) => deltas.push(d.text) });
    expect(reply.usage.promptTokens).toBe(tokenizer.applyChatTemplate(chat).length);
    expect(reply.usage.cachedPromptTokens).toBe(contextIds.length);
    expect(deltas.join('')).toBe(reply.text);
    expect(reply.timings.ttftMs).toBeLessThanOrEqual(reply.timings.totalMs);
    // The same conversation on a fresh runtime gives the same greedy reply.
    const fresh = await services().inference.generate('other', chat, { maxTokens: 10 });
    expect(reply.tokenIds).toEqual(fresh.tokenIds);
    expect(fresh.usage.cachedPromptTokens).toBe(0);
  });

  it('lists, describes and deletes agents; unknown agents get AgentNotFoundError', async () => {
    const { agents, inference, engine } = services();
    await inference.generate('a1', 'ROMEO: speak', { maxTokens: 3 });
    await agents.createAgent('a2');
    expect((await agents.listAgents()).map((a) => a.agentId).sort()).toEqual(['a1', 'a2']);
    expect(await agents.getAgentInfo('a2')).toMatchObject({ tokenCount: 0, blocks: 0, tier: 'none' });
    const a1 = await agents.getAgentInfo('a1');
    expect(a1.blocks).toBeGreaterThan(0);
    expect(await agents.deleteAgent('a1')).toBe(true);
    await expect(agents.getAgentInfo('a1')).rejects.toMatchObject({ name: 'AgentNotFoundError', code: 'AGENT_NOT_FOUND' });
    expect(await agents.deleteAgent('a1')).toBe(false);
    expect(engine.stats().pool.usedBlocks).toBe(0);
  });

  it('an AbortSignal cancels a generation', async () => {
    const { inference } = services();
    const controller = new AbortController();
    const result = await inference.generate('x', 'ROMEO:', {
      maxTokens: 200,
      onToken: () => controller.abort(),
      signal: controller.signal,
    });
    expect(result.finishReason).toBe('cancelled');
    expect(result.tokenIds.length).toBeLessThan(200);
  });
});

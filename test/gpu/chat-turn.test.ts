import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { AgentService } from '../../src/application/agent-service.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { InferenceService } from '../../src/application/inference-service.ts';
import { commonPrefixLength } from '../../src/domain/values.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../../src/adapters/tokenizer/index.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { testGpu } from './harness.ts';

/**
 * An agent's chat on tiny-qwen3, whose template drops the reasoning of earlier assistant turns:
 * with `chatTurn` each turn sends only its new message, and the next turn reuses every token the
 * agent's cache holds; re-rendering the whole conversation (what `generate` does with messages)
 * would not, because the first reply contains a <think> block.
 */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
let backend: WebGpuBackend;
let tokenizer: HfTokenizer;

beforeAll(async () => {
  const t = await testGpu();
  const files = new FsModelSource(join(MODELS, 'tiny-qwen3'));
  tokenizer = await HfTokenizer.fromFiles(files);
  backend = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 2 * 1024 * 1024 });
});
afterAll(() => backend.dispose());

describe('chat turns through the engine (tiny-qwen3, WebGPU)', () => {
  it('with a <think> reply in the conversation, re-rendering would lose the cache; the delta keeps it', async () => {
    const engine = new BlockPoolBatchEngine(backend, tokenizer);
    const inference = new InferenceService(engine, new AgentService(engine, tokenizer), tokenizer);
    const user = [{ role: 'user' as const, content: 'A sonnet, please.' }];
    const reply = '<think>\nIambs.\n</think>\n\nShall I';
    // Turn 1 as the agent's context: the prompt, then the reply a thinking model wrote (ending in EOS).
    const turn1 = [...tokenizer.applyChatTemplate(user), ...tokenizer.encode(`${reply}<|im_end|>`)];
    await engine.generate({ agentId: 'thinker', promptIds: turn1, maxTokens: 1 });
    const held = engine.kv.agentBlocks('thinker')?.tokenIds ?? [];
    const next = [{ role: 'user' as const, content: 'Go on.' }];
    const rerendered = tokenizer.applyChatTemplate([...user, { role: 'assistant', content: reply }, ...next]);
    expect(commonPrefixLength(rerendered, held)).toBeLessThan(held.length - 5);
    const second = await inference.chatTurn('thinker', next, { maxTokens: 3 });
    // Every held token is reused; only the closing newline and the new turn are computed.
    expect(second.usage.cachedPromptTokens).toBe(held.length);
    const delta = tokenizer.encode('\n<|im_start|>user\nGo on.<|im_end|>\n<|im_start|>assistant\n');
    expect(second.usage.promptTokens).toBe(turn1.length + delta.length);
    // The next turn continues from the transcript (prompt + reply), again reusing everything held.
    const third = await inference.chatTurn('thinker', [{ role: 'user', content: 'Enough.' }], { maxTokens: 2 });
    expect(third.usage.cachedPromptTokens).toBe(second.usage.promptTokens + second.tokenIds.length - 1);
  }, 180_000);
});

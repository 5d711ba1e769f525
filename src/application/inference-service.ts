import { errorFromPlain } from '../domain/errors.ts';
import type { GenerateOptions, GenerationResult, InferencePort } from '../ports/inbound.ts';
import type { ChatMessage } from '../ports/outbound.ts';
import type { AgentService } from './agent-service.ts';
import type { BlockPoolBatchEngine } from './block-pool-batch-engine.ts';
import { generateTimed } from './engine/timed-generation.ts';

/**
 * One-call generation for an agent. The prompt is the agent's whole context (text or chat
 * messages); whatever prefix of it the agent's cache or a shared prefix holds is not recomputed.
 */
export class InferenceService implements InferencePort {
  constructor(
    private readonly engine: BlockPoolBatchEngine,
    private readonly agents: AgentService,
  ) {}

  async generate(agentId: string, prompt: string | readonly ChatMessage[], options: GenerateOptions = {}): Promise<GenerationResult> {
    this.agents.touch(agentId);
    const { maxTokens, sampling, stop, onToken, signal } = options;
    const run = await generateTimed(this.engine, { agentId, prompt, maxTokens, sampling, stop }, { onToken, signal });
    const { result } = run;
    if (result.error) throw errorFromPlain(result.error);
    return {
      agentId,
      text: result.text,
      tokenIds: result.tokenIds,
      finishReason: result.finishReason,
      usage: {
        promptTokens: run.prefillComputed + run.prefillReused,
        completionTokens: result.tokenCount,
        cachedPromptTokens: run.prefillReused,
      },
      timings: { ttftMs: run.ttftMs, totalMs: run.totalMs },
    };
  }
}

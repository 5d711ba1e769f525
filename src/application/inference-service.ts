import { errorFromPlain } from '../domain/errors.ts';
import type { GenerateOptions, GenerationResult, InferencePort, TokenDelta } from '../ports/inbound.ts';
import type { ChatMessage } from '../ports/outbound.ts';
import type { AgentService } from './agent-service.ts';
import type { BlockPoolBatchEngine } from './block-pool-batch-engine.ts';

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
    const started = performance.now();
    let firstToken = 0;
    const uid = await this.engine.submit({ agentId, prompt, maxTokens: options.maxTokens, sampling: options.sampling, stop: options.stop });
    this.engine.onToken(uid, (d: TokenDelta) => {
      if (firstToken === 0) firstToken = performance.now();
      options.onToken?.(d);
    });
    const abort = (): void => void this.engine.cancel(uid);
    options.signal?.addEventListener('abort', abort, { once: true });
    const pending = this.engine.result(uid);
    void this.engine.run();
    const result = await pending.finally(() => options.signal?.removeEventListener('abort', abort));
    if (result.error) throw errorFromPlain(result.error);
    const accounting = this.engine.accounting(uid) ?? { prefillComputed: 0, prefillReused: 0 };
    const ended = performance.now();
    return {
      agentId,
      text: result.text,
      tokenIds: result.tokenIds,
      finishReason: result.finishReason,
      usage: {
        promptTokens: accounting.prefillComputed + accounting.prefillReused,
        completionTokens: result.tokenCount,
        cachedPromptTokens: accounting.prefillReused,
      },
      timings: { ttftMs: (firstToken || ended) - started, totalMs: ended - started },
    };
  }
}

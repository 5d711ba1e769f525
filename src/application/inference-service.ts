import { errorFromPlain, InvalidRequestError } from '../domain/errors.ts';
import type { GenerateOptions, GenerationResult, InferencePort, SubmitRequest } from '../ports/inbound.ts';
import type { ChatMessage, TokenizerPort } from '../ports/outbound.ts';
import { engineOf, type AgentService, type EngineRef } from './agent-service.ts';
import { chatTurnIds } from './chat-turn.ts';
import { generateTimed } from './engine/timed-generation.ts';

/**
 * One-call generation for an agent. `generate` takes the agent's whole context (text or chat
 * messages); whatever prefix of it the agent's cache or a shared prefix holds is not recomputed.
 * `chatTurn` takes only the new messages of a conversation and appends their tokens to it (see
 * chat-turn.ts), so templates that rewrite earlier turns do not invalidate the cache.
 */
export class InferenceService implements InferencePort {
  /** Each agent's conversation as tokens (prompts and replies, EOS included), per chatTurn. */
  private readonly transcripts = new Map<string, readonly number[]>();

  constructor(
    private readonly engine: EngineRef,
    private readonly agents: AgentService,
    private readonly tokenizer: TokenizerPort | null = null,
  ) {}

  async generate(agentId: string, prompt: string | readonly ChatMessage[], options: GenerateOptions = {}): Promise<GenerationResult> {
    this.transcripts.delete(agentId);
    return this.run(agentId, { prompt }, options);
  }

  /**
   * Append `messages` (the new turn only) to the agent's conversation and generate the reply.
   * The conversation is this service's transcript of earlier turns, else the agent's hot cache,
   * else empty (the messages are then rendered as the first turn).
   */
  async chatTurn(agentId: string, messages: readonly ChatMessage[], options: GenerateOptions = {}): Promise<GenerationResult> {
    if (!this.tokenizer) throw new InvalidRequestError('chat turns need a tokenizer');
    const history = this.transcripts.get(agentId) ?? engineOf(this.engine).kv.agentBlocks(agentId)?.tokenIds ?? [];
    const promptIds = chatTurnIds(this.tokenizer, history, messages);
    this.transcripts.delete(agentId);
    const result = await this.run(agentId, { promptIds }, options);
    this.transcripts.set(agentId, [...promptIds, ...result.tokenIds]);
    return result;
  }

  private async run(agentId: string, prompt: Pick<SubmitRequest, 'prompt' | 'promptIds'>, options: GenerateOptions): Promise<GenerationResult> {
    this.agents.touch(agentId);
    const { maxTokens, sampling, stop, logprobs, onToken, signal, scratch } = options;
    const run = await generateTimed(engineOf(this.engine), { agentId, ...prompt, maxTokens, sampling, stop, logprobs, scratch }, { onToken, signal });
    const { result } = run;
    if (result.error) throw errorFromPlain(result.error);
    return {
      agentId,
      text: result.text,
      tokenIds: result.tokenIds,
      finishReason: result.finishReason,
      ...(result.logprobs ? { logprobs: result.logprobs } : {}),
      ...(result.stopSequence !== undefined ? { stopSequence: result.stopSequence } : {}),
      usage: {
        promptTokens: run.prefillComputed + run.prefillReused,
        completionTokens: result.tokenCount,
        cachedPromptTokens: run.prefillReused,
      },
      timings: { ttftMs: run.ttftMs, totalMs: run.totalMs },
    };
  }
}

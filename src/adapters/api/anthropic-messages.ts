import type { GenerationResult } from '../../ports/inbound.ts';
import type { ChatMessage } from '../../ports/outbound.ts';
import {
  agentOf, invalid, messageFields, messageList, optionalBool, optionalInt, optionalModel, optionalNumber, seedOf, stopStrings, textContent,
  type Body, type ChatRequest,
} from './request-fields.ts';

/**
 * Anthropic's messages shape <-> the neutral ChatRequest and the engine's results. `max_tokens`
 * is required, roles are user and assistant, the system prompt is a top-level field. `agent_id`
 * (or X-Agent-Id) binds the call to an agent's memory, as for OpenAI.
 */
function messages(system: unknown, value: unknown): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (system !== undefined && system !== null) out.push({ role: 'system', content: textContent(system, 'system') });
  messageList(value, 'messages').forEach((m, i) => {
    const f = messageFields(m, `messages.${i}`);
    if (f['role'] !== 'user' && f['role'] !== 'assistant') throw invalid(`messages.${i}.role`, 'must be user or assistant');
    out.push({ role: f['role'], content: textContent(f['content'], `messages.${i}.content`) });
  });
  return out;
}

export function parseAnthropicMessages(body: Body, agentHeader: string | null, random: () => number): ChatRequest {
  if (body['max_tokens'] === undefined || body['max_tokens'] === null) throw invalid('max_tokens', 'Field required');
  return {
    model: optionalModel(body),
    agentId: agentOf(body, agentHeader),
    messages: messages(body['system'], body['messages']),
    maxTokens: optionalInt(body, 'max_tokens', 1),
    temperature: optionalNumber(body, 'temperature', 0, 1),
    topP: optionalNumber(body, 'top_p', Number.MIN_VALUE, 1),
    topK: optionalInt(body, 'top_k', 0),
    // Anthropic has no seed; sampling is random unless temperature is 0.
    seed: seedOf(undefined, random),
    stop: stopStrings(body['stop_sequences'], 'stop_sequences', 16),
    stream: optionalBool(body, 'stream') ?? false,
    includeUsage: true,
  };
}

export interface MessageMeta {
  readonly id: string;
  readonly model: string;
  readonly agentId?: string;
}

type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence';

function stopReason(result: GenerationResult): StopReason {
  if (result.finishReason === 'length') return 'max_tokens';
  return result.stopSequence !== undefined ? 'stop_sequence' : 'end_turn';
}

/** Anthropic counts `input_tokens` as the prompt tokens that were not read from the cache. */
export function anthropicUsage(usage: GenerationResult['usage']): Record<string, number> {
  return {
    input_tokens: usage.promptTokens - usage.cachedPromptTokens,
    output_tokens: usage.completionTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: usage.cachedPromptTokens,
  };
}

export function anthropicMessage(result: GenerationResult, meta: MessageMeta): Record<string, unknown> {
  return {
    id: meta.id,
    type: 'message',
    role: 'assistant',
    model: meta.model,
    ...(meta.agentId ? { agent_id: meta.agentId } : {}),
    content: [{ type: 'text', text: result.text }],
    stop_reason: stopReason(result),
    stop_sequence: result.stopSequence ?? null,
    usage: anthropicUsage(result.usage),
  };
}

/** The events of a streamed message, in Anthropic's order. */
export const anthropicEvents = {
  start(meta: MessageMeta): Record<string, unknown> {
    const message = { id: meta.id, type: 'message', role: 'assistant', model: meta.model, content: [], stop_reason: null, stop_sequence: null };
    return { type: 'message_start', message: { ...message, usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } } };
  },
  blockStart(): Record<string, unknown> {
    return { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } };
  },
  delta(text: string): Record<string, unknown> {
    return { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } };
  },
  blockStop(): Record<string, unknown> {
    return { type: 'content_block_stop', index: 0 };
  },
  /** The final usage rides on message_delta (input and cache counts are known only at the end). */
  messageDelta(result: GenerationResult): Record<string, unknown> {
    return { type: 'message_delta', delta: { stop_reason: stopReason(result), stop_sequence: result.stopSequence ?? null }, usage: anthropicUsage(result.usage) };
  },
  stop(): Record<string, unknown> {
    return { type: 'message_stop' };
  },
};

import type { TokenAlternative, TokenLogprob } from '../../domain/logprobs.ts';
import { MAX_TOP_LOGPROBS } from '../../domain/logprobs.ts';
import type { GenerationResult } from '../../ports/inbound.ts';
import type { ChatMessage } from '../../ports/outbound.ts';
import {
  agentOf, invalid, messageFields, messageList, optionalBool, optionalInt, optionalModel, optionalNumber, seedOf, stopStrings, textContent,
  type Body, type ChatRequest,
} from './request-fields.ts';

/**
 * OpenAI's chat.completions shape <-> the neutral ChatRequest and the engine's results. Field
 * names and ranges follow the OpenAI API reference; `agent_id` (or the X-Agent-Id header) is
 * our extension that binds the call to an agent's memory.
 */
const ROLES: Readonly<Record<string, ChatMessage['role']>> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant', tool: 'tool' };

function messages(value: unknown): ChatMessage[] {
  return messageList(value, 'messages').map((m, i) => {
    const f = messageFields(m, `messages[${i}]`);
    const role = typeof f['role'] === 'string' ? ROLES[f['role']] : undefined;
    if (!role) throw invalid(`messages[${i}].role`, 'must be one of system, developer, user, assistant, tool');
    // An assistant message may carry no content (a tool call); we keep it as empty text.
    const content = f['content'] === null && role === 'assistant' ? '' : textContent(f['content'], `messages[${i}].content`);
    return { role, content };
  });
}

/** logit_bias: token id (as a string key) -> bias in [-100, 100]. */
export function logitBias(value: unknown): Array<[number, number]> {
  const out = new Map<number, number>();
  if (value === undefined || value === null) return [];
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('logit_bias', 'must be an object mapping token ids to numbers');
  for (const [key, bias] of Object.entries(value as Record<string, unknown>)) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || !Number.isSafeInteger(id)) throw invalid('logit_bias', `key ${key} is not a token id`);
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) throw invalid('logit_bias', `bias of ${key} must be a number in [-100, 100]`);
    out.set(id, bias);
  }
  return [...out];
}

function logprobsOf(body: Body): number | undefined {
  const wanted = optionalBool(body, 'logprobs') ?? false;
  const top = optionalInt(body, 'top_logprobs', 0, MAX_TOP_LOGPROBS);
  if (top !== undefined && !wanted) throw invalid('top_logprobs', 'needs logprobs: true');
  return wanted ? (top ?? 0) : undefined;
}

function streamOptions(body: Body, stream: boolean): boolean {
  const o = body['stream_options'];
  if (o === undefined || o === null) return false;
  if (!stream) throw invalid('stream_options', 'is only allowed with stream: true');
  if (typeof o !== 'object' || Array.isArray(o)) throw invalid('stream_options', 'must be an object');
  return optionalBool(o as Body, 'include_usage') ?? false;
}

/** A chat.completions request body (already parsed from JSON) as a ChatRequest. */
export function parseOpenAiChat(body: Body, agentHeader: string | null, random: () => number): ChatRequest {
  const n = optionalInt(body, 'n', 1);
  if (n !== undefined && n !== 1) throw invalid('n', 'only n = 1 is supported');
  const maxTokens = optionalInt(body, 'max_completion_tokens', 1) ?? optionalInt(body, 'max_tokens', 1);
  const stream = optionalBool(body, 'stream') ?? false;
  return {
    model: optionalModel(body),
    agentId: agentOf(body, agentHeader),
    messages: messages(body['messages']),
    maxTokens,
    temperature: optionalNumber(body, 'temperature', 0, 2),
    topP: optionalNumber(body, 'top_p', Number.MIN_VALUE, 1),
    seed: seedOf(optionalInt(body, 'seed', Number.MIN_SAFE_INTEGER), random),
    presencePenalty: optionalNumber(body, 'presence_penalty', -2, 2),
    frequencyPenalty: optionalNumber(body, 'frequency_penalty', -2, 2),
    stop: stopStrings(body['stop'], 'stop', 4),
    logprobs: logprobsOf(body),
    logitBias: logitBias(body['logit_bias']),
    stream,
    includeUsage: streamOptions(body, stream),
  };
}

export interface CompletionMeta {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  readonly agentId?: string;
}

function bytes(text: string): number[] {
  return Array.from(new TextEncoder().encode(text));
}

function alternative(a: TokenAlternative): { token: string; logprob: number; bytes: number[] } {
  return { token: a.token, logprob: a.logprob, bytes: bytes(a.token) };
}

/** OpenAI's logprobs entries: token, logprob, bytes, and top_logprobs of the same shape. */
export function openAiLogprobs(entries: readonly TokenLogprob[]): { content: unknown[]; refusal: null } {
  return { content: entries.map((e) => ({ ...alternative(e), top_logprobs: e.top.map(alternative) })), refusal: null };
}

export function openAiFinishReason(reason: GenerationResult['finishReason']): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}

export function openAiUsage(usage: GenerationResult['usage']): Record<string, unknown> {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens },
  };
}

/** The chat.completion object of a finished generation. */
export function openAiCompletion(result: GenerationResult, meta: CompletionMeta, withLogprobs: boolean): Record<string, unknown> {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    ...(meta.agentId ? { agent_id: meta.agentId } : {}),
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: result.text, refusal: null },
        logprobs: withLogprobs ? openAiLogprobs(result.logprobs ?? []) : null,
        finish_reason: openAiFinishReason(result.finishReason),
      },
    ],
    usage: openAiUsage(result.usage),
  };
}

/** One chat.completion.chunk; `usage` is null on every chunk but the last when usage is asked for. */
export function openAiChunk(meta: CompletionMeta, choice: Record<string, unknown> | null, usage?: Record<string, unknown> | null): Record<string, unknown> {
  return {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: choice ? [{ index: 0, logprobs: null, finish_reason: null, ...choice }] : [],
    ...(usage !== undefined ? { usage } : {}),
  };
}

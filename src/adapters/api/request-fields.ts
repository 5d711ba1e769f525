import { InvalidRequestError } from '../../domain/errors.ts';
import { validateAgentId } from '../../domain/values.ts';
import type { ChatMessage } from '../../ports/outbound.ts';

/**
 * Field checks shared by both APIs' request parsers. Every failure is an InvalidRequestError
 * whose `details.param` names the field, so the caller's error object can point at it.
 */
export type Body = Readonly<Record<string, unknown>>;

export function invalid(param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(`${param}: ${message}`, { param });
}

/** The parsed JSON body, which must be an object. */
export function parseBody(text: string): Body {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidRequestError('the request body is not valid JSON', { param: 'body' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('body', 'must be a JSON object');
  return value as Body;
}

export function optionalNumber(body: Body, param: string, min: number, max: number): number | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw invalid(param, `must be a number in [${min}, ${max}]`);
  return v;
}

export function optionalInt(body: Body, param: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw invalid(param, `must be an integer in [${min}, ${max}]`);
  return v;
}

export function optionalBool(body: Body, param: string): boolean | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(param, 'must be a boolean');
  return v;
}

/** A model name: a string when given (both APIs require it; we check it against the loaded model later). */
export function optionalModel(body: Body): string | undefined {
  const v = body['model'];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw invalid('model', 'must be a non-empty string');
  return v;
}

/** Stop strings from a string or an array of strings, at most `max`. */
export function stopStrings(value: unknown, param: string, max: number): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length > max || list.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw invalid(param, `must be a non-empty string or an array of at most ${max} non-empty strings`);
  }
  return list as string[];
}

/** Text of a message's content: a string, or an array of text parts (`{ type: 'text', text }`). */
export function textContent(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(param, 'must be a string or an array of text parts');
  return content
    .map((part: unknown, i) => {
      const p = (typeof part === 'object' && part !== null ? part : {}) as Record<string, unknown>;
      if (p['type'] !== 'text' || typeof p['text'] !== 'string') throw invalid(`${param}[${i}]`, 'only text parts ({ type: "text", text }) are supported');
      return p['text'];
    })
    .join('');
}

export function messageList(value: unknown, param: string): readonly unknown[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid(param, 'must be a non-empty array');
  return value;
}

export function messageFields(m: unknown, param: string): Record<string, unknown> {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw invalid(param, 'must be an object with role and content');
  return m as Record<string, unknown>;
}

/** The agent a call is bound to: the body's `agent_id`, else the X-Agent-Id header, else none. */
export function agentOf(body: Body, header: string | null): string | undefined {
  const raw = body['agent_id'] ?? header ?? undefined;
  if (raw === undefined || raw === '') return undefined;
  try {
    return validateAgentId(raw);
  } catch {
    throw invalid('agent_id', 'must be 1-128 characters of [A-Za-z0-9_.:@-]');
  }
}

/** A request's sampling seed: a given integer reduced to uint32, else a random one ("unset means random"). */
export function seedOf(value: number | undefined, random: () => number): number {
  if (value === undefined) return random() >>> 0;
  return ((value % 2 ** 32) + 2 ** 32) % 2 ** 32;
}

/** The neutral chat request both APIs translate into. */
export interface ChatRequest {
  readonly model?: string;
  readonly agentId?: string;
  readonly messages: readonly ChatMessage[];
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly seed: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  /** OpenAI's logit_bias as [token id, bias] pairs. */
  readonly logitBias?: ReadonlyArray<readonly [number, number]>;
  readonly stop: readonly string[];
  /** Alternatives per token when logprobs are asked for; absent: no logprobs. */
  readonly logprobs?: number;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

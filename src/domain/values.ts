import { InvalidRequestError, type PlainError } from './errors.ts';
import type { TokenLogprob } from './logprobs.ts';

/** Why a generation ended. `stop`: EOS or a stop string; `length`: max tokens or context. */
export type FinishReason = 'stop' | 'length' | 'error' | 'cancelled';

export const FINISH_REASONS: readonly FinishReason[] = ['stop', 'length', 'error', 'cancelled'];

/** Identifies one agent's cache under one model; caches never cross fingerprints. */
export interface CacheKey {
  readonly agentId: string;
  readonly modelFingerprint: string;
  /** The tokens the caller is about to extend; the store keeps the longest common prefix. */
  readonly tokenIds?: readonly number[];
}

/**
 * An agent's KV blocks in the hot tier: one block table, shared by every layer (block id b
 * addresses the same slot in each layer's K and V pool), covering `tokenIds` in order.
 */
export interface AgentBlocks {
  readonly agentId: string;
  readonly blockTable: readonly number[];
  readonly tokenIds: readonly number[];
}

export interface CompletedGeneration {
  readonly uid: string;
  readonly agentId: string;
  readonly text: string;
  /** Generated token ids only, not the prompt. */
  readonly tokenIds: readonly number[];
  readonly tokenCount: number;
  readonly finishReason: FinishReason;
  /** One entry per generated token, when the request asked for logprobs. */
  readonly logprobs?: readonly TokenLogprob[];
  /** The stop string that ended generation (finishReason 'stop'); absent for EOS. */
  readonly stopSequence?: string;
  /** The agent's blocks after generation, when the cache policy keeps them. */
  readonly blocks?: AgentBlocks;
  /** Each sampled step's logits (vocab floats), when the request asked for them. */
  readonly logits?: readonly Float32Array[];
  readonly error?: PlainError;
}

const AGENT_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** Agent ids become IndexedDB keys and file names, so keep them to a safe alphabet. */
export function validateAgentId(agentId: unknown): string {
  if (typeof agentId !== 'string' || !AGENT_ID.test(agentId)) {
    throw new InvalidRequestError('agentId must be 1-128 characters of [A-Za-z0-9_.:@-]', { agentId });
  }
  return agentId;
}

/** A fingerprint names a storage scope (a folder, a database): no dots first, no separators. */
const FINGERPRINT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

export function validateFingerprint(fingerprint: unknown): string {
  if (typeof fingerprint !== 'string' || !FINGERPRINT.test(fingerprint)) {
    throw new InvalidRequestError('model fingerprint must be 1-128 characters of [A-Za-z0-9_.-], not starting with a dot', { fingerprint });
  }
  return fingerprint;
}

export function isFingerprint(name: string): boolean {
  return FINGERPRINT.test(name);
}

export function validateTokenIds(tokenIds: unknown, vocabSize: number): readonly number[] {
  if (!Array.isArray(tokenIds) && !ArrayBuffer.isView(tokenIds)) {
    throw new InvalidRequestError('tokenIds must be an array of integers');
  }
  const ids = Array.from(tokenIds as ArrayLike<number>);
  ids.forEach((id, index) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InvalidRequestError(`token id ${String(id)} at index ${index} is outside [0, ${vocabSize})`, {
        index,
        id,
        vocabSize,
      });
    }
  });
  return ids;
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** The fields a persisted cache record must carry, checked before anything is written. */
export interface CacheRecordFields {
  readonly agentId: string;
  readonly modelFingerprint: string;
  readonly tokenCount: number;
  readonly lastUsed: number;
}

export function validateCacheRecord(agentId: string, record: CacheRecordFields): void {
  if (record.agentId !== agentId) {
    throw new InvalidRequestError('record.agentId differs from agentId', { agentId, recordAgentId: record.agentId });
  }
  if (typeof record.modelFingerprint !== 'string' || record.modelFingerprint === '') {
    throw new InvalidRequestError('record.modelFingerprint must be a non-empty string', { agentId });
  }
  if (!Number.isSafeInteger(record.tokenCount) || record.tokenCount < 0) {
    throw new InvalidRequestError('record.tokenCount must be a non-negative integer', { agentId, tokenCount: record.tokenCount });
  }
  if (!Number.isFinite(record.lastUsed)) {
    throw new InvalidRequestError('record.lastUsed must be a finite number', { agentId, lastUsed: record.lastUsed });
  }
}

/** A chat message as templates take it (the ports' ChatMessage has this shape). */
export interface MessageFields {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
}

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'tool']);

/** Untrusted chat messages (from the page or an HTTP body): a non-empty array of role + text. */
export function validateMessages(messages: unknown): MessageFields[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new InvalidRequestError('messages must be a non-empty array');
  return messages.map((m: unknown, index) => {
    const v = (typeof m === 'object' && m !== null ? m : {}) as Partial<Record<'role' | 'content', unknown>>;
    if (typeof v.role !== 'string' || !ROLES.has(v.role) || typeof v.content !== 'string') {
      throw new InvalidRequestError(`messages[${index}] needs a role (system, user, assistant or tool) and string content`, { index });
    }
    return { role: v.role as MessageFields['role'], content: v.content };
  });
}

/** A positive integer count (max tokens and the like), or InvalidRequestError naming it. */
export function validatePositiveInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidRequestError(`${name} must be a positive integer`, { [name]: typeof value === 'number' ? value : String(value) });
  }
  return value;
}


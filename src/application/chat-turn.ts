import { InvalidRequestError } from '../domain/errors.ts';
import type { ChatMessage, TokenizerPort } from '../ports/outbound.ts';

/**
 * An agent's conversation grows by appending each new turn's tokens to what it already holds; it
 * is never re-rendered from the start. Chat templates rewrite earlier turns (Qwen3 drops the
 * <think> blocks of past assistant turns; Llama 3 stamps today's date into the system header), so
 * rendering the whole conversation again would change tokens the agent's KV cache already covers
 * and lose the cache from that point on.
 *
 * The new turn is rendered as a delta: the template renders an anchor conversation (a user
 * message and an assistant reply holding a sentinel) followed by the new messages; the text after
 * the sentinel is the closing of an assistant turn plus the new turn with its generation prompt.
 * What the history already holds of that closing (an EOS the model generated, or a context that
 * was rendered closed) is not repeated.
 */
const SENTINEL = '\u2063semantic-turn-sentinel\u2063';
const ANCHOR: readonly ChatMessage[] = [
  { role: 'user', content: 'anchor' },
  { role: 'assistant', content: SENTINEL },
];

function afterSentinel(text: string): string {
  const at = text.lastIndexOf(SENTINEL);
  if (at < 0) {
    throw new InvalidRequestError('the chat template dropped the assistant message it was given, so a turn cannot be rendered as a delta');
  }
  return text.slice(at + SENTINEL.length);
}

/** The text that closes an assistant turn, and the new messages' text with the generation prompt. */
export function renderTurnDelta(tokenizer: TokenizerPort, messages: readonly ChatMessage[]): { closing: string; turn: string } {
  const closing = afterSentinel(tokenizer.renderChat(ANCHOR, { addGenerationPrompt: false }));
  const tail = afterSentinel(tokenizer.renderChat([...ANCHOR, ...messages], { addGenerationPrompt: true }));
  if (!tail.startsWith(closing)) {
    throw new InvalidRequestError('the chat template closes an assistant turn differently when more messages follow', { closing, tail: tail.slice(0, 80) });
  }
  return { closing, turn: tail.slice(closing.length) };
}

/** How much of `closing` still has to follow `history` (which may already end with all or part of it). */
function missingClosing(tokenizer: TokenizerPort, history: readonly number[], closing: string): string {
  const last = history[history.length - 1];
  if (tokenizer.eosTokenIds().includes(last)) {
    const eos = tokenizer.decode([last]);
    if (closing.startsWith(eos)) return closing.slice(eos.length);
  }
  // A context rendered closed (createAgent renders without a generation prompt) ends with it.
  return tokenizer.decode(history.slice(-32)).endsWith(closing) ? '' : closing;
}

/**
 * The prompt ids of a new chat turn: `history` (the agent's conversation so far, generated
 * tokens included) followed by the tokens of `messages` only. With no history the messages are
 * rendered whole, as the template's first turn (system prompt, BOS, date stamp and all).
 */
export function chatTurnIds(tokenizer: TokenizerPort, history: readonly number[], messages: readonly ChatMessage[]): number[] {
  if (messages.length === 0) throw new InvalidRequestError('a chat turn needs at least one message');
  if (history.length === 0) return tokenizer.applyChatTemplate(messages);
  const { closing, turn } = renderTurnDelta(tokenizer, messages);
  const delta = missingClosing(tokenizer, history, closing) + turn;
  return [...history, ...tokenizer.encode(delta, { addSpecialTokens: false })];
}

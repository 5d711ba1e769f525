import type { OpenAiMessage } from '../src/client/index.ts';
import type { ChatLine, SceneState } from './saved-state.ts';

/**
 * Characters of history sent with a turn. The embedded model's context is 256 tokens (about 3
 * characters each); the reply needs room too. Older lines drop out first; the system prompt
 * (shared with other agents, so its blocks are shared) always stays.
 */
export const HISTORY_CHARS = 420;

function fit<T extends { readonly content: string }>(lines: readonly T[], budget: number): T[] {
  const kept: T[] = [];
  let used = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    used += lines[i].content.length + 12;
    if (used > budget) break;
    kept.unshift(lines[i]);
  }
  return kept;
}

/** An agent's chat as OpenAI messages: its system prompt, then the latest lines that fit. */
export function chatMessages(system: string, lines: readonly ChatLine[]): OpenAiMessage[] {
  const history = fit(lines, Math.max(0, HISTORY_CHARS - system.length));
  return [...(system ? [{ role: 'system' as const, content: system }] : []), ...history.map((l) => ({ role: l.role, content: l.content }))];
}

/**
 * A scene turn for `speaker`, seen from its own memory: its earlier speeches are its own
 * (assistant), the others' are play text headed by their names. The chat template renders
 * system lines verbatim, so the model reads "NAME:\nspeech" as in the plays it learned.
 */
export function sceneMessages(scene: SceneState, speaker: string): OpenAiMessage[] {
  const history = fit(scene.lines, Math.max(0, HISTORY_CHARS - scene.system.length));
  return [
    { role: 'system', content: scene.system },
    ...history.map((l): OpenAiMessage => (l.speaker === speaker ? { role: 'assistant', content: l.content } : { role: 'system', content: `${l.speaker}:\n${l.content}` })),
  ];
}

import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commonPrefixLength } from '../src/domain/values.ts';
import { validateRequest } from '../src/application/engine/requests.ts';
import { chatTurnIds } from '../src/application/chat-turn.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import type { ChatMessage } from '../src/ports/outbound.ts';
import { QWEN25_05B } from '../tools/twin-specs.ts';

/**
 * Tokenizer fidelity for real repos: chat_template.jinja, BOS as the tokenizer config says,
 * generation_config.json sampling defaults, and chat turns appended as a delta so that templates
 * that rewrite earlier turns (Qwen3 drops <think> blocks, Llama 3 stamps a date) keep the cache.
 */
const MODELS = join(import.meta.dirname, '..', 'public', 'models');
const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A copy of a fixture folder with some files replaced (or added). */
function variant(id: string, files: Record<string, string>, jsonEdits: Record<string, Record<string, unknown>> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), `semantic-tok-${id}-`));
  temps.push(dir);
  cpSync(join(MODELS, id), dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  for (const [name, edit] of Object.entries(jsonEdits)) {
    const json = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, name), JSON.stringify({ ...json, ...edit }));
  }
  return dir;
}

const USER: ChatMessage[] = [{ role: 'user', content: 'Speak the speech.' }];

// Stamps the number of messages into the system header: like Llama 3's date stamp, the first
// lines of the prompt change from one turn to the next.
const STAMPED_TEMPLATE =
  "{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\nMessages so far: {{ messages | length }}<|eot_id|>" +
  "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}" +
  "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

describe('chat_template.jinja', () => {
  it('wins over tokenizer_config.json, through fromFiles and load', async () => {
    const dir = variant('tiny-qwen2', { 'chat_template.jinja': STAMPED_TEMPLATE.replace(/<\|(start_header_id|end_header_id|eot_id)\|>/g, '|') });
    const direct = await HfTokenizer.fromFiles(new FsModelSource(dir));
    const auto = await HfTokenizer.load({ modelId: dir.split('/').pop() ?? '', localModelPath: tmpdir(), files: new FsModelSource(dir) });
    for (const tok of [direct, auto]) expect(tok.renderChat(USER)).toContain('Messages so far: 1');
    const plain = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, 'tiny-qwen2')));
    expect(plain.renderChat(USER)).not.toContain('Messages so far');
  });
});

describe('BOS for raw-text prompts', () => {
  it('Llama 3 (post-processor adds <|begin_of_text|>) gets it; Qwen does not; add_bos_token false turns it off', async () => {
    const llama = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, 'tiny-llama')));
    const bos = llama.tokenToId('<|begin_of_text|>');
    expect(llama.encodePrompt('ROMEO:')).toEqual([bos, ...llama.encode('ROMEO:')]);
    const qwen = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, 'tiny-qwen2')));
    expect(qwen.encodePrompt('ROMEO:')).toEqual(qwen.encode('ROMEO:'));
    const off = await HfTokenizer.fromFiles(new FsModelSource(variant('tiny-llama', {}, { 'tokenizer_config.json': { add_bos_token: false } })));
    expect(off.encodePrompt('ROMEO:')).toEqual(off.encode('ROMEO:'));
    // The engine encodes text prompts this way.
    expect(validateRequest({ agentId: 'a', prompt: 'ROMEO:' }, llama, 517, 2048).promptIds[0]).toBe(bos);
  });
});

describe('generation_config.json defaults', () => {
  it("Qwen2.5's defaults apply to a request unless it sets the field", async () => {
    const dir = variant('tiny-qwen2', { 'generation_config.json': JSON.stringify(QWEN25_05B.generationConfig) });
    const tok = await HfTokenizer.fromFiles(new FsModelSource(dir));
    expect(tok.generationDefaults()).toEqual({ temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.1 });
    // Its eos list still comes from the same file.
    expect(tok.eosTokenIds()).toEqual(expect.arrayContaining([151645, 151643]));
    const given = validateRequest({ agentId: 'a', promptIds: [1, 2], sampling: { temperature: 0, topK: 5 } }, tok, 515, 2048).sampling;
    expect(given).toEqual({ temperature: 0, topK: 5, topP: 0.8, seed: expect.any(Number), repetitionPenalty: 1.1 }); // unset seed: random
    const fixture = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, 'tiny-qwen2')));
    expect(validateRequest({ agentId: 'a', promptIds: [1, 2] }, fixture, 515, 2048).sampling).toEqual({ temperature: 0, topK: 0, topP: 1, seed: expect.any(Number) });
  });
});

describe('chat turns are appended, never re-rendered', () => {
  /** Two turns: the second's prompt must extend the first turn's prompt + reply token for token. */
  async function twoTurns(tok: HfTokenizer, reply: string, eos: number): Promise<{ history: number[]; second: number[]; rerendered: number[] }> {
    const first = chatTurnIds(tok, [], USER);
    expect(first).toEqual(tok.applyChatTemplate(USER));
    const history = [...first, ...tok.encode(reply), eos];
    const next: ChatMessage[] = [{ role: 'user', content: 'Again, more slowly.' }];
    const second = chatTurnIds(tok, history, next);
    const rerendered = tok.applyChatTemplate([...USER, { role: 'assistant', content: reply }, ...next]);
    return { history, second, rerendered };
  }

  it('Qwen3 template (drops earlier <think> blocks): the delta keeps every cached token', async () => {
    const tok = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, 'tiny-qwen3')));
    const imEnd = tok.tokenToId('<|im_end|>') ?? -1;
    const { history, second, rerendered } = await twoTurns(tok, '<think>\nPonder.\n</think>\n\nI will.', imEnd);
    expect(second.slice(0, history.length)).toEqual(history);
    expect(tok.decode(second.slice(history.length))).toBe('\n<|im_start|>user\nAgain, more slowly.<|im_end|>\n<|im_start|>assistant\n');
    // Re-rendering from scratch would have lost the cache inside the first reply.
    expect(commonPrefixLength(rerendered, history)).toBeLessThan(history.length - 3);
  });

  it('a template that stamps its header (like Llama 3 dates): the delta keeps every cached token', async () => {
    const tok = await HfTokenizer.fromFiles(new FsModelSource(variant('tiny-llama', { 'chat_template.jinja': STAMPED_TEMPLATE })));
    const eot = tok.tokenToId('<|eot_id|>') ?? -1;
    const { history, second, rerendered } = await twoTurns(tok, 'I will.', eot);
    expect(second.slice(0, history.length)).toEqual(history);
    expect(tok.decode(second.slice(history.length))).toBe('<|start_header_id|>user<|end_header_id|>\n\nAgain, more slowly.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    // Re-rendering diverges inside the first turn's prompt (its stamped header).
    expect(commonPrefixLength(rerendered, history)).toBeLessThan(history.length - tok.encode('I will.').length - 1);
  });

  it('closes a reply cut by max tokens, and adds nothing after a context rendered closed', async () => {
    const tok = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, 'tiny-qwen3')));
    const cut = [...tok.applyChatTemplate(USER), ...tok.encode('I wi')];
    const next: ChatMessage[] = [{ role: 'user', content: 'Go on.' }];
    expect(tok.decode(chatTurnIds(tok, cut, next).slice(cut.length))).toBe('<|im_end|>\n<|im_start|>user\nGo on.<|im_end|>\n<|im_start|>assistant\n');
    const context = tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }], { addGenerationPrompt: false });
    expect(tok.decode(chatTurnIds(tok, context, next).slice(context.length))).toBe('<|im_start|>user\nGo on.<|im_end|>\n<|im_start|>assistant\n');
  });
});

/**
 * The tokenizer of a lone GGUF file (tokenizer.ggml.* rebuilt as HF files) against the HF
 * tokenizer.json it was converted from: same ids, same text, same chat prompt, same stop tokens.
 * Plus a hand-built SentencePiece vocabulary whose encoding is derivable by hand.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ggufTokenizerFiles, GgufTokenizerSource, MemoryRangeSource, readGguf } from '../src/adapters/gguf/index.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import type { ModelFileSource } from '../src/ports/outbound.ts';
import { writeGguf, type GgufMetaValue } from '../tools/gguf-writer.ts';

const MODELS = join(import.meta.dirname, '..', 'public', 'models');
const TEXTS = ['Hello, world!', "  It's 2024 — déjà vu?\n\nyes", 'ROMEO:\nWhat light through yonder window breaks'];

async function ggufTokenizer(bytes: Uint8Array, beside?: ModelFileSource): Promise<HfTokenizer> {
  const file = await readGguf(new MemoryRangeSource(bytes));
  return HfTokenizer.fromFiles(new GgufTokenizerSource('test.gguf', ggufTokenizerFiles(file), beside));
}

describe('tokenizer from GGUF metadata (gpt2 byte-level BPE)', () => {
  it.each([
    ['tiny-llama-q8_0.gguf', 'tiny-llama'],
    ['tiny-qwen2-q4_0.gguf', 'tiny-qwen2'],
    ['tiny-qwen3-q8_0.gguf', 'tiny-qwen3'],
  ])('%s encodes, decodes and templates as %s/tokenizer.json', async (file, id) => {
    const ours = await ggufTokenizer(new Uint8Array(readFileSync(join(MODELS, 'gguf', file))));
    const hf = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, id)));
    for (const text of TEXTS) {
      const ids = hf.encode(text);
      expect(ours.encode(text)).toEqual(ids);
      expect(ours.encodePrompt(text)).toEqual(hf.encodePrompt(text));
      expect(ours.decode(ids)).toBe(text);
    }
    const chat = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hi <|im_end|> there' }];
    expect(ours.applyChatTemplate(chat)).toEqual(hf.applyChatTemplate(chat));
    expect(ours.vocabSize()).toBe(hf.vocabSize());
    // The GGUF names one eos (plus eot); each of them stops generation under HF's config too.
    for (const eos of ours.eosTokenIds()) expect(hf.eosTokenIds()).toContain(eos);
    const special = hf.encode('<|im_start|>x', { addSpecialTokens: false });
    expect(ours.decode(special, { skipSpecialTokens: true })).toBe(hf.decode(special, { skipSpecialTokens: true }));
  });

  it('a tokenizer.json beside the file wins', async () => {
    // tiny-qwen2's tokenizer files beside a llama GGUF: no BOS on prompts, ChatML specials.
    const bytes = new Uint8Array(readFileSync(join(MODELS, 'gguf', 'tiny-llama-q8_0.gguf')));
    const beside = new FsModelSource(join(MODELS, 'tiny-qwen2'));
    const ours = await ggufTokenizer(bytes, beside);
    const qwen = await HfTokenizer.fromFiles(beside);
    const llama = await ggufTokenizer(bytes);
    expect(ours.encodePrompt('hi')).toEqual(qwen.encodePrompt('hi'));
    expect(llama.encodePrompt('hi')).toEqual([512, ...qwen.encodePrompt('hi')]);
    expect(ours.eosTokenIds()).toEqual(qwen.eosTokenIds());
  });
});

describe('tokenizer from GGUF metadata (llama SentencePiece)', () => {
  // Scores rank merges: the merged piece with the higher score merges first.
  const pieces: Array<[string, number, number]> = [
    ['<unk>', 0, 2], ['<s>', 0, 3], ['</s>', 0, 3], ['<0x78>', 0, 6], ['<0x21>', 0, 6],
    ['▁', -1, 1], ['h', -2, 1], ['e', -3, 1], ['l', -4, 1], ['o', -5, 1], ['w', -6, 1], ['r', -7, 1], ['d', -8, 1],
    ['ll', -9, 1], ['he', -10, 1], ['hell', -11, 1], ['hello', -12, 1], ['▁hello', -13, 1],
    ['or', -14, 1], ['▁w', -15, 1], ['▁wor', -16, 1], ['ld', -17, 1], ['▁world', -18, 1],
  ];
  const meta = (extra: Record<string, GgufMetaValue> = {}): Uint8Array => writeGguf({
    metadata: {
      'tokenizer.ggml.model': { type: 'string', value: 'llama' },
      'tokenizer.ggml.tokens': { type: 'array', elem: 'string', value: pieces.map((p) => p[0]) },
      'tokenizer.ggml.scores': { type: 'array', elem: 'f32', value: pieces.map((p) => p[1]) },
      'tokenizer.ggml.token_type': { type: 'array', elem: 'i32', value: pieces.map((p) => p[2]) },
      'tokenizer.ggml.bos_token_id': { type: 'u32', value: 1 },
      'tokenizer.ggml.eos_token_id': { type: 'u32', value: 2 },
      'tokenizer.ggml.unknown_token_id': { type: 'u32', value: 0 },
      'tokenizer.ggml.add_bos_token': { type: 'bool', value: true },
      'tokenizer.chat_template': { type: 'string', value: "{% for m in messages %}[{{ m['content'] }}]{% endfor %}" },
      ...extra,
    },
    tensors: [],
  });
  const id = (piece: string): number => pieces.findIndex((p) => p[0] === piece);

  it('encodes words into their pieces, bytes by fallback, and decodes back', async () => {
    const tok = await ggufTokenizer(meta());
    expect(tok.encodePrompt('hello world')).toEqual([id('<s>'), id('▁hello'), id('▁world')]);
    expect(tok.encode('hello x!')).toEqual([id('▁hello'), id('▁'), id('<0x78>'), id('<0x21>')]);
    expect(tok.decode(tok.encode('hello world'))).toBe('hello world');
    expect(tok.decode([id('<s>'), id('▁hello'), id('<0x78>')], { skipSpecialTokens: true })).toBe('hellox');
    expect(tok.eosTokenIds()).toEqual([2]);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hello' }])).toEqual(tok.encode('[hello]'));
  });

  it('refuses a tokenizer model it cannot build', async () => {
    await expect(ggufTokenizer(meta({ 'tokenizer.ggml.model': { type: 'string', value: 'rwkv' } }))).rejects.toMatchObject({ name: 'TokenizerError' });
  });
});

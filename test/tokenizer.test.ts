import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { ModelNotFoundError, TokenizerError } from '../src/domain/errors.ts';
import type { ChatMessage, ModelFileSource } from '../src/ports/outbound.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODELS = join(ROOT, 'public', 'models');
const CORPUS = readFileSync(join(ROOT, 'tools', 'data', 'tinyshakespeare.txt'), 'utf8');

/** Minimal folder-backed ModelFileSource; enough to hand generation_config.json over. */
function folderSource(dir: string): ModelFileSource {
  return {
    id: dir,
    has: async (name) => existsSync(join(dir, name)),
    read: async (name) => {
      if (!existsSync(join(dir, name))) throw new ModelNotFoundError(`${name} not in ${dir}`);
      return new Uint8Array(readFileSync(join(dir, name)));
    },
  };
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

const load = (id: string): Promise<HfTokenizer> =>
  HfTokenizer.load({ modelId: id, localModelPath: MODELS, files: folderSource(join(MODELS, id)) });

const SHAKESPEARE_LINES = CORPUS.split('\n')
  .filter((line) => line.trim().length > 0)
  .filter((_, i) => i % 997 === 0)
  .slice(0, 24);

const ODD_TEXTS = [
  '',
  ' ',
  '   leading and trailing   ',
  'tabs\t\tand\r\nwindows\r\nlines\n\n\n',
  '\u00a0non-breaking\u2003em space\u3000ideographic',
  'naïve café — “quotes” ‘single’ … ½ ² ³',
  'e\u0301 (decomposed) vs \u00e9 (composed)',
  '日本語のテキストと中文',
  'Здравствуй, мир! Γειά σου Κόσμε',
  '👋🏽 👨‍👩‍👧‍👦 🇫🇷 🎉🎉🎉',
  'digits 1234567890 and 3.14159, -42, 1e-5',
  "it's, they're, we've, I'm, you'll, he'd, IT'S",
  '\u0000\u0001\u007f control bytes',
  'x'.repeat(300),
  '    code:\n        indent()\n',
];

interface Family {
  readonly id: string;
  readonly specials: readonly string[];
  readonly nonSpecial: readonly string[];
  readonly bos: string | null;
  readonly rendered: string;
  readonly renderedNoPrompt: string;
}

const SYSTEM_USER: ChatMessage[] = [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: 'Speak, speak.' },
];

const CHATML = '<|im_start|>system\nYou are a terse assistant.<|im_end|>\n<|im_start|>user\nSpeak, speak.<|im_end|>\n';

const FAMILIES: readonly Family[] = [
  {
    id: 'tiny-llama',
    specials: ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
    nonSpecial: [],
    bos: '<|begin_of_text|>',
    renderedNoPrompt:
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a terse assistant.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nSpeak, speak.<|eot_id|>',
    rendered:
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a terse assistant.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nSpeak, speak.<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  },
  {
    id: 'tiny-qwen2',
    specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    nonSpecial: [],
    bos: null,
    renderedNoPrompt: CHATML,
    rendered: CHATML + '<|im_start|>assistant\n',
  },
  {
    id: 'tiny-qwen3',
    specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    nonSpecial: ['<think>', '</think>'],
    bos: null,
    renderedNoPrompt: CHATML,
    rendered: CHATML + '<|im_start|>assistant\n',
  },
];

describe.each(FAMILIES)('HfTokenizer on $id', (family) => {
  let tok: HfTokenizer;
  const dir = join(MODELS, family.id);

  beforeAll(async () => {
    tok = await load(family.id);
  });

  it('round-trips Shakespeare exactly, in fewer tokens than bytes', () => {
    expect(SHAKESPEARE_LINES.length).toBeGreaterThan(10);
    for (const line of SHAKESPEARE_LINES) {
      const ids = tok.encode(line);
      expect(tok.decode(ids)).toBe(line);
    }
    const passage = CORPUS.slice(5000, 8000);
    const ids = tok.encode(passage);
    expect(tok.decode(ids)).toBe(passage);
    expect(ids.length).toBeLessThan(new TextEncoder().encode(passage).length * 0.6);
  });

  it.each(ODD_TEXTS.map((text) => [JSON.stringify(text).slice(0, 40), text]))(
    'round-trips odd text %s byte for byte',
    (_label, text) => {
      const ids = tok.encode(text);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize())).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    },
  );

  it('encodes every special and added token to one id, also inside text', () => {
    for (const token of [...family.specials, ...family.nonSpecial]) {
      const id = tok.tokenToId(token);
      expect(id).toBeGreaterThanOrEqual(512);
      expect(tok.encode(token)).toEqual([id]);
      const ids = tok.encode(`before${token}after`);
      expect(ids.filter((x) => x === id)).toHaveLength(1);
      expect(tok.decode(ids)).toBe(`before${token}after`);
    }
  });

  it('knows no token that is not in the vocabulary', () => {
    expect(tok.tokenToId('<|no such token|>')).toBeUndefined();
  });

  it('drops special tokens, and only those, when asked', () => {
    const text = ['hello', ...family.specials, ...family.nonSpecial, 'world'].join('');
    const ids = tok.encode(text);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(['hello', ...family.nonSpecial, 'world'].join(''));
  });

  it('adds BOS only when asked, and only for Llama', () => {
    const plain = tok.encode('Speak, speak.');
    const withSpecials = tok.encode('Speak, speak.', { addSpecialTokens: true });
    if (family.bos === null) {
      expect(withSpecials).toEqual(plain);
      expect(tok.bosTokenId()).toBeNull();
    } else {
      expect(withSpecials).toEqual([tok.tokenToId(family.bos), ...plain]);
      expect(tok.bosTokenId()).toBe(tok.tokenToId(family.bos));
    }
  });

  it('reports the eos ids of generation_config.json and tokenizer_config.json', () => {
    const generation = readJson(join(dir, 'generation_config.json'));
    const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'));
    const eosToken = tokenizerConfig['eos_token'] as string;
    expect(tok.eosTokenIds()).toEqual(generation['eos_token_id']);
    expect(tok.eosTokenIds()).toContain(tok.tokenToId(eosToken));
    expect(new Set(tok.eosTokenIds()).size).toBe(tok.eosTokenIds().length);
  });

  it('has a vocabulary of at most 1024 that matches config.json', () => {
    const config = readJson(join(dir, 'config.json'));
    expect(tok.vocabSize()).toBeLessThanOrEqual(1024);
    expect(tok.vocabSize()).toBe(config['vocab_size']);
  });

  it('renders a system + user conversation in the family format', () => {
    expect(tok.renderChat(SYSTEM_USER)).toBe(family.rendered);
    expect(tok.renderChat(SYSTEM_USER, { addGenerationPrompt: false })).toBe(family.renderedNoPrompt);
  });

  it('encodes the chat template without extra specials, and decodes it back', () => {
    const ids = tok.applyChatTemplate(SYSTEM_USER);
    expect(ids).toEqual(tok.encode(family.rendered));
    expect(tok.decode(ids)).toBe(family.rendered);
    if (family.bos !== null) {
      expect(ids[0]).toBe(tok.tokenToId(family.bos));
      expect(ids[1]).not.toBe(tok.tokenToId(family.bos));
    }
  });

  it('decodes an empty id list to the empty string', () => {
    expect(tok.decode([])).toBe('');
  });
});

describe('chat template specifics', () => {
  it('Qwen2 adds its default system message when there is none', async () => {
    const tok = await load('tiny-qwen2');
    expect(tok.renderChat([{ role: 'user', content: 'Hi' }])).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Qwen3 adds no system message and drops reasoning from earlier assistant turns', async () => {
    const tok = await load('tiny-qwen3');
    const rendered = tok.renderChat([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '<think>\nmull it over\n</think>\n\nHello.' },
      { role: 'user', content: 'Bye' },
    ]);
    expect(rendered).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n' +
        '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Llama 3 trims message content', async () => {
    const tok = await load('tiny-llama');
    expect(tok.renderChat([{ role: 'user', content: '  padded \n' }], { addGenerationPrompt: false })).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\npadded<|eot_id|>',
    );
  });
});

describe('HfTokenizer.load', () => {
  it('prefers an explicit generationConfig over the files', async () => {
    const tok = await HfTokenizer.load({
      modelId: 'tiny-llama',
      localModelPath: MODELS,
      generationConfig: { eos_token_id: 513 },
      files: folderSource(join(MODELS, 'tiny-llama')),
    });
    // 513 from the given config, then the tokenizer's own <|eot_id|>.
    expect(tok.eosTokenIds()).toEqual([513, 516]);
  });

  it('falls back to the tokenizer eos token without a generation config', async () => {
    const tok = await HfTokenizer.load({ modelId: 'tiny-qwen2', localModelPath: MODELS });
    expect(tok.eosTokenIds()).toEqual([tok.tokenToId('<|im_end|>')]);
  });

  it('keeps concurrent loads from different roots apart', async () => {
    // env.localModelPath is global; a second root only resolves if loads do not interleave.
    const otherRoot = mkdtempSync(join(tmpdir(), 'semantic-tok-'));
    try {
      cpSync(join(MODELS, 'tiny-qwen3'), join(otherRoot, 'copied-qwen3'), { recursive: true });
      const [a, b] = await Promise.all([
        HfTokenizer.load({ modelId: 'tiny-llama', localModelPath: MODELS }),
        HfTokenizer.load({ modelId: 'copied-qwen3', localModelPath: otherRoot }),
      ]);
      expect(a.tokenToId('<|eot_id|>')).toBe(516);
      expect(b.tokenToId('<think>')).toBe(515);
    } finally {
      rmSync(otherRoot, { recursive: true, force: true });
    }
  });

  it('turns a missing model into a TokenizerError', async () => {
    await expect(HfTokenizer.load({ modelId: 'no-such-model', localModelPath: MODELS })).rejects.toBeInstanceOf(
      TokenizerError,
    );
  });

  it('turns a malformed generation_config.json into a TokenizerError', async () => {
    const broken: ModelFileSource = {
      id: 'broken',
      has: async () => true,
      read: async () => new TextEncoder().encode('{ not json'),
    };
    await expect(
      HfTokenizer.load({ modelId: 'tiny-llama', localModelPath: MODELS, files: broken }),
    ).rejects.toBeInstanceOf(TokenizerError);
  });
});

describe('HfTokenizer.fromFiles (the browser path: files from any ModelFileSource)', () => {
  it.each(['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'])('%s: same class, ids, chat template and eos ids as AutoTokenizer', async (id) => {
    const { FsModelSource } = await import('../src/adapters/node/hf-folder.ts');
    const { HfTokenizer } = await import('../src/adapters/tokenizer/index.ts');
    const { join } = await import('node:path');
    const models = join(import.meta.dirname, '..', 'public', 'models');
    const files = new FsModelSource(join(models, id));
    const auto = await HfTokenizer.load({ modelId: id, localModelPath: models, files });
    const direct = await HfTokenizer.fromFiles(files);
    const text = 'ROMEO:\nBut soft, what light through yonder window breaks? 🌹';
    const chat = [{ role: 'user' as const, content: text }];
    expect(direct.encode(text)).toEqual(auto.encode(text));
    expect(direct.encode(text, { addSpecialTokens: true })).toEqual(auto.encode(text, { addSpecialTokens: true }));
    expect(direct.applyChatTemplate(chat)).toEqual(auto.applyChatTemplate(chat));
    expect(direct.eosTokenIds()).toEqual(auto.eosTokenIds());
    expect(direct.vocabSize()).toBe(auto.vocabSize());
  });
});

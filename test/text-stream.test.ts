import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { TextStream } from '../src/application/engine/text-stream.ts';
import { ModelNotFoundError } from '../src/domain/errors.ts';

const MODELS = fileURLToPath(new URL('../public/models', import.meta.url));

function load(id: string): Promise<HfTokenizer> {
  const dir = join(MODELS, id);
  return HfTokenizer.load({
    modelId: id,
    localModelPath: MODELS,
    files: {
      id: dir,
      has: async (name) => existsSync(join(dir, name)),
      read: async (name) => {
        if (!existsSync(join(dir, name))) throw new ModelNotFoundError(`${name} not in ${dir}`);
        return new Uint8Array(readFileSync(join(dir, name)));
      },
    },
  });
}

/** Streams `ids` one token at a time; returns the text and how many tokens the decoder was handed. */
function stream(decode: (ids: readonly number[]) => string, ids: readonly number[]): { text: string; decoded: number; maxDelta: number } {
  let decoded = 0;
  const counting = (window: readonly number[]): string => {
    decoded += window.length;
    return decode(window);
  };
  const s = new TextStream(counting, []);
  let text = '';
  let maxDelta = 0;
  for (let i = 1; i <= ids.length; i++) {
    const delta = s.update(ids.slice(0, i)).delta;
    expect(delta.includes('\ufffd')).toBe(false);
    maxDelta = Math.max(maxDelta, delta.length);
    text += delta;
  }
  return { text: text + s.flush(ids), decoded, maxDelta };
}

// Emoji, CJK, accents and combining marks: byte-level BPE splits these into byte tokens, so
// single tokens end inside a character and must wait for the rest.
const TEXT = 'Hello, wörld! naïve café — 東京で寿司🍣を食べた 👩‍👩‍👧 e\u0301 ½² the end. '.repeat(8);

describe('TextStream, incremental detokenization', () => {
  let tokenizer: HfTokenizer;
  beforeAll(async () => {
    tokenizer = await load('tiny-qwen2');
  });

  it('streams deltas that add up to the full decode, never showing half a character (byte-level BPE)', () => {
    const ids = tokenizer.encode(TEXT, { addSpecialTokens: false });
    const decode = (w: readonly number[]): string => tokenizer.decode(w);
    const { text } = stream(decode, ids);
    expect(text).toBe(decode(ids));
    expect(text).toBe(TEXT);
  });

  it('does O(1) amortized decoding work per token (a window, never the whole output)', () => {
    const ids = tokenizer.encode(TEXT.repeat(4), { addSpecialTokens: false });
    const { decoded } = stream((w) => tokenizer.decode(w), ids);
    // Each update decodes two windows of a few tokens; decoding the whole output every time
    // would hand over n(n+1)/2 tokens (here about 1,000 times more).
    expect(ids.length).toBeGreaterThan(500);
    expect(decoded).toBeLessThan(12 * ids.length);
  });

  it('keeps SentencePiece-style leading spaces (the decoder drops the first token\'s space)', () => {
    const pieces = ['▁Hello', ',', '▁world', '▁and', '▁more', '!'];
    const decode = (w: readonly number[]): string => w.map((i) => pieces[i]).join('').replaceAll('▁', ' ').replace(/^ /, '');
    const ids = [0, 1, 2, 3, 4, 5, 2, 2, 1];
    expect(stream(decode, ids).text).toBe(decode(ids));
  });
});

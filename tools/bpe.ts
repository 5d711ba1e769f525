/**
 * A small, deterministic byte-level BPE trainer (GPT-2 / Llama 3 style), used to build the
 * tokenizers of the test fixtures. It is not fast, but the fixture vocabularies are tiny.
 *
 * Token id b (0..255) is the single byte b, written with GPT-2's bytes-to-unicode mapping; each
 * merge that spells a new string adds the next id. Ties between equally frequent pairs go to the smaller (left, right)
 * pair of token strings, so the result depends only on the text and the merge count.
 */

/**
 * Llama 3's pre-tokenization pattern in Oniguruma syntax, as it is written in tokenizer.json.
 * Qwen2/Qwen3 use the same pattern with single digits (`\p{N}` instead of `\p{N}{1,3}`).
 */
export const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// JavaScript has no inline `(?i:...)`, so the contractions spell out both cases.
const TRAINING_SPLIT =
  /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** GPT-2's reversible map from the 256 byte values to printable unicode characters. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    // Bytes that are not printable move to code points 256.., in byte order, as GPT-2 does.
    table[b] = String.fromCharCode(printable.includes(b) ? b : 256 + extra++);
  }
  return table;
}

export interface BpeModel {
  /** Token strings in id order: 256 byte tokens, then one per merge. */
  readonly tokens: readonly string[];
  /** Merges in rank order, as [left, right] token strings. */
  readonly merges: ReadonlyArray<readonly [string, string]>;
}

/** Counts of distinct pre-tokenized words, each as the byte ids of its UTF-8 encoding. */
function countWords(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of text.matchAll(TRAINING_SPLIT)) {
    const word = match[0];
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

interface Word {
  symbols: number[];
  readonly count: number;
}

function toWords(counts: Map<string, number>): Word[] {
  const encoder = new TextEncoder();
  const words: Word[] = [];
  for (const [word, count] of counts) {
    words.push({ symbols: Array.from(encoder.encode(word)), count });
  }
  return words;
}

// Pair keys pack two ids into one number; ids stay far below 2^16.
const PAIR_BASE = 65536;

function countPairs(words: readonly Word[]): Map<number, number> {
  const pairs = new Map<number, number>();
  for (const { symbols, count } of words) {
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = symbols[i] * PAIR_BASE + symbols[i + 1];
      pairs.set(key, (pairs.get(key) ?? 0) + count);
    }
  }
  return pairs;
}

function comparePairs(tokens: readonly string[], a: number, b: number): number {
  const [al, ar] = [tokens[Math.floor(a / PAIR_BASE)], tokens[a % PAIR_BASE]];
  const [bl, br] = [tokens[Math.floor(b / PAIR_BASE)], tokens[b % PAIR_BASE]];
  if (al !== bl) return al < bl ? -1 : 1;
  if (ar !== br) return ar < br ? -1 : 1;
  return 0;
}

function bestPair(pairs: Map<number, number>, tokens: readonly string[]): number | undefined {
  let best: number | undefined;
  let bestCount = 0;
  for (const [key, count] of pairs) {
    const better =
      count > bestCount || (count === bestCount && best !== undefined && comparePairs(tokens, key, best) < 0);
    if (better) {
      best = key;
      bestCount = count;
    }
  }
  return best;
}

function applyMerge(words: Word[], left: number, right: number, merged: number): void {
  for (const word of words) {
    const s = word.symbols;
    if (s.length < 2) continue;
    const out: number[] = [];
    for (let i = 0; i < s.length; i++) {
      if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
        out.push(merged);
        i++;
      } else {
        out.push(s[i]);
      }
    }
    word.symbols = out;
  }
}

/**
 * Train merges on `text` until the vocabulary holds `vocabSize` tokens (bytes included).
 * Two merges may spell the same string (a+bc, ab+c); the second reuses the first one's id, as
 * Hugging Face's trainer does. Stops early only if no pair is left.
 */
export function trainBpe(text: string, vocabSize: number): BpeModel {
  const tokens: string[] = [...bytesToUnicode()];
  const ids = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const merges: Array<[string, string]> = [];
  const words = toWords(countWords(text));
  while (tokens.length < vocabSize) {
    const key = bestPair(countPairs(words), tokens);
    if (key === undefined) break;
    const left = Math.floor(key / PAIR_BASE);
    const right = key % PAIR_BASE;
    const spelled = tokens[left] + tokens[right];
    let merged = ids.get(spelled);
    if (merged === undefined) {
      merged = tokens.length;
      tokens.push(spelled);
      ids.set(spelled, merged);
    }
    merges.push([tokens[left], tokens[right]]);
    applyMerge(words, left, right, merged);
  }
  return { tokens, merges };
}

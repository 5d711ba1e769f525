/**
 * Builds `tokenizer.json` in the Hugging Face `tokenizers` format from a trained byte-level BPE,
 * shaped like the files that Llama 3 and Qwen2/Qwen3 ship: a regex Split then a ByteLevel
 * pre-tokenizer without its own regex, a ByteLevel decoder, and the special tokens as
 * added_tokens. Llama 3 adds BOS through a TemplateProcessing post-processor; Qwen adds nothing.
 */
import type { BpeModel } from './bpe.ts';

export interface AddedTokenSpec {
  readonly content: string;
  /** Special tokens are dropped by `decode(..., skip_special_tokens)`; Qwen3's <think> is not. */
  readonly special: boolean;
}

export interface TokenizerJsonOptions {
  readonly bpe: BpeModel;
  /** Appended after the BPE vocabulary, in this order. */
  readonly addedTokens: readonly AddedTokenSpec[];
  /** Oniguruma pattern of the Split pre-tokenizer. */
  readonly splitRegex: string;
  /** The token that `add_special_tokens` puts first (Llama 3's BOS), or null for none. */
  readonly bosToken: string | null;
  /** Llama 3 sets `ignore_merges`: a word already in the vocabulary is one token. */
  readonly ignoreMerges: boolean;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function addedTokensJson(first: number, tokens: readonly AddedTokenSpec[]): Json[] {
  return tokens.map((t, i) => ({
    id: first + i,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: t.special,
  }));
}

function preTokenizerJson(splitRegex: string): Json {
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: splitRegex }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

function byteLevelProcessor(): Json {
  return { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true };
}

function postProcessorJson(bosToken: string | null, bosId: number): Json {
  if (bosToken === null) return byteLevelProcessor();
  const bos = { SpecialToken: { id: bosToken, type_id: 0 } };
  return {
    type: 'Sequence',
    processors: [
      byteLevelProcessor(),
      {
        type: 'TemplateProcessing',
        single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, bos, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { [bosToken]: { id: bosToken, ids: [bosId], tokens: [bosToken] } },
      },
    ],
  };
}

function modelJson(bpe: BpeModel, ignoreMerges: boolean): Json {
  const vocab: { [key: string]: Json } = {};
  bpe.tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: ignoreMerges,
    vocab,
    merges: bpe.merges.map(([l, r]) => [l, r]),
  };
}

/** The tokenizer.json object; serialize with JSON.stringify for a deterministic file. */
export function buildTokenizerJson(options: TokenizerJsonOptions): Json {
  const first = options.bpe.tokens.length;
  const bosIndex = options.addedTokens.findIndex((t) => t.content === options.bosToken);
  if (options.bosToken !== null && bosIndex < 0) {
    throw new Error(`BOS token ${options.bosToken} is not among the added tokens`);
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokensJson(first, options.addedTokens),
    normalizer: null,
    pre_tokenizer: preTokenizerJson(options.splitRegex),
    post_processor: postProcessorJson(options.bosToken, first + bosIndex),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: modelJson(options.bpe, options.ignoreMerges),
  };
}

/** `added_tokens_decoder` of tokenizer_config.json, keyed by id as a string. */
export function addedTokensDecoder(first: number, tokens: readonly AddedTokenSpec[]): Json {
  const out: { [key: string]: Json } = {};
  tokens.forEach((t, i) => {
    out[String(first + i)] = {
      content: t.content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: t.special,
    };
  });
  return out;
}

export type { Json };

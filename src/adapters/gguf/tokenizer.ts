/**
 * The tokenizer of a lone GGUF file, rebuilt from `tokenizer.ggml.*` as the Hugging Face files
 * (tokenizer.json, tokenizer_config.json, generation_config.json) that @huggingface/transformers
 * loads, so the runtime's one tokenizer adapter (HfTokenizer.fromFiles) serves GGUF models too.
 *
 *   gpt2  (byte-level BPE: Llama 3, Qwen2/3, SmolLM2): vocab + `merges`; the Split regex follows
 *         `tokenizer.ggml.pre` (llama-bpe, qwen2, smollm/gpt2 ...), as llama.cpp's vocab does.
 *   llama (SentencePiece: Llama 2, TinyLlama): BPE with byte fallback over the `▁` pieces; merges
 *         are derived from the vocabulary ordered by the merged piece's score, as HF's converter does.
 * Token types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) decide which
 * tokens are added tokens; control tokens are special (dropped by skip_special_tokens).
 */
import { TokenizerError } from '../../domain/errors.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';
import { metaNumber, metaString } from './model-config.ts';
import type { GgufFile } from './reader.ts';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** llama.cpp's pre-tokenizer names -> the split pattern and Llama 3's ignore_merges. */
const PRE: Readonly<Record<string, { regex: string; ignoreMerges: boolean }>> = {
  'llama-bpe': { regex: LLAMA3_SPLIT, ignoreMerges: true },
  'llama3': { regex: LLAMA3_SPLIT, ignoreMerges: true },
  'qwen2': { regex: QWEN2_SPLIT, ignoreMerges: false },
  'smollm': { regex: GPT2_SPLIT, ignoreMerges: false },
  'gpt-2': { regex: GPT2_SPLIT, ignoreMerges: false },
  'default': { regex: GPT2_SPLIT, ignoreMerges: false },
};

const CONTROL = 3;
const USER_DEFINED = 4;

interface Vocab {
  readonly tokens: readonly string[];
  readonly types: ArrayLike<number>;
  readonly scores: ArrayLike<number> | undefined;
}

function fail(message: string, extra?: Record<string, unknown>): TokenizerError {
  return new TokenizerError(`gguf tokenizer: ${message}`, extra);
}

function readVocab(file: GgufFile): Vocab {
  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) throw fail('tokenizer.ggml.tokens is missing or not strings');
  const types = file.metadata.get('tokenizer.ggml.token_type');
  const scores = file.metadata.get('tokenizer.ggml.scores');
  const typed = types instanceof Int32Array || types instanceof Uint32Array ? types : new Int32Array(tokens.length).fill(1);
  if (typed.length !== tokens.length) throw fail('token_type and tokens differ in length');
  const scoreArray = scores instanceof Float32Array && scores.length === tokens.length ? scores : undefined;
  return { tokens: tokens as string[], types: typed, scores: scoreArray };
}

function addedTokens(v: Vocab): Json[] {
  const out: Json[] = [];
  for (let id = 0; id < v.tokens.length; id++) {
    const type = v.types[id];
    if (type !== CONTROL && type !== USER_DEFINED) continue;
    out.push({ id, content: v.tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === CONTROL });
  }
  return out;
}

function vocabObject(tokens: readonly string[]): { [key: string]: Json } {
  const vocab: { [key: string]: Json } = {};
  tokens.forEach((t, id) => {
    // A token string listed twice keeps its first id, as llama.cpp's token-to-id map does.
    if (!(t in vocab)) vocab[t] = id;
  });
  return vocab;
}

function templateProcessor(bos: string | undefined, bosId: number | undefined, base: Json | null): Json | null {
  if (bos === undefined || bosId === undefined) return base;
  const special = { SpecialToken: { id: bos, type_id: 0 } };
  const template: Json = {
    type: 'TemplateProcessing',
    single: [special, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [special, { Sequence: { id: 'A', type_id: 0 } }, special, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
  return base === null ? template : { type: 'Sequence', processors: [base, template] };
}

function gpt2Json(file: GgufFile, v: Vocab, bos: string | undefined, bosId: number | undefined): Json {
  const merges = file.metadata.get('tokenizer.ggml.merges');
  if (!Array.isArray(merges) || !merges.every((m) => typeof m === 'string')) throw fail('a gpt2 tokenizer needs tokenizer.ggml.merges');
  const pre = PRE[metaString(file, 'tokenizer.ggml.pre') ?? 'default'] ?? PRE['default'];
  const byteLevel: Json = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true };
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: addedTokens(v),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: pre.regex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: templateProcessor(bos, bosId, byteLevel),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: pre.ignoreMerges,
      vocab: vocabObject(v.tokens),
      merges: (merges as string[]).map((m) => m.split(' ')),
    },
  };
}

/** SentencePiece BPE merges from the vocabulary: every split of a piece into two pieces, best score first. */
export function spmMerges(v: Vocab): string[][] {
  const normal = new Map<string, number>();
  v.tokens.forEach((t, id) => {
    if (v.types[id] === 1 && !normal.has(t)) normal.set(t, id);
  });
  const merges: Array<{ l: string; r: string; score: number; li: number; ri: number }> = [];
  for (const [piece, id] of normal) {
    const chars = [...piece];
    const local = [];
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join(''), r = chars.slice(k).join('');
      const li = normal.get(l), ri = normal.get(r);
      if (li !== undefined && ri !== undefined) local.push({ l, r, score: v.scores?.[id] ?? -id, li, ri });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    merges.push(...local);
  }
  // Array.prototype.sort is stable: ties keep the per-piece order above, as HF's converter does.
  merges.sort((a, b) => b.score - a.score);
  return merges.map((m) => [m.l, m.r]);
}

function spmJson(v: Vocab, bos: string | undefined, bosId: number | undefined, unk: string | undefined): Json {
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: addedTokens(v),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: templateProcessor(bos, bosId, null),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' }, { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: unk ?? null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab: vocabObject(v.tokens),
      merges: spmMerges(v),
    },
  };
}

/** tokenizer.json, tokenizer_config.json and generation_config.json of a GGUF file. */
export function ggufTokenizerFiles(file: GgufFile): Map<string, Uint8Array> {
  const model = metaString(file, 'tokenizer.ggml.model');
  const v = readVocab(file);
  const idKey = (key: string): number | undefined => {
    const id = metaNumber(file, `tokenizer.ggml.${key}`);
    return id !== undefined && Number.isInteger(id) && id >= 0 && id < v.tokens.length ? id : undefined;
  };
  const text = (id: number | undefined): string | undefined => (id === undefined ? undefined : v.tokens[id]);
  const bosId = idKey('bos_token_id');
  const addBos = file.metadata.get('tokenizer.ggml.add_bos_token') ?? model === 'llama';
  const bos = addBos === true ? text(bosId) : undefined;
  let tokenizer: Json;
  if (model === 'gpt2') tokenizer = gpt2Json(file, v, bos, bosId);
  else if (model === 'llama') tokenizer = spmJson(v, bos, bosId, text(idKey('unknown_token_id')));
  else throw fail(`tokenizer model ${String(model)} is not supported (gpt2 and llama are)`, { model: model ?? null });
  const eos = [idKey('eos_token_id'), idKey('eot_token_id'), idKey('eom_token_id')].filter((id): id is number => id !== undefined);
  const config: Json = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: addBos === true,
    add_eos_token: false,
    bos_token: text(bosId) ?? null,
    eos_token: text(eos[0]) ?? null,
    pad_token: text(idKey('padding_token_id')) ?? null,
    unk_token: text(idKey('unknown_token_id')) ?? null,
    clean_up_tokenization_spaces: false,
    chat_template: metaString(file, 'tokenizer.chat_template') ?? null,
  };
  const generation: Json = { bos_token_id: bosId ?? null, eos_token_id: [...new Set(eos)] };
  const encode = (j: Json): Uint8Array => new TextEncoder().encode(JSON.stringify(j));
  return new Map([
    ['tokenizer.json', encode(tokenizer)],
    ['tokenizer_config.json', encode(config)],
    ['generation_config.json', encode(generation)],
  ]);
}

/**
 * The tokenizer files of a GGUF model: a `tokenizer.json` (and its tokenizer_config.json) beside
 * the file wins; the rest comes from the metadata.
 */
export class GgufTokenizerSource implements ModelFileSource {
  constructor(
    readonly id: string,
    private readonly built: ReadonlyMap<string, Uint8Array>,
    private readonly beside?: ModelFileSource,
  ) {}

  async has(name: string): Promise<boolean> {
    return this.built.has(name) || ((await this.besideHas('tokenizer.json')) && (await this.besideHas(name)));
  }

  async read(name: string): Promise<Uint8Array> {
    // The two tokenizer files go together: a tokenizer.json beside the file brings its config.
    if ((await this.besideHas('tokenizer.json')) && (await this.besideHas(name)) && this.beside) return this.beside.read(name);
    const bytes = this.built.get(name);
    if (bytes === undefined) throw fail(`no ${name} for ${this.id}`, { name });
    return bytes;
  }

  private async besideHas(name: string): Promise<boolean> {
    return this.beside !== undefined && (await this.beside.has(name));
  }
}

/**
 * TokenizerPort over @huggingface/transformers (tokenizer.json + tokenizer_config.json, chat
 * template rendered by @huggingface/jinja). Works in Node and in a browser or Web Worker: files
 * are found through transformers.js's own loader, so this module touches neither `fs` nor the
 * DOM. Remote downloads are switched off; the caller points `localModelPath` at a folder (Node)
 * or a URL path such as `/models/` (browser).
 */
import * as transformers from '@huggingface/transformers';
import { AutoTokenizer, env, PreTrainedTokenizer } from '@huggingface/transformers';
import { InvalidRequestError, TokenizerError } from '../../domain/errors.ts';
import { generationDefaults, type SamplingParams } from '../../domain/sampling.ts';
import type { ChatMessage, ChatTemplateOptions, ModelFileSource, TokenizerPort } from '../../ports/outbound.ts';

/** The part of generation_config.json this adapter reads (sampling defaults: domain generationDefaults). */
export interface GenerationConfigLike {
  readonly eos_token_id?: number | readonly number[] | null;
  readonly [key: string]: unknown;
}

export interface HfTokenizerLoadOptions {
  /** Folder name under `localModelPath`, e.g. `tiny-llama`. */
  readonly modelId: string;
  /** Folder (Node) or URL path (browser) that holds one sub-folder per model. */
  readonly localModelPath: string;
  /**
   * generation_config.json, already parsed. Wins over `files`. When neither is given, only the
   * tokenizer's own eos token ends generation.
   */
  readonly generationConfig?: GenerationConfigLike | null;
  /** Where to read generation_config.json from, if present (the model's file source). */
  readonly files?: ModelFileSource;
}

const GENERATION_CONFIG = 'generation_config.json';
/** Newer repos ship the chat template as its own file; it wins over tokenizer_config.json's. */
const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

async function readChatTemplate(files: ModelFileSource | undefined): Promise<string | null> {
  if (!files || !(await files.has(CHAT_TEMPLATE_FILE))) return null;
  return new TextDecoder().decode(await files.read(CHAT_TEMPLATE_FILE));
}

/** HF adds the post-processor's specials (Llama 3: BOS) to a prompt unless add_bos_token is false. */
function addsSpecialTokens(tokenizer: PreTrainedTokenizer): boolean {
  const config: unknown = Reflect.get(tokenizer, '_tokenizerConfig');
  return !(typeof config === 'object' && config !== null && Reflect.get(config, 'add_bos_token') === false);
}

// transformers.js reads `env` while it loads, and `env` is global: loads that target different
// folders must not interleave, so they run one after another.
let loadQueue: Promise<unknown> = Promise.resolve();

function serialized<T>(task: () => Promise<T>): Promise<T> {
  const run = loadQueue.then(task, task);
  loadQueue = run.catch(() => undefined);
  return run;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function eosList(value: GenerationConfigLike['eos_token_id']): number[] {
  if (value === null || value === undefined) return [];
  const list = typeof value === 'number' ? [value] : [...value];
  for (const id of list) {
    if (!Number.isInteger(id) || id < 0) {
      throw new TokenizerError(`generation_config.json: eos_token_id ${String(id)} is not a token id`, { id });
    }
  }
  return list;
}

async function readGenerationConfig(options: HfTokenizerLoadOptions): Promise<GenerationConfigLike | null> {
  if (options.generationConfig !== undefined) return options.generationConfig;
  const files = options.files;
  if (!files || !(await files.has(GENERATION_CONFIG))) return null;
  const text = new TextDecoder().decode(await files.read(GENERATION_CONFIG));
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) throw new TypeError('not a JSON object');
    return parsed as GenerationConfigLike;
  } catch (error) {
    throw new TokenizerError(`${GENERATION_CONFIG} of ${options.modelId} is not valid JSON`, {
      modelId: options.modelId,
      reason: message(error),
    });
  }
}

async function loadHfTokenizer(modelId: string, localModelPath: string): Promise<PreTrainedTokenizer> {
  return serialized(async () => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = localModelPath;
    return AutoTokenizer.from_pretrained(modelId);
  });
}

type TokenizerCtor = new (tokenizerJson: object, tokenizerConfig: object) => PreTrainedTokenizer;

/** AutoTokenizer's rule: `tokenizer_class` without a "Fast" suffix, else the base class. */
function tokenizerClass(name: unknown): TokenizerCtor {
  const key = typeof name === 'string' ? name.replace(/Fast$/, '') : '';
  const candidate: unknown = (transformers as Record<string, unknown>)[key];
  const isTokenizer = typeof candidate === 'function' && (candidate === PreTrainedTokenizer || candidate.prototype instanceof PreTrainedTokenizer);
  return isTokenizer ? (candidate as TokenizerCtor) : (PreTrainedTokenizer as unknown as TokenizerCtor);
}

function uniqueIds(ids: readonly number[]): number[] {
  return [...new Set(ids)];
}

export class HfTokenizer implements TokenizerPort {
  readonly #tokenizer: PreTrainedTokenizer;
  readonly #eosIds: readonly number[];
  readonly #vocabSize: number;
  readonly #defaults: Partial<SamplingParams>;
  readonly #promptSpecials: boolean;

  private constructor(tokenizer: PreTrainedTokenizer, generation: GenerationConfigLike | null, chatTemplate: string | null) {
    if (chatTemplate !== null) tokenizer.chat_template = chatTemplate;
    this.#tokenizer = tokenizer;
    // generation_config.json lists every stop token (Llama 3: <|end_of_text|> and <|eot_id|>);
    // tokenizer_config.json's eos_token is added in case it lists none.
    const own = typeof tokenizer.eos_token_id === 'number' ? [tokenizer.eos_token_id] : [];
    this.#eosIds = Object.freeze(uniqueIds([...eosList(generation?.eos_token_id), ...own]));
    this.#defaults = Object.freeze(generationDefaults(generation));
    this.#promptSpecials = addsSpecialTokens(tokenizer);
    // Ids may have holes; the embedding must cover the largest one.
    let max = -1;
    for (const id of tokenizer.get_vocab().values()) max = Math.max(max, id);
    this.#vocabSize = max + 1;
  }

  /** Load offline from `localModelPath/modelId/`. Every failure is a TokenizerError. */
  static async load(options: HfTokenizerLoadOptions): Promise<HfTokenizer> {
    const details = { modelId: options.modelId, localModelPath: options.localModelPath };
    let tokenizer: PreTrainedTokenizer;
    try {
      tokenizer = await loadHfTokenizer(options.modelId, options.localModelPath);
    } catch (error) {
      throw new TokenizerError(`Cannot load tokenizer ${options.modelId}: ${message(error)}`, details, {
        cause: error,
      });
    }
    const generation = await readGenerationConfig(options);
    return new HfTokenizer(tokenizer, generation, await readChatTemplate(options.files));
  }

  /**
   * Load from a model's own files (tokenizer.json, tokenizer_config.json, generation_config.json)
   * through any ModelFileSource: a URL (cached by the source), a folder. The class is picked from
   * `tokenizer_class` exactly as AutoTokenizer does, without touching transformers.js's global env.
   */
  static async fromFiles(files: ModelFileSource): Promise<HfTokenizer> {
    const details = { source: files.id };
    let tokenizer: PreTrainedTokenizer;
    try {
      const json = async (name: string): Promise<Record<string, unknown>> => JSON.parse(new TextDecoder().decode(await files.read(name))) as Record<string, unknown>;
      const [tokenizerJson, tokenizerConfig] = await Promise.all([json('tokenizer.json'), json('tokenizer_config.json')]);
      tokenizer = new (tokenizerClass(tokenizerConfig['tokenizer_class']))(tokenizerJson, tokenizerConfig);
    } catch (error) {
      throw new TokenizerError(`Cannot load tokenizer from ${files.id}: ${message(error)}`, details, { cause: error });
    }
    const generation = await readGenerationConfig({ modelId: files.id, localModelPath: '', files });
    return new HfTokenizer(tokenizer, generation, await readChatTemplate(files));
  }

  /** Encode a raw-text prompt with the specials a sequence starts with (see TokenizerPort). */
  encodePrompt(text: string): number[] {
    return this.encode(text, { addSpecialTokens: this.#promptSpecials });
  }

  generationDefaults(): Partial<SamplingParams> {
    return this.#defaults;
  }

  encode(text: string, options?: { readonly addSpecialTokens?: boolean }): number[] {
    return this.#call('encode', () =>
      this.#tokenizer.encode(text, { add_special_tokens: options?.addSpecialTokens ?? false }),
    );
  }

  /**
   * Never cleans up tokenization spaces (transformers.js would otherwise default to it): byte-level
   * decoding is then exact, and decoding a sequence piece by piece concatenates correctly.
   * Ids outside the vocabulary decode to nothing, as in transformers.js.
   */
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string {
    if (ids.length === 0) return '';
    for (const id of ids) {
      if (!Number.isInteger(id)) throw new InvalidRequestError(`decode: ${String(id)} is not a token id`, { id });
    }
    return this.#call('decode', () =>
      this.#tokenizer.decode([...ids], {
        skip_special_tokens: options?.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      }),
    );
  }

  eosTokenIds(): readonly number[] {
    return this.#eosIds;
  }

  vocabSize(): number {
    return this.#vocabSize;
  }

  /** The id of one vocabulary or added token, e.g. `<|eot_id|>`; undefined when absent. */
  tokenToId(token: string): number | undefined {
    const id: unknown = this.#tokenizer.convert_tokens_to_ids(token);
    return typeof id === 'number' ? id : undefined;
  }

  /** The id that `encode(..., { addSpecialTokens: true })` puts first, or null (Qwen has none). */
  bosTokenId(): number | null {
    return typeof this.#tokenizer.bos_token_id === 'number' ? this.#tokenizer.bos_token_id : null;
  }

  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string {
    const conversation = messages.map((m) => ({ role: m.role, content: m.content }));
    return this.#call('renderChat', () =>
      this.#tokenizer.apply_chat_template(conversation, {
        tokenize: false,
        add_generation_prompt: options?.addGenerationPrompt ?? true,
      }),
    );
  }

  /** The template already spells out BOS where the model wants it, so no specials are added. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[] {
    return this.encode(this.renderChat(messages, options), { addSpecialTokens: false });
  }

  #call<T>(operation: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      throw new TokenizerError(`Tokenizer ${operation} failed: ${message(error)}`, { operation }, { cause: error });
    }
  }
}

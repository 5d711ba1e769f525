/**
 * Outbound (driven) ports: what the application needs from the outside world.
 * Adapters under src/adapters implement these; the worker wires them.
 */

/** One chat message, as chat templates expect it. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers next. Default true. */
  readonly addGenerationPrompt?: boolean;
}

/**
 * Text <-> token ids, plus the model's chat template. Loading is async (files may come from the
 * network or the Cache API); once loaded, every method is synchronous and pure.
 */
export interface TokenizerPort {
  /** Encode raw text. `addSpecialTokens` (default false) adds BOS/EOS as the tokenizer's post-processor says. */
  encode(text: string, options?: { readonly addSpecialTokens?: boolean }): number[];
  /** Decode ids to text. `skipSpecialTokens` defaults to false. */
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string;
  /** Every id that ends generation (from generation_config.json and tokenizer_config.json). */
  eosTokenIds(): readonly number[];
  vocabSize(): number;
  /** Render the chat template to text. */
  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  /** Render and encode the chat template; equals `encode(renderChat(...))` with no extra specials. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[];
}

/**
 * Where a model's files come from: a folder on disk (Node), a URL prefix (browser, Hugging Face
 * hub or the app's own origin). Names are relative, e.g. `config.json`, `model.safetensors`.
 */
export interface ModelFileSource {
  /** A human-readable id: the folder path or the base URL. */
  readonly id: string;
  /** The whole file. Throws ModelNotFoundError when it is absent. */
  read(name: string): Promise<Uint8Array>;
  has(name: string): Promise<boolean>;
}

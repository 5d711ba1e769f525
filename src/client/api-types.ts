/**
 * The request and response shapes of `engine.chat.completions.create` (OpenAI's) and
 * `engine.messages.create` (Anthropic's), as far as this runtime implements them. Fields not
 * listed are refused by the server with a 400, not silently ignored, when they matter.
 */
export interface OpenAiMessage {
  readonly role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  readonly content: string | ReadonlyArray<{ readonly type: 'text'; readonly text: string }>;
}

export interface ChatCompletionParams {
  readonly model: string;
  readonly messages: readonly OpenAiMessage[];
  readonly max_tokens?: number;
  readonly max_completion_tokens?: number;
  readonly temperature?: number;
  readonly top_p?: number;
  readonly seed?: number;
  readonly stop?: string | readonly string[];
  readonly n?: 1;
  readonly logprobs?: boolean;
  readonly top_logprobs?: number;
  readonly logit_bias?: Readonly<Record<string, number>>;
  readonly presence_penalty?: number;
  readonly frequency_penalty?: number;
  readonly stream?: boolean;
  readonly stream_options?: { readonly include_usage?: boolean };
  /** Extension: bind the call to an agent's memory. */
  readonly agent_id?: string;
}

export interface TokenLogprobEntry {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: readonly number[];
  readonly top_logprobs: ReadonlyArray<{ readonly token: string; readonly logprob: number; readonly bytes: readonly number[] }>;
}

export interface CompletionUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  readonly prompt_tokens_details: { readonly cached_tokens: number };
}

export interface ChatCompletion {
  readonly id: string;
  readonly object: 'chat.completion';
  readonly created: number;
  readonly model: string;
  readonly choices: ReadonlyArray<{
    readonly index: number;
    readonly message: { readonly role: 'assistant'; readonly content: string };
    readonly logprobs: { readonly content: readonly TokenLogprobEntry[] } | null;
    readonly finish_reason: 'stop' | 'length';
  }>;
  readonly usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  readonly id: string;
  readonly object: 'chat.completion.chunk';
  readonly created: number;
  readonly model: string;
  readonly choices: ReadonlyArray<{
    readonly index: number;
    readonly delta: { readonly role?: 'assistant'; readonly content?: string };
    readonly logprobs: { readonly content: readonly TokenLogprobEntry[] } | null;
    readonly finish_reason: 'stop' | 'length' | null;
  }>;
  readonly usage?: CompletionUsage | null;
}

export interface AnthropicMessageParam {
  readonly role: 'user' | 'assistant';
  readonly content: string | ReadonlyArray<{ readonly type: 'text'; readonly text: string }>;
}

export interface MessageCreateParams {
  readonly model: string;
  readonly max_tokens: number;
  readonly messages: readonly AnthropicMessageParam[];
  readonly system?: string | ReadonlyArray<{ readonly type: 'text'; readonly text: string }>;
  readonly stop_sequences?: readonly string[];
  readonly temperature?: number;
  readonly top_p?: number;
  readonly top_k?: number;
  readonly stream?: boolean;
  /** Extension: bind the call to an agent's memory. */
  readonly agent_id?: string;
}

export interface MessageUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cache_creation_input_tokens: number;
  readonly cache_read_input_tokens: number;
}

export interface Message {
  readonly id: string;
  readonly type: 'message';
  readonly role: 'assistant';
  readonly model: string;
  readonly content: ReadonlyArray<{ readonly type: 'text'; readonly text: string }>;
  readonly stop_reason: 'end_turn' | 'max_tokens' | 'stop_sequence' | null;
  readonly stop_sequence: string | null;
  readonly usage: MessageUsage;
}

export type MessageStreamEvent =
  | { readonly type: 'message_start'; readonly message: Message }
  | { readonly type: 'content_block_start'; readonly index: number; readonly content_block: { readonly type: 'text'; readonly text: string } }
  | { readonly type: 'content_block_delta'; readonly index: number; readonly delta: { readonly type: 'text_delta'; readonly text: string } }
  | { readonly type: 'content_block_stop'; readonly index: number }
  | { readonly type: 'message_delta'; readonly delta: { readonly stop_reason: Message['stop_reason']; readonly stop_sequence: string | null }; readonly usage: MessageUsage }
  | { readonly type: 'message_stop' };

export interface ModelEntry {
  readonly id: string;
  readonly object: 'model';
  readonly owned_by: string;
}

/** An agent as /v1/agents reports it. */
export interface AgentEntry {
  readonly id: string;
  readonly object: 'agent';
  readonly token_count: number;
  readonly blocks: number;
  readonly tier: 'hot' | 'warm' | 'cold' | 'none';
  readonly last_used: number;
}

/** Per-call options: every call can be aborted. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** The embedding API, the same whether the engine runs in a worker of this page or on a server. */
export interface EngineApi {
  readonly chat: {
    readonly completions: {
      create(params: ChatCompletionParams & { readonly stream: true }, options?: CallOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(params: ChatCompletionParams & { readonly stream?: false }, options?: CallOptions): Promise<ChatCompletion>;
    };
  };
  readonly messages: {
    create(params: MessageCreateParams & { readonly stream: true }, options?: CallOptions): Promise<AsyncIterable<MessageStreamEvent>>;
    create(params: MessageCreateParams & { readonly stream?: false }, options?: CallOptions): Promise<Message>;
  };
  readonly models: {
    list(options?: CallOptions): Promise<ModelEntry[]>;
  };
  /** Agents and their memory (the server's, in remote mode). */
  readonly agents: {
    /** Create an agent; a system prompt is prefilled and cached. */
    create(params: { readonly agent_id: string; readonly system?: string }, options?: CallOptions): Promise<AgentEntry>;
    list(options?: CallOptions): Promise<AgentEntry[]>;
    /** Rejects with AgentNotFoundError for an unknown agent. */
    retrieve(agentId: string, options?: CallOptions): Promise<AgentEntry>;
    delete(agentId: string, options?: CallOptions): Promise<boolean>;
  };
  /** A fetch-compatible handler for the official SDKs' `fetch` option. */
  readonly fetch: FetchLike;
}

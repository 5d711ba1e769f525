/**
 * Inbound (driving) ports: what the runtime offers to the page, the worker boundary and the CLI.
 * GPU work and storage are asynchronous, so every operation returns a promise.
 */
import type { PlainError } from '../domain/errors.ts';
import type { ModelCacheSpec } from '../domain/model-cache-spec.ts';
import type { TokenLogprob } from '../domain/logprobs.ts';
import type { SamplingParams } from '../domain/sampling.ts';
import type { CompletedGeneration, FinishReason } from '../domain/values.ts';
import type { CacheTier, ChatMessage } from './outbound.ts';

export interface GenerateOptions {
  readonly maxTokens?: number;
  readonly sampling?: Partial<SamplingParams>;
  readonly stop?: readonly string[];
  /** Report each sampled token's log-probability and this many alternatives (0-20); absent: off. */
  readonly logprobs?: number;
  /** Called with each decoded text delta as tokens arrive. */
  readonly onToken?: (delta: TokenDelta) => void;
  readonly signal?: AbortSignal;
  /** The agent is a throwaway one (a request bound to none): never persisted. */
  readonly scratch?: boolean;
}

export interface TokenDelta {
  readonly uid: string;
  readonly tokenId: number;
  readonly text: string;
  /** The sampled token's log-probability, when the request asked for logprobs. */
  readonly logprob?: TokenLogprob;
}

export interface GenerationResult {
  readonly agentId: string;
  readonly text: string;
  readonly tokenIds: readonly number[];
  readonly finishReason: FinishReason;
  /** One entry per generated token, when the request asked for logprobs. */
  readonly logprobs?: readonly TokenLogprob[];
  /** The stop string that ended generation; absent when EOS or the length limit did. */
  readonly stopSequence?: string;
  readonly usage: {
    readonly promptTokens: number;
    readonly completionTokens: number;
    /** Prompt tokens found in the agent's cache or a shared prefix: not recomputed. */
    readonly cachedPromptTokens: number;
  };
  readonly timings: { readonly ttftMs: number; readonly totalMs: number };
}

/** One-shot generation for an agent: the agent's cached context is reused when it matches. */
export interface InferencePort {
  generate(agentId: string, prompt: string | readonly ChatMessage[], options?: GenerateOptions): Promise<GenerationResult>;
}

export interface AgentInfo {
  readonly agentId: string;
  readonly tokenCount: number;
  readonly blocks: number;
  readonly tier: CacheTier | 'none';
  readonly lastUsed: number;
}

export interface AgentManagementPort {
  /** Create an agent; an initial context (e.g. a system prompt) is prefilled and cached. */
  createAgent(agentId: string, options?: { readonly initialContext?: string | readonly ChatMessage[] }): Promise<AgentInfo>;
  deleteAgent(agentId: string): Promise<boolean>;
  listAgents(): Promise<AgentInfo[]>;
  /** Throws AgentNotFoundError for an unknown agent. */
  getAgentInfo(agentId: string): Promise<AgentInfo>;
}

/**
 * A Hugging Face hub location: a file of a repo (`{ repo, file }`, a GGUF file) or, without
 * `file`, the repo itself as a model folder (an mlx-community or safetensors repo).
 */
export interface HubSource {
  readonly repo: string;
  readonly file?: string;
  /** Branch, tag or commit; default 'main'. */
  readonly revision?: string;
}

export interface ModelDescriptor {
  readonly id: string;
  /**
   * A folder (Node); in the browser a folder URL, a `.gguf` URL, `hf://owner/repo[/file.gguf]`,
   * or a hub location `{ repo, file? , revision? }`.
   */
  readonly source: string | HubSource;
  readonly architecture?: string;
  /** Weights on the GPU: as stored (default), or quantized at load to q8 or q4. */
  readonly weights?: 'q8' | 'q4';
  /** Hot KV storage: 'f16' (default) or 'f32'. */
  readonly kvDtype?: 'f16' | 'f32';
  /**
   * Bytes for the hot KV pool, or a fraction (0, 1] of the device memory left after the weights.
   * Neither: derived from the adapter's limits and the model's size (domain/kv-budget.ts).
   */
  readonly kvBudgetBytes?: number;
  readonly kvBudgetFraction?: number;
  /** In listAvailableModels: shipped with the app, a hub model known to work, or the one loaded. */
  readonly kind?: 'embedded' | 'hub' | 'loaded';
  /** In listAvailableModels: its files are in the browser's Cache API (it loads offline). */
  readonly cached?: boolean;
}

export interface LoadProgress {
  readonly file: string;
  readonly loadedBytes: number;
  readonly totalBytes: number;
  /** Bytes of all weight files received so far, and their total (weight files only). */
  readonly overallLoadedBytes?: number;
  readonly overallTotalBytes?: number;
}

export interface ModelManagementPort {
  loadModel(model: ModelDescriptor, options?: { readonly onProgress?: (p: LoadProgress) => void }): Promise<ModelCacheSpec>;
  unloadModel(): Promise<void>;
  getCurrentModel(): Promise<ModelDescriptor | null>;
  listAvailableModels(): Promise<ModelDescriptor[]>;
}

export interface SubmitRequest {
  readonly agentId: string;
  /** Raw text, chat messages, or token ids (exactly one). */
  readonly prompt?: string | readonly ChatMessage[];
  readonly promptIds?: readonly number[];
  readonly maxTokens?: number;
  readonly sampling?: Partial<SamplingParams>;
  readonly stop?: readonly string[];
  /** Report each sampled token's log-probability and this many alternatives (0-20); absent: off. */
  readonly logprobs?: number;
  /** Generate exactly maxTokens tokens, EOS or not (tests, benchmarks, logit dumps). */
  readonly ignoreEos?: boolean;
  /** Keep each sampled step's logits row in the result (CompletedGeneration.logits). */
  readonly returnLogits?: boolean;
  /** A throwaway agent (a request bound to none): its context is cached but never persisted. */
  readonly scratch?: boolean;
}

/** The batched engine: submit requests at any time, step the batch, stream, cancel. */
export interface GenerationEnginePort {
  /** Queue a request; returns its uid. Validation errors are thrown here, not at step time. */
  submit(request: SubmitRequest): Promise<string>;
  /** Run one batched step; returns the generations that finished in it. */
  step(): Promise<CompletedGeneration[]>;
  /** Stream tokens of one request; the callback stops being called when it finishes. */
  onToken(uid: string, listener: (delta: TokenDelta) => void): () => void;
  cancel(uid: string): Promise<boolean>;
  hasPendingWork(): boolean;
}

/** A failed request as it crosses the worker boundary. */
export interface FailedGeneration {
  readonly uid: string;
  readonly error: PlainError;
}

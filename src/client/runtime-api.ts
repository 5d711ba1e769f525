import type { ChatMessage } from '../ports/outbound.ts';
import type { ProxyMarked } from 'comlink';
import type { CompletedGeneration } from '../domain/values.ts';
import type { AgentManagementPort, GenerationEnginePort, InferencePort, LoadProgress, ModelDescriptor, ModelManagementPort, TokenDelta } from '../ports/inbound.ts';
import type { InspectSnapshot } from '../ports/inspect.ts';

/** What a loaded model looks like to the page. */
export interface LoadedModelInfo {
  readonly id: string;
  readonly architecture: string;
  readonly nLayers: number;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly eosTokenIds: readonly number[];
  /** GPU memory by use right after the load, in bytes. */
  readonly gpuBytes: { readonly weights: number; readonly kv_pool: number; readonly activations: number };
}

export interface GpuInfo {
  readonly available: boolean;
  readonly vendor?: string;
  readonly architecture?: string;
  readonly features: readonly string[];
}

export interface PromptInput {
  readonly text?: string;
  readonly chat?: readonly ChatMessage[];
  readonly ids?: readonly number[];
}

export interface GenerateOptions {
  readonly sampling?: { readonly temperature?: number; readonly topK?: number; readonly topP?: number; readonly seed?: number };
  /** Return each step's logits (transferred, not copied). */
  readonly returnLogits?: boolean;
  /** Generate exactly maxTokens tokens (tests, benchmarks). */
  readonly ignoreEos?: boolean;
}

export interface GenerateReply {
  readonly promptIds: readonly number[];
  readonly tokenIds: readonly number[];
  readonly text: string;
  readonly finishReason: 'stop' | 'length';
  readonly elapsedMs: number;
  readonly logits?: readonly Float32Array[];
}

export interface AgentReply {
  readonly agentId: string;
  readonly tokenIds: readonly number[];
  readonly text: string;
  readonly finishReason: 'stop' | 'length' | 'error' | 'cancelled';
  readonly promptTokens: number;
  /** Prompt tokens not recomputed: restored or still cached. */
  readonly cachedPromptTokens: number;
  /** Where the agent's cache came from for this turn. */
  readonly restoredFrom: 'hot' | 'warm' | 'cold' | 'none';
  /** Set when a stored cache was refused (another model, corrupt blob). */
  readonly refused?: { readonly name: string; readonly code: string; readonly message: string };
  readonly ttftMs: number;
  readonly totalMs: number;
}

export interface StoredAgent {
  readonly agentId: string;
  readonly modelFingerprint: string;
  readonly tokenCount: number;
  readonly bytes: number;
}

export interface CacheOptions {
  /** IndexedDB database name (tests isolate themselves with it). */
  readonly dbName?: string;
  readonly hotBudgetBytes?: number;
  readonly warmBudgetBytes?: number;
  readonly quantization?: 'none' | 'q8' | 'q4';
  /**
   * Checkpoint each finished turn incrementally: append a segment of the tokens the turn added
   * instead of rewriting the agent's whole blob (issue 8 item 5): O(new tokens) bytes per turn,
   * committed with the agent's record in one IndexedDB transaction. Default true.
   */
  readonly incrementalCheckpoints?: boolean;
}

/** A Request as plain data, for engine.fetch across the worker boundary. */
export interface ApiWireRequest {
  readonly id: string;
  readonly url: string;
  readonly method: string;
  readonly headers: Array<[string, string]>;
  readonly body: string | null;
}

/** A Response as plain data; the body is a transferred stream. */
export interface ApiWireResponse {
  readonly status: number;
  readonly headers: Array<[string, string]>;
  readonly body: ReadableStream<Uint8Array> | null;
}

/**
 * The inbound ports as the worker exposes them over Comlink (worker/runtime-ports.ts), on the
 * loaded model. Callbacks and AbortSignals may sit in options objects (installOptionsTransfer).
 * GenerationEnginePort's methods all become asynchronous across the boundary.
 */
export interface WorkerEnginePort extends Omit<GenerationEnginePort, 'onToken' | 'hasPendingWork'> {
  /** Resolves with the request's outcome once it finishes (whoever stepped it). */
  result(uid: string): Promise<CompletedGeneration>;
  /** The returned unsubscribe crosses back as a proxy. */
  onToken(uid: string, listener: (delta: TokenDelta) => void): Promise<(() => void) & ProxyMarked>;
  hasPendingWork(): Promise<boolean>;
}

export interface RuntimePorts {
  readonly engine: WorkerEnginePort;
  readonly inference: InferencePort;
  readonly agents: AgentManagementPort;
  readonly models: ModelManagementPort;
}

/**
 * The surface the worker exposes over Comlink. Callbacks must be wrapped with Comlink.proxy by
 * the caller (the client does it). Errors arrive as their typed classes (installErrorTransfer).
 */
export interface RuntimeApi extends RuntimePorts {
  gpuInfo(): Promise<GpuInfo>;
  loadModel(model: ModelDescriptor, onProgress?: (p: LoadProgress) => void, cache?: CacheOptions): Promise<LoadedModelInfo>;
  /** One turn of an agent: its cached context (any tier) is reused when the prompt extends it. */
  agentGenerate(agentId: string, prompt: PromptInput, maxTokens: number, onToken?: (tokenId: number, text: string) => void): Promise<AgentReply>;
  /** Move an agent's cache one tier down (hot -> warm -> cold). */
  evictAgent(agentId: string): Promise<'hot' | 'warm' | 'cold' | null>;
  agentTier(agentId: string): Promise<'hot' | 'warm' | 'cold' | 'none'>;
  deleteAgent(agentId: string): Promise<boolean>;
  /** Write everything to IndexedDB and wait for it (pagehide, shutdown). */
  persistAll(): Promise<void>;
  /** Stored agents of every model (blobs are keyed by agent and model fingerprint). */
  listStoredAgents(): Promise<StoredAgent[]>;
  /** Delete a stored agent of any model (e.g. memory of a model no longer used). */
  deleteStoredAgent(agentId: string, modelFingerprint: string): Promise<boolean>;
  /** Agents whose latest memory storage refused (quota): held in memory, flagged unsaved. */
  unsavedAgents(): Promise<Array<{ agentId: string; error: { name: string; code: string; message: string } }>>;
  /** `navigator.storage.estimate()` as the worker sees it; null where unsupported. */
  storageEstimate(): Promise<{ usage: number; quota: number } | null>;
  /** The agent's memory as a .safetensors file. */
  exportAgent(agentId: string): Promise<Uint8Array | null>;
  importAgent(bytes: Uint8Array, agentId?: string): Promise<string>;
  /** Test hook: start saving a synthetic `tokens`-token blob for the agent and return once the write is under way. */
  debugStartLargeSave(agentId: string, tokens: number): Promise<number>;
  /** Test hook: destroy the GPU device now (as a driver reset would); returns recoveries so far. */
  debugLoseDevice(): Promise<number>;
  /** Device losses survived, once any recovery in progress has finished. */
  deviceRecoveries(): Promise<number>;
  /** A read-only snapshot of the KV memory: pool blocks and owners, agents' tiers, last restores. */
  inspect(): Promise<InspectSnapshot>;
  /** The OpenAI/Anthropic routes (/v1/chat/completions, /v1/messages, /v1/models) over the loaded model. */
  apiFetch(request: ApiWireRequest): Promise<ApiWireResponse>;
  /** Abort an apiFetch in flight (the page's AbortSignal fired). */
  apiAbort(id: string): Promise<void>;
  tokenize(text: string): Promise<number[]>;
  detokenize(ids: readonly number[]): Promise<string>;
  renderChat(messages: readonly ChatMessage[]): Promise<{ text: string; ids: number[] }>;
  generate(
    prompt: PromptInput,
    maxTokens: number,
    onToken?: (tokenId: number, text: string) => void,
    options?: GenerateOptions,
  ): Promise<GenerateReply>;
}

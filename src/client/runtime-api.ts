import type { ChatMessage } from '../ports/outbound.ts';
import type { LoadProgress, ModelDescriptor } from '../ports/inbound.ts';

/** What a loaded model looks like to the page. */
export interface LoadedModelInfo {
  readonly id: string;
  readonly architecture: string;
  readonly nLayers: number;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly eosTokenIds: readonly number[];
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

/**
 * The surface the worker exposes over Comlink. Callbacks must be wrapped with Comlink.proxy by
 * the caller (the client does it). Errors arrive as their typed classes (installErrorTransfer).
 */
export interface RuntimeApi {
  gpuInfo(): Promise<GpuInfo>;
  loadModel(model: ModelDescriptor, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo>;
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

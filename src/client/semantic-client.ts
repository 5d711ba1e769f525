import { proxy, releaseProxy, wrap, type Remote } from 'comlink';
import { installErrorTransfer } from './comlink-errors.ts';
import type { GenerateOptions, GenerateReply, GpuInfo, LoadedModelInfo, PromptInput, RuntimeApi } from './runtime-api.ts';
import type { LoadProgress, ModelDescriptor } from '../ports/inbound.ts';
import type { ChatMessage } from '../ports/outbound.ts';

export interface SemanticClientOptions {
  /** A worker already started by the app (e.g. with Vite's `?worker` import); default: ours. */
  readonly worker?: Worker;
}

/**
 * The page-side handle on the runtime: starts the dedicated worker, wraps it with Comlink, and
 * re-exposes its API with callbacks proxied and typed errors intact.
 */
export class SemanticClient {
  private readonly worker: Worker;
  private readonly remote: Remote<RuntimeApi>;

  constructor(options: SemanticClientOptions = {}) {
    installErrorTransfer();
    this.worker =
      options.worker ?? new Worker(new URL('../../worker/runtime.worker.ts', import.meta.url), { type: 'module', name: 'semantic' });
    this.remote = wrap<RuntimeApi>(this.worker);
  }

  gpuInfo(): Promise<GpuInfo> {
    return this.remote.gpuInfo();
  }

  loadModel(model: ModelDescriptor, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo> {
    return this.remote.loadModel(model, onProgress ? proxy(onProgress) : undefined);
  }

  tokenize(text: string): Promise<number[]> {
    return this.remote.tokenize(text);
  }

  detokenize(ids: readonly number[]): Promise<string> {
    return this.remote.detokenize(ids);
  }

  renderChat(messages: readonly ChatMessage[]): Promise<{ text: string; ids: number[] }> {
    return this.remote.renderChat(messages);
  }

  generate(
    prompt: PromptInput,
    maxTokens: number,
    onToken?: (tokenId: number, text: string) => void,
    options?: GenerateOptions,
  ): Promise<GenerateReply> {
    return this.remote.generate(prompt, maxTokens, onToken ? proxy(onToken) : undefined, options);
  }

  terminate(): void {
    this.remote[releaseProxy]();
    this.worker.terminate();
  }
}

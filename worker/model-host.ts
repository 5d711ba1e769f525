import { InvalidRequestError, ModelNotFoundError } from '../src/domain/errors.ts';
import { kvBudgetRequest } from '../src/domain/kv-budget.ts';
import type { ModelCacheSpec } from '../src/domain/model-cache-spec.ts';
import { repoIdSource } from '../src/application/model-sources.ts';
import { resolveModelSource } from '../src/adapters/http/range-source.ts';
import { AgentService } from '../src/application/agent-service.ts';
import { InferenceService } from '../src/application/inference-service.ts';
import type { DeviceBackend } from '../src/application/recovering-runtime.ts';
import { storeTiers } from '../src/application/store-tiers.ts';
import type { LoadProgress, ModelDescriptor, ModelManagementPort } from '../src/ports/inbound.ts';
import type { CacheOptions, LoadedModelInfo } from '../src/client/runtime-api.ts';
import { FetchModelSource } from '../src/adapters/http/fetch-model-source.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { createGpuContext, type GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import { AgentRuntime } from './agent-runtime.ts';
import { availableModels } from './available-models.ts';
import { isGgufSource, loadGgufOnDevice } from './gguf-load.ts';

/** One loaded model with the services over it, built once per load. */
export interface Loaded {
  readonly descriptor: ModelDescriptor;
  /** What identifies this load: a shared runtime's other tabs join it instead of reloading. */
  readonly key: string;
  readonly tokenizer: HfTokenizer;
  /** The engine, store and backend; the backend and engine change after a device loss. */
  readonly agents: AgentRuntime;
  readonly inference: InferenceService;
  readonly agentService: AgentService;
}

interface LoadedBackend {
  readonly first: DeviceBackend;
  readonly tokenizer: HfTokenizer;
  /** After a device loss the runtime loads the model again on a new device (files are cached). */
  readonly reload: () => Promise<DeviceBackend>;
}

/**
 * The worker's model slot (ModelManagementPort): loads a model folder or GGUF file on the GPU,
 * builds the engine, the cache store over IndexedDB and the application services over them,
 * and replaces the previous model (whose agents are persisted first). In a SharedWorker, a tab
 * asking for the model being loaded joins that load.
 */
export class ModelHost implements ModelManagementPort {
  private current: Loaded | null = null;
  private loading: { readonly key: string; readonly info: Promise<LoadedModelInfo> } | null = null;
  private gpuContext: Promise<GpuContext> | null = null;

  constructor(private readonly shared: boolean) {}

  /** The loaded model, or ModelNotFoundError. */
  require(): Loaded {
    if (!this.current) throw new ModelNotFoundError('No model is loaded; call loadModel first');
    return this.current;
  }

  /** The GPU context, made once; a lost one is replaced on the next call. */
  async gpu(): Promise<GpuContext> {
    const cached = this.gpuContext ? await this.gpuContext.catch(() => null) : null;
    if (cached && !cached.isLost()) return cached;
    this.gpuContext = createGpuContext().catch((e: unknown) => {
      this.gpuContext = null;
      throw e;
    });
    return this.gpuContext;
  }

  async load(descriptor: ModelDescriptor, onProgress?: (p: LoadProgress) => void, cache?: CacheOptions): Promise<LoadedModelInfo> {
    const key = validateDescriptor(descriptor, cache);
    if (!this.shared) return this.loadFresh(descriptor, key, onProgress, cache);
    // Shared: a tab asking for the model that is loaded, or being loaded, joins that load.
    if (this.current?.key === key) return infoOf(this.current);
    if (this.loading?.key !== key) this.loading = { key, info: this.loadFresh(descriptor, key, onProgress, cache).finally(() => (this.loading = null)) };
    return this.loading.info;
  }

  async loadModel(model: ModelDescriptor, options: { readonly onProgress?: (p: LoadProgress) => void } = {}): Promise<ModelCacheSpec> {
    await this.load(model, options.onProgress);
    return this.require().agents.backend.extractModelSpec();
  }

  /** Persist every agent, then free the model's GPU memory. */
  async unloadModel(): Promise<void> {
    const loaded = this.current;
    this.current = null;
    if (loaded) await release(loaded);
  }

  async getCurrentModel(): Promise<ModelDescriptor | null> {
    return this.current?.descriptor ?? null;
  }

  async listAvailableModels(): Promise<ModelDescriptor[]> {
    return availableModels(this.current?.descriptor ?? null);
  }

  info(): LoadedModelInfo {
    return infoOf(this.require());
  }

  private async loadFresh(descriptor: ModelDescriptor, key: string, onProgress?: (p: LoadProgress) => void, cache?: CacheOptions): Promise<LoadedModelInfo> {
    const source = resolveModelSource(repoIdSource(descriptor.source));
    const { first, tokenizer, reload } = isGgufSource(source)
      ? await this.loadGguf({ ...descriptor, source }, onProgress)
      : await this.loadFolder({ ...descriptor, source }, onProgress);
    const agents = await AgentRuntime.create(first, reload, tokenizer, cache);
    const fingerprint = agents.backend.extractModelSpec().fingerprint;
    // Services are built once per load and follow the engine of the moment (a lost device replaces it).
    const agentService = new AgentService(() => agents.engine, tokenizer, storeTiers(() => agents.store, fingerprint));
    const inference = new InferenceService(() => agents.engine, agentService, tokenizer);
    const previous = this.current;
    this.current = { descriptor, key, tokenizer, agents, inference, agentService };
    if (previous) await release(previous);
    return infoOf(this.current);
  }

  /** The model on the current device, warmed up, with the device's loss promise. */
  private async onDevice(descriptor: ModelDescriptor, files: FetchModelSource, onProgress?: (p: LoadProgress) => void): Promise<DeviceBackend> {
    const context = await this.gpu();
    // The backend reads config.json first, so a missing model is a ModelNotFoundError.
    const { weights, kvDtype, kvBudgetBytes, kvBudgetFraction } = descriptor;
    const backend = await WebGpuBackend.load(context, files, { modelId: descriptor.id, weights, kvDtype, kvBudgetBytes, kvBudgetFraction, onProgress });
    await backend.warmup();
    return { backend, lost: context.lost };
  }

  private async loadFolder(descriptor: ModelDescriptor, onProgress?: (p: LoadProgress) => void): Promise<LoadedBackend> {
    const files = new FetchModelSource(resolveModelSource(descriptor.source), { onProgress });
    const first = await this.onDevice(descriptor, files, onProgress);
    const tokenizer = await HfTokenizer.fromFiles(files).catch((e: unknown) => {
      first.backend.dispose();
      throw e;
    });
    return { first, tokenizer, reload: () => this.onDevice(descriptor, new FetchModelSource(resolveModelSource(descriptor.source))) };
  }

  private async loadGguf(descriptor: ModelDescriptor, onProgress?: (p: LoadProgress) => void): Promise<LoadedBackend> {
    const { device, tokenizer } = await loadGgufOnDevice(await this.gpu(), descriptor, onProgress);
    return { first: device, tokenizer, reload: async () => (await loadGgufOnDevice(await this.gpu(), descriptor)).device };
  }
}

async function release(loaded: Loaded): Promise<void> {
  await loaded.agents.store.persistAll().catch(() => undefined);
  loaded.agents.close();
  loaded.agents.backend.dispose();
}

/** Checks a descriptor before anything is downloaded; returns the key of this load. */
function validateDescriptor(descriptor: ModelDescriptor, cache?: CacheOptions): string {
  if (typeof descriptor?.id !== 'string' || (typeof descriptor.source !== 'string' && typeof descriptor.source?.repo !== 'string')) {
    throw new InvalidRequestError('loadModel needs { id: string, source: string | { repo, file?, revision? } }');
  }
  resolveModelSource(repoIdSource(descriptor.source)); // a malformed hub source fails here, before any download
  const { weights, kvDtype, kvBudgetBytes, kvBudgetFraction } = descriptor;
  if (weights !== undefined && weights !== 'q8' && weights !== 'q4') throw new InvalidRequestError('weights must be q8 or q4 (or absent)', { weights: String(weights) });
  if (kvDtype !== undefined && kvDtype !== 'f16' && kvDtype !== 'f32') throw new InvalidRequestError('kvDtype must be f16 or f32', { kvDtype: String(kvDtype) });
  kvBudgetRequest(kvBudgetBytes, kvBudgetFraction);
  return JSON.stringify([descriptor.id, descriptor.source, weights, kvDtype, kvBudgetBytes, kvBudgetFraction, cache ?? {}]);
}

function infoOf(loaded: Loaded): LoadedModelInfo {
  const c = loaded.agents.backend.config;
  return {
    id: loaded.descriptor.id,
    architecture: c.architecture,
    nLayers: c.nLayers,
    hiddenSize: c.hiddenSize,
    vocabSize: c.vocabSize,
    eosTokenIds: loaded.tokenizer.eosTokenIds(),
    gpuBytes: loaded.agents.backend.loadReport().gpu_bytes,
  };
}

/**
 * Composition root inside the dedicated Web Worker: builds the adapters (WebGPU backend,
 * tokenizer) and exposes them to the page with Comlink.
 */
import { expose, transfer } from 'comlink';
import { installErrorTransfer } from '../src/client/comlink-errors.ts';
import type { CacheOptions, GenerateOptions, GenerateReply, GpuInfo, LoadedModelInfo, PromptInput, RuntimeApi } from '../src/client/runtime-api.ts';
import { AgentRuntime } from './agent-runtime.ts';
import { apiAbort, apiFetch } from './api-bridge.ts';
import { workerApiPorts } from './api-ports.ts';
import { inspectRuntime } from './inspect.ts';
import { createApiHandler, type FetchHandler } from '../src/adapters/api/index.ts';
import { InvalidRequestError, ModelNotFoundError } from '../src/domain/errors.ts';
import { validateAgentId, validateFingerprint, validateMessages, validatePositiveInt, validateTokenIds } from '../src/domain/values.ts';
import type { LoadProgress, ModelDescriptor } from '../src/ports/inbound.ts';
import type { ChatMessage } from '../src/ports/outbound.ts';
import type { DeviceBackend } from '../src/application/recovering-runtime.ts';
import { validateSampling } from '../src/domain/sampling.ts';
import { kvBudgetRequest } from '../src/domain/kv-budget.ts';
import { generateBatch } from '../src/application/batch-generate.ts';
import { FetchModelSource } from '../src/adapters/http/fetch-model-source.ts';
import { resolveModelSource } from '../src/adapters/http/range-source.ts';
import { isGgufSource, loadGgufOnDevice } from './gguf-load.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { createGpuContext, type GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';

installErrorTransfer();

interface Loaded {
  readonly descriptor: ModelDescriptor;
  /** What identifies this load: a shared runtime's other tabs join it instead of reloading. */
  readonly key: string;
  readonly tokenizer: HfTokenizer;
  /** The engine, store and backend; the backend and pool change after a device loss. */
  readonly agents: AgentRuntime;
  /** The OpenAI/Anthropic routes over this model's inbound ports. */
  readonly api: FetchHandler;
}

let current: Loaded | null = null;
/** A load in flight in a shared runtime, which other tabs asking for the same model join. */
let loading: { readonly key: string; readonly info: Promise<LoadedModelInfo> } | null = null;

/** Running as a SharedWorker: one runtime serves every tab that connects. */
const SHARED = typeof (globalThis as { SharedWorkerGlobalScope?: unknown }).SharedWorkerGlobalScope === 'function'
  && globalThis instanceof (globalThis as unknown as { SharedWorkerGlobalScope: new () => object }).SharedWorkerGlobalScope;
let gpuContext: Promise<GpuContext> | null = null;

/** The GPU context, made once; a lost one is replaced on the next call. */
async function gpu(): Promise<GpuContext> {
  const cached = gpuContext ? await gpuContext.catch(() => null) : null;
  if (cached && !cached.isLost()) return cached;
  gpuContext = createGpuContext().catch((e: unknown) => {
    gpuContext = null;
    throw e;
  });
  return gpuContext;
}

/** The model on the current device, warmed up, with the device's loss promise. */
async function loadOnDevice(descriptor: ModelDescriptor, files: FetchModelSource, onProgress?: (p: LoadProgress) => void): Promise<DeviceBackend> {
  const context = await gpu();
  // The backend reads config.json first, so a missing model is a ModelNotFoundError.
  const { weights, kvDtype, kvBudgetBytes, kvBudgetFraction } = descriptor;
  const backend = await WebGpuBackend.load(context, files, { modelId: descriptor.id, weights, kvDtype, kvBudgetBytes, kvBudgetFraction, onProgress });
  await backend.warmup();
  return { backend, lost: context.lost };
}

interface LoadedBackend {
  readonly first: DeviceBackend;
  readonly tokenizer: HfTokenizer;
  /** After a device loss the runtime loads the model again on a new device (files are cached). */
  readonly reload: () => Promise<DeviceBackend>;
}

async function loadFolder(descriptor: ModelDescriptor, onProgress?: (p: LoadProgress) => void): Promise<LoadedBackend> {
  const files = new FetchModelSource(resolveModelSource(descriptor.source), { onProgress });
  const first = await loadOnDevice(descriptor, files, onProgress);
  const tokenizer = await HfTokenizer.fromFiles(files).catch((e: unknown) => {
    first.backend.dispose();
    throw e;
  });
  return { first, tokenizer, reload: () => loadOnDevice(descriptor, new FetchModelSource(resolveModelSource(descriptor.source))) };
}

async function loadGguf(descriptor: ModelDescriptor, onProgress?: (p: LoadProgress) => void): Promise<LoadedBackend> {
  const { device, tokenizer } = await loadGgufOnDevice(await gpu(), descriptor, onProgress);
  return { first: device, tokenizer, reload: async () => (await loadGgufOnDevice(await gpu(), descriptor)).device };
}

/** Load the model on the GPU (replacing the current one, whose agents are persisted first). */
async function loadFresh(descriptor: ModelDescriptor, key: string, onProgress?: (p: LoadProgress) => void, cache?: CacheOptions): Promise<LoadedModelInfo> {
  const { first, tokenizer, reload } = isGgufSource(resolveModelSource(descriptor.source))
    ? await loadGguf(descriptor, onProgress)
    : await loadFolder(descriptor, onProgress);
  const agents = await AgentRuntime.create(first, reload, tokenizer, cache);
  if (current) {
    await current.agents.store.persistAll().catch(() => undefined);
    current.agents.close();
    current.agents.backend.dispose();
  }
  current = { descriptor, key, tokenizer, agents, api: createApiHandler(workerApiPorts(agents, tokenizer, descriptor)) };
  return infoOf(current);
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

function requireModel(): Loaded {
  if (!current) throw new ModelNotFoundError('No model is loaded; call loadModel first');
  return current;
}

function promptIds(loaded: Loaded, prompt: PromptInput): number[] {
  if (typeof prompt !== 'object' || prompt === null) throw new InvalidRequestError('prompt must be an object with one of text, chat or ids');
  const given = [prompt.text, prompt.chat, prompt.ids].filter((p) => p !== undefined).length;
  if (given !== 1) throw new InvalidRequestError('give exactly one of text, chat or ids');
  if (prompt.ids) return [...validateTokenIds(prompt.ids, loaded.agents.backend.vocabSize)];
  if (prompt.chat) return loaded.tokenizer.applyChatTemplate(validateMessages(prompt.chat));
  if (typeof prompt.text !== 'string') throw new InvalidRequestError('prompt.text must be a string');
  // BOS (and any other prompt specials) as the tokenizer config says: Llama 3 models need it.
  return loaded.tokenizer.encodePrompt(prompt.text);
}

/** The RuntimeApi methods backed by the agent runtime (engine + cache store). */
type AgentMethods =
  | 'agentGenerate'
  | 'evictAgent'
  | 'agentTier'
  | 'deleteAgent'
  | 'persistAll'
  | 'listStoredAgents'
  | 'deleteStoredAgent'
  | 'unsavedAgents'
  | 'storageEstimate'
  | 'exportAgent'
  | 'importAgent'
  | 'debugStartLargeSave'
  | 'debugLoseDevice'
  | 'deviceRecoveries'
  | 'inspect';

const api: Omit<RuntimeApi, AgentMethods> = {
  async gpuInfo(): Promise<GpuInfo> {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) return { available: false, features: [] };
    return { available: true, vendor: adapter.info.vendor, architecture: adapter.info.architecture, features: [...adapter.features] };
  },

  async loadModel(descriptor: ModelDescriptor, onProgress?: (p: LoadProgress) => void, cache?: CacheOptions): Promise<LoadedModelInfo> {
    if (typeof descriptor?.id !== 'string' || (typeof descriptor.source !== 'string' && typeof descriptor.source?.repo !== 'string')) {
      throw new InvalidRequestError('loadModel needs { id: string, source: string | { repo, file?, revision? } }');
    }
    resolveModelSource(descriptor.source); // a malformed hub source fails here, before any download
    const { weights, kvDtype, kvBudgetBytes, kvBudgetFraction } = descriptor;
    if (weights !== undefined && weights !== 'q8' && weights !== 'q4') throw new InvalidRequestError('weights must be q8 or q4 (or absent)', { weights: String(weights) });
    if (kvDtype !== undefined && kvDtype !== 'f16' && kvDtype !== 'f32') throw new InvalidRequestError('kvDtype must be f16 or f32', { kvDtype: String(kvDtype) });
    kvBudgetRequest(kvBudgetBytes, kvBudgetFraction); // validates before anything is downloaded
    const key = JSON.stringify([descriptor.id, descriptor.source, weights, kvDtype, kvBudgetBytes, kvBudgetFraction, cache ?? {}]);
    if (!SHARED) return loadFresh(descriptor, key, onProgress, cache);
    // Shared: a tab asking for the model that is loaded, or being loaded, joins that load.
    if (current?.key === key) return infoOf(current);
    if (loading?.key !== key) loading = { key, info: loadFresh(descriptor, key, onProgress, cache).finally(() => (loading = null)) };
    return loading.info;
  },

  async apiFetch(request) {
    return apiFetch(requireModel().api, request);
  },

  async apiAbort(id) {
    apiAbort(id);
  },

  async tokenize(text: string): Promise<number[]> {
    if (typeof text !== 'string') throw new InvalidRequestError('text must be a string');
    return requireModel().tokenizer.encode(text);
  },

  async detokenize(ids: readonly number[]): Promise<string> {
    const loaded = requireModel();
    return loaded.tokenizer.decode(validateTokenIds(ids, loaded.agents.backend.vocabSize));
  },

  async renderChat(messages: readonly ChatMessage[]): Promise<{ text: string; ids: number[] }> {
    const { tokenizer } = requireModel();
    const checked = validateMessages(messages);
    return { text: tokenizer.renderChat(checked), ids: tokenizer.applyChatTemplate(checked) };
  },

  async generate(prompt: PromptInput, maxTokens: number, onToken?: (id: number, text: string) => void, options: GenerateOptions = {}): Promise<GenerateReply> {
    const loaded = requireModel();
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidRequestError('maxTokens must be a positive integer', { maxTokens });
    const ids = promptIds(loaded, prompt);
    const sampling = validateSampling(options.sampling);
    const started = performance.now();
    const eos = options.ignoreEos ? [] : loaded.tokenizer.eosTokenIds();
    await loaded.agents.ready();
    // One BlockPool for the KV memory: the one-shot path allocates from the engine's pool, so it
    // can never overwrite an agent's cached blocks.
    const [result] = await generateBatch(loaded.agents.backend, loaded.agents.engine.kv.pool, [{ promptIds: ids, maxTokens, sampling, eosTokenIds: eos }], {
      returnLogits: options.returnLogits,
    });
    if (onToken) for (const t of result.tokens) await onToken(t, loaded.tokenizer.decode([t]));
    const reply: GenerateReply = {
      promptIds: ids,
      tokenIds: result.tokens,
      text: loaded.tokenizer.decode(result.tokens, { skipSpecialTokens: true }),
      finishReason: result.finishReason,
      elapsedMs: performance.now() - started,
      ...(options.returnLogits ? { logits: result.logits } : {}),
    };
    return options.returnLogits ? transfer(reply, result.logits.map((l) => l.buffer as ArrayBuffer)) : reply;
  },
};

const agentApi: Pick<RuntimeApi, AgentMethods> = {
  async agentGenerate(agentId, prompt, maxTokens, onToken) {
    const loaded = requireModel();
    const ids = promptIds(loaded, prompt);
    return loaded.agents.generate(validateAgentId(agentId), ids, validatePositiveInt(maxTokens, 'maxTokens'), onToken);
  },
  async evictAgent(agentId) {
    return requireModel().agents.store.evict(validateAgentId(agentId));
  },
  async agentTier(agentId) {
    return requireModel().agents.store.tierOf(validateAgentId(agentId));
  },
  async deleteAgent(agentId) {
    return requireModel().agents.deleteAgent(validateAgentId(agentId));
  },
  async persistAll() {
    await requireModel().agents.store.persistAll();
  },
  async listStoredAgents() {
    return requireModel().agents.listStored();
  },
  async deleteStoredAgent(agentId, modelFingerprint) {
    return requireModel().agents.store.deleteStored(validateAgentId(agentId), validateFingerprint(modelFingerprint));
  },
  async unsavedAgents() {
    return [...requireModel().agents.store.unsavedAgents()].map(([agentId, e]) => ({ agentId, error: { name: e.name, code: e.code, message: e.message } }));
  },
  async storageEstimate() {
    const storage = (globalThis.navigator as Navigator | undefined)?.storage;
    if (!storage?.estimate) return null;
    const { usage = 0, quota = 0 } = await storage.estimate();
    return { usage, quota };
  },
  async exportAgent(agentId) {
    const bytes = await requireModel().agents.store.exportAgent(validateAgentId(agentId));
    return bytes ? transfer(bytes, [bytes.buffer as ArrayBuffer]) : null;
  },
  async importAgent(bytes, agentId) {
    if (!(bytes instanceof Uint8Array)) throw new InvalidRequestError('importAgent needs the blob as a Uint8Array');
    return requireModel().agents.store.importAgent(bytes, agentId === undefined ? undefined : validateAgentId(agentId));
  },
  async debugStartLargeSave(agentId, tokens) {
    return requireModel().agents.startLargeSave(agentId, tokens);
  },
  async debugLoseDevice() {
    const loaded = requireModel();
    (await gpu()).device.destroy();
    return loaded.agents.recoveries;
  },
  async deviceRecoveries() {
    const loaded = requireModel();
    await loaded.agents.ready();
    return loaded.agents.recoveries;
  },
  async inspect() {
    const loaded = requireModel();
    return inspectRuntime(loaded.agents, loaded.descriptor.id);
  },
};

const runtime: RuntimeApi = { ...api, ...agentApi };

// The same script runs as a dedicated worker (one page) or as a SharedWorker (every tab of the
// origin, one engine): then each tab that connects gets its own Comlink endpoint on one runtime.
if (SHARED) {
  (globalThis as unknown as { onconnect: (e: MessageEvent) => void }).onconnect = (e) => expose(runtime, e.ports[0]);
} else {
  expose(runtime);
}

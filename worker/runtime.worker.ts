/**
 * Composition root inside the dedicated Web Worker (or the SharedWorker): builds the adapters
 * (WebGPU backend, tokenizer, IndexedDB) and the application services over them, per loaded
 * model (ModelHost), and exposes the inbound ports with Comlink: `engine`
 * (GenerationEnginePort), `inference`, `agents`, `models`, plus the OpenAI/Anthropic routes
 * (`apiFetch`) and the lower-level calls of SemanticClient. Every generation, one-shot or an
 * agent's, runs in the one batched engine.
 */
import { expose, transfer } from 'comlink';
import { installErrorTransfer } from '../src/client/comlink-errors.ts';
import { installOptionsTransfer } from '../src/client/comlink-options.ts';
import type { GenerateOptions, GenerateReply, GpuInfo, PromptInput, RuntimeApi } from '../src/client/runtime-api.ts';
import { apiAbort, apiFetch } from './api-bridge.ts';
import { ModelHost, type Loaded } from './model-host.ts';
import { runtimePorts } from './runtime-ports.ts';
import { createApiHandler } from '../src/adapters/api/index.ts';
import { errorFromPlain, InvalidRequestError } from '../src/domain/errors.ts';
import { inspectRuntime } from './inspect.ts';
import { validateAgentId, validateFingerprint, validateMessages, validatePositiveInt, validateTokenIds } from '../src/domain/values.ts';
import type { ChatMessage } from '../src/ports/outbound.ts';

installErrorTransfer();
installOptionsTransfer();

/** Running as a SharedWorker: one runtime serves every tab that connects. */
const SHARED = typeof (globalThis as { SharedWorkerGlobalScope?: unknown }).SharedWorkerGlobalScope === 'function'
  && globalThis instanceof (globalThis as unknown as { SharedWorkerGlobalScope: new () => object }).SharedWorkerGlobalScope;

const host = new ModelHost(SHARED);
const ports = runtimePorts(host);
// The HTTP-shaped routes run on the same ports; their /v1/models names the loaded model only
// (a request's `model` must name it), while models.listAvailableModels offers what can be loaded.
const apiHandler = createApiHandler({
  inference: ports.inference,
  agents: ports.agents,
  models: { ...ports.models, listAvailableModels: async () => [host.require().descriptor] },
});

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

let oneShots = 0;

/**
 * A request bound to no agent: it runs in the engine as a throwaway agent, deleted when it ends.
 * Its full blocks stay in the prefix index, so it reuses, and leaves, cached prefixes.
 */
async function generateOnce(prompt: PromptInput, maxTokens: number, onToken?: (id: number, text: string) => void, options: GenerateOptions = {}): Promise<GenerateReply> {
  const loaded = host.require();
  validatePositiveInt(maxTokens, 'maxTokens');
  const ids = promptIds(loaded, prompt);
  const agentId = `oneshot-${++oneShots}-${Date.now().toString(36)}`;
  const started = performance.now();
  const run = await loaded.agents
    .run({ agentId, promptIds: ids, maxTokens, sampling: options.sampling, ignoreEos: options.ignoreEos, returnLogits: options.returnLogits, scratch: true }, (d) => onToken?.(d.tokenId, d.text))
    .finally(() => void loaded.agents.store.delete(agentId).catch(() => undefined));
  const { result } = run;
  if (result.error) throw errorFromPlain(result.error);
  const finishReason = result.finishReason === 'length' ? 'length' : 'stop';
  const reply: GenerateReply = { promptIds: ids, tokenIds: result.tokenIds, text: result.text, finishReason, elapsedMs: performance.now() - started };
  if (!options.returnLogits) return reply;
  const logits = result.logits ?? [];
  return transfer({ ...reply, logits }, logits.map((l) => l.buffer as ArrayBuffer));
}

const runtime: RuntimeApi = {
  ...ports,

  async gpuInfo(): Promise<GpuInfo> {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) return { available: false, features: [] };
    return { available: true, vendor: adapter.info.vendor, architecture: adapter.info.architecture, features: [...adapter.features] };
  },

  loadModel: (descriptor, onProgress, cache) => host.load(descriptor, onProgress, cache),

  apiFetch: async (request) => apiFetch(apiHandler, request),

  async apiAbort(id) {
    apiAbort(id);
  },

  async tokenize(text: string): Promise<number[]> {
    if (typeof text !== 'string') throw new InvalidRequestError('text must be a string');
    return host.require().tokenizer.encode(text);
  },

  async detokenize(ids: readonly number[]): Promise<string> {
    const loaded = host.require();
    return loaded.tokenizer.decode(validateTokenIds(ids, loaded.agents.backend.vocabSize));
  },

  async renderChat(messages: readonly ChatMessage[]): Promise<{ text: string; ids: number[] }> {
    const { tokenizer } = host.require();
    const checked = validateMessages(messages);
    return { text: tokenizer.renderChat(checked), ids: tokenizer.applyChatTemplate(checked) };
  },

  generate: generateOnce,


  async agentGenerate(agentId, prompt, maxTokens, onToken) {
    const loaded = host.require();
    const ids = promptIds(loaded, prompt);
    return loaded.agents.generate(validateAgentId(agentId), ids, validatePositiveInt(maxTokens, 'maxTokens'), onToken);
  },
  async evictAgent(agentId) {
    return host.require().agents.store.evict(validateAgentId(agentId));
  },
  async agentTier(agentId) {
    return host.require().agents.store.tierOf(validateAgentId(agentId));
  },
  async deleteAgent(agentId) {
    return host.require().agents.deleteAgent(validateAgentId(agentId));
  },
  async persistAll() {
    await host.require().agents.store.persistAll();
  },
  async listStoredAgents() {
    return host.require().agents.listStored();
  },
  async deleteStoredAgent(agentId, modelFingerprint) {
    return host.require().agents.store.deleteStored(validateAgentId(agentId), validateFingerprint(modelFingerprint));
  },
  async unsavedAgents() {
    return [...host.require().agents.store.unsavedAgents()].map(([agentId, e]) => ({ agentId, error: { name: e.name, code: e.code, message: e.message } }));
  },
  async storageEstimate() {
    const storage = (globalThis.navigator as Navigator | undefined)?.storage;
    if (!storage?.estimate) return null;
    const { usage = 0, quota = 0 } = await storage.estimate();
    return { usage, quota };
  },
  async exportAgent(agentId) {
    const bytes = await host.require().agents.store.exportAgent(validateAgentId(agentId));
    return bytes ? transfer(bytes, [bytes.buffer as ArrayBuffer]) : null;
  },
  async importAgent(bytes, agentId) {
    if (!(bytes instanceof Uint8Array)) throw new InvalidRequestError('importAgent needs the blob as a Uint8Array');
    return host.require().agents.store.importAgent(bytes, agentId === undefined ? undefined : validateAgentId(agentId));
  },
  async debugStartLargeSave(agentId, tokens) {
    return host.require().agents.startLargeSave(agentId, tokens);
  },
  async debugLoseDevice() {
    const loaded = host.require();
    (await host.gpu()).device.destroy();
    return loaded.agents.recoveries;
  },
  async deviceRecoveries() {
    const loaded = host.require();
    await loaded.agents.ready();
    return loaded.agents.recoveries;
  },
  async inspect() {
    const loaded = host.require();
    return inspectRuntime(loaded.agents, loaded.descriptor.id);
  },
};

// The same script runs as a dedicated worker (one page) or as a SharedWorker (every tab of the
// origin, one engine): then each tab that connects gets its own Comlink endpoint on one runtime.
if (SHARED) {
  (globalThis as unknown as { onconnect: (e: MessageEvent) => void }).onconnect = (e) => expose(runtime, e.ports[0]);
} else {
  expose(runtime);
}

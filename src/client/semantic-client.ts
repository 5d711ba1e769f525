import { proxy, releaseProxy, transfer, wrap, type ProxyMarked, type Remote } from 'comlink';
import { InvalidRequestError, SemanticError } from '../domain/errors.ts';
import { installErrorTransfer } from './comlink-errors.ts';
import { installOptionsTransfer } from './comlink-options.ts';
import { startDedicatedWorker, startSharedWorker } from './worker-start.ts';
import type {
  AgentReply,
  CacheOptions,
  GenerateOptions,
  GenerateReply,
  GpuInfo,
  LoadedModelInfo,
  PromptInput,
  RuntimeApi,
  RuntimePorts,
  StoredAgent,
} from './runtime-api.ts';
import type { LoadProgress, ModelDescriptor } from '../ports/inbound.ts';
import type { ChatMessage } from '../ports/outbound.ts';
import type { InspectSnapshot } from '../ports/inspect.ts';

/** The inbound ports on the page side: every method asynchronous, callbacks proxied. */
export type RemotePorts = { readonly [K in keyof RuntimePorts]: Remote<RuntimePorts[K]> };

export interface SemanticClientOptions {
  /** A worker already started by the app (e.g. with Vite's `?worker` import); default: ours. */
  readonly worker?: Worker;
  /**
   * One engine for every tab of the origin: the runtime runs in a SharedWorker, so tabs share
   * its GPU memory, KV blocks and batches. Needs WebGPU in SharedWorker (Chromium has it); where
   * SharedWorker does not exist the client falls back to a dedicated worker (see `mode`).
   * Default false.
   */
  readonly shared?: boolean;
  /** Ask the worker to persist every agent when the page is hidden or closed. Default true. */
  readonly persistOnPageHide?: boolean;
}

/**
 * The page-side handle on the runtime: starts the dedicated worker, wraps it with Comlink, and
 * re-exposes its API with callbacks proxied and typed errors intact.
 */
export class SemanticClient {
  private readonly worker: Worker | SharedWorker;
  private readonly remote: Remote<RuntimeApi>;
  /**
   * The worker's inbound ports over Comlink, on the loaded model: `engine` (submit, step,
   * result, onToken, cancel), `inference` (generate), `agents` (AgentManagementPort) and
   * `models` (load, unload, current, list). Callbacks and AbortSignals may sit in their options
   * objects; errors arrive as their typed classes.
   */
  readonly ports: RemotePorts;
  /** Where the runtime runs: this page's own worker, or one SharedWorker for all tabs. */
  readonly mode: 'dedicated' | 'shared';

  constructor(options: SemanticClientOptions = {}) {
    installErrorTransfer();
    installOptionsTransfer();
    const shared = options.shared === true && options.worker === undefined && typeof SharedWorker === 'function';
    this.mode = shared ? 'shared' : 'dedicated';
    this.worker = shared ? startSharedWorker() : (options.worker ?? startDedicatedWorker());
    const raw = wrap<RuntimeApi>(this.worker instanceof Worker ? this.worker : this.worker.port);
    this.remote = guarded(raw);
    // Each port guarded on its own: a Comlink proxy is a function, so guarding the root would
    // turn `remote.engine` into a call.
    // (Comlink types a nested object as a promise of its clone; at run time it is a proxy for its path.)
    const port = <K extends keyof RuntimePorts>(key: K): Remote<RuntimePorts[K]> => guarded(raw[key] as unknown as Remote<RuntimePorts[K]>);
    this.ports = { engine: port('engine'), inference: port('inference'), agents: port('agents'), models: port('models') };
    // A shared engine outlives this tab and serves others: one tab's pagehide must not demote
    // their agents. Its finished turns are checkpointed as they complete.
    if (!shared && options.persistOnPageHide !== false && typeof addEventListener === 'function') {
      // Best effort: the worker may be stopped before IndexedDB commits; every finished turn is
      // also checkpointed as it completes, so at most the work since then is at risk.
      addEventListener('pagehide', () => void this.remote.persistAll().catch(() => undefined));
    }
  }

  gpuInfo(): Promise<GpuInfo> {
    return this.remote.gpuInfo();
  }

  async loadModel(model: ModelDescriptor, onProgress?: (p: LoadProgress) => void, cache?: CacheOptions): Promise<LoadedModelInfo> {
    // Agents' memory should outlive storage pressure: ask once; the answer is persistenceGranted.
    if (this.persistenceGranted === null) void this.requestPersistentStorage();
    return this.remote.loadModel(model, callback(onProgress), cache);
  }

  async agentGenerate(agentId: string, prompt: PromptInput, maxTokens: number, onToken?: (tokenId: number, text: string) => void): Promise<AgentReply> {
    return this.remote.agentGenerate(agentId, prompt, maxTokens, callback(onToken));
  }

  evictAgent(agentId: string): Promise<'hot' | 'warm' | 'cold' | null> {
    return this.remote.evictAgent(agentId);
  }

  agentTier(agentId: string): Promise<'hot' | 'warm' | 'cold' | 'none'> {
    return this.remote.agentTier(agentId);
  }

  deleteAgent(agentId: string): Promise<boolean> {
    return this.remote.deleteAgent(agentId);
  }

  persistAll(): Promise<void> {
    return this.remote.persistAll();
  }

  listStoredAgents(): Promise<StoredAgent[]> {
    return this.remote.listStoredAgents();
  }

  deleteStoredAgent(agentId: string, modelFingerprint: string): Promise<boolean> {
    return this.remote.deleteStoredAgent(agentId, modelFingerprint);
  }

  unsavedAgents(): ReturnType<RuntimeApi['unsavedAgents']> {
    return this.remote.unsavedAgents();
  }

  storageEstimate(): Promise<{ usage: number; quota: number } | null> {
    return this.remote.storageEstimate();
  }

  /**
   * Ask the browser to keep this origin's storage under pressure (`navigator.storage.persist()`,
   * a page-only API). Resolves with the answer: false where refused or unsupported. The
   * answer is also kept in `persistenceGranted`.
   */
  async requestPersistentStorage(): Promise<boolean> {
    const storage = (globalThis.navigator as Navigator | undefined)?.storage;
    this.persistenceGranted = storage?.persist ? await storage.persist().catch(() => false) : false;
    return this.persistenceGranted;
  }

  /** The last answer of requestPersistentStorage (null before it was asked). */
  persistenceGranted: boolean | null = null;

  /** The agent's memory as a .safetensors file (e.g. for a download link). */
  exportAgent(agentId: string): Promise<Uint8Array | null> {
    return this.remote.exportAgent(agentId);
  }

  /** Install an uploaded .safetensors file as an agent's memory; returns the agent id. */
  importAgent(bytes: Uint8Array, agentId?: string): Promise<string> {
    if (!(bytes instanceof Uint8Array)) return Promise.reject(new InvalidRequestError('importAgent needs the blob as a Uint8Array'));
    return this.remote.importAgent(transfer(bytes, [bytes.buffer as ArrayBuffer]), agentId);
  }

  debugStartLargeSave(agentId: string, tokens: number): Promise<number> {
    return this.remote.debugStartLargeSave(agentId, tokens);
  }

  debugLoseDevice(): Promise<number> {
    return this.remote.debugLoseDevice();
  }

  /** Device losses the worker survived (it reloads the model on a new device and restores agents). */
  deviceRecoveries(): Promise<number> {
    return this.remote.deviceRecoveries();
  }

  /** The KV memory as plain data (pool blocks with owners, agents' tiers, last restores), for inspectors. */
  inspect(): Promise<InspectSnapshot> {
    return this.remote.inspect();
  }

  /**
   * A fetch-compatible handler serving /v1/chat/completions, /v1/messages, /v1/models and
   * /v1/agents from the worker (any origin; relative URLs work). Pass it as the `fetch` option
   * of the openai or @anthropic-ai/sdk clients. Streams arrive token by token.
   */
  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? new Request(input, init) : new Request(absolute(String(input)), init);
    request.signal.throwIfAborted();
    const id = Array.from(crypto.getRandomValues(new Uint32Array(2)), (n) => n.toString(16)).join('');
    const abort = (): void => void this.remote.apiAbort(id).catch(() => undefined);
    request.signal.addEventListener('abort', abort, { once: true });
    const body = request.method === 'GET' || request.method === 'HEAD' ? null : await request.text();
    const wire = await this.remote.apiFetch({ id, url: request.url, method: request.method, headers: [...request.headers], body });
    return new Response(wire.body, { status: wire.status, headers: wire.headers });
  };

  tokenize(text: string): Promise<number[]> {
    return this.remote.tokenize(text);
  }

  detokenize(ids: readonly number[]): Promise<string> {
    return this.remote.detokenize(ids);
  }

  renderChat(messages: readonly ChatMessage[]): Promise<{ text: string; ids: number[] }> {
    return this.remote.renderChat(messages);
  }

  async generate(
    prompt: PromptInput,
    maxTokens: number,
    onToken?: (tokenId: number, text: string) => void,
    options?: GenerateOptions,
  ): Promise<GenerateReply> {
    return this.remote.generate(prompt, maxTokens, callback(onToken), options);
  }

  /** Persist every agent to IndexedDB, then stop the worker: the clean way to shut down. */
  async close(): Promise<void> {
    if (this.mode === 'dedicated') await this.remote.persistAll().catch(() => undefined);
    this.terminate();
  }

  /**
   * Stop the worker now (work not yet checkpointed is lost; see close()). A shared runtime is
   * only disconnected from this tab: it stops when its last tab is gone.
   */
  terminate(): void {
    this.remote[releaseProxy]();
    if (this.worker instanceof Worker) this.worker.terminate();
    else this.worker.port.close();
  }
}

/** Relative URLs get a placeholder origin: the worker resolves nothing against the page. */
function absolute(url: string): string {
  return url.startsWith('/') ? `http://local${url}` : url;
}

/** A page callback for the worker: proxied when it is a function; anything else is refused. */
function callback<F extends (...args: never[]) => unknown>(fn: F | undefined): (F & ProxyMarked) | undefined {
  if (fn === undefined || fn === null) return undefined;
  if (typeof fn !== 'function') throw new InvalidRequestError('a callback must be a function');
  return proxy(fn);
}

/**
 * Every call to the worker, with arguments that cannot cross the boundary (a function where
 * data belongs, a detached buffer) turned into InvalidRequestError: bad input is always a typed
 * error, on either side of postMessage.
 */
function guarded<T extends object>(remote: T): T {
  return new Proxy(remote, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        try {
          const out: unknown = Reflect.apply(value, target, args);
          return out instanceof Promise ? out.catch((e: unknown) => Promise.reject(typedCloneError(e))) : out;
        } catch (error) {
          return Promise.reject(typedCloneError(error));
        }
      };
    },
  });
}

function typedCloneError(error: unknown): unknown {
  if (error instanceof SemanticError) return error;
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'DataCloneError' || /postMessage|could not be cloned|weak map key/.test(message)) {
    return new InvalidRequestError(`an argument cannot be sent to the worker: ${message}`, { originalName: name });
  }
  return error;
}


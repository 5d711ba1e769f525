import { InvalidRequestError } from '../domain/errors.ts';
import type { LoadProgress, ModelDescriptor } from '../ports/inbound.ts';
import type { CallOptions, EngineApi } from './api-types.ts';
import { createRemoteEngine, type RemoteOptions } from './remote-engine.ts';
import type { CacheOptions, LoadedModelInfo } from './runtime-api.ts';
import { SemanticClient, type RemotePorts } from './semantic-client.ts';

export interface EngineOptions {
  /** Run against a server (semantic serve, vLLM, SGLang...) instead of a worker in this page. */
  readonly remote?: RemoteOptions;
  /** The model to load in this page's worker: `{ id, source }` (a URL or a path the app serves). */
  readonly model?: ModelDescriptor;
  /** Download progress of the model's files. */
  readonly onProgress?: (p: LoadProgress) => void;
  readonly cache?: CacheOptions;
  /** A worker the app started itself (e.g. a Vite `?worker` import); default: ours. */
  readonly worker?: Worker;
}

/** Model management in the page (ModelManagementPort), beside the OpenAI-shaped `list`. */
export interface LocalModels {
  list: EngineApi['models']['list'];
  /** Load another model in place of the current one (its agents are persisted first). */
  load(model: ModelDescriptor, options?: { readonly onProgress?: (p: LoadProgress) => void; readonly cache?: CacheOptions } & CallOptions): Promise<LoadedModelInfo>;
  /** Persist every agent and free the model's GPU memory. */
  unload(options?: CallOptions): Promise<void>;
  current(options?: CallOptions): Promise<ModelDescriptor | null>;
  /** The app's embedded models, the hub models known to work, and what the Cache API holds. */
  available(options?: CallOptions): Promise<ModelDescriptor[]>;
}

/** The in-page engine: the API plus the loaded model and a way to stop the worker. */
export interface LocalEngine extends Omit<EngineApi, 'models'> {
  readonly models: LocalModels;
  /** The model loaded by createEngine (models.load replaces it; see models.current). */
  readonly model: LoadedModelInfo;
  /** The worker's inbound ports over Comlink: engine (submit, step, onToken, cancel), inference, agents, models. */
  readonly ports: RemotePorts;
  /** The lower-level client (eviction, export/import of agent memory, ...). */
  readonly client: SemanticClient;
  /** Persist every agent, then stop the worker. */
  close(): Promise<void>;
}

/**
 * The embedding API. With `model`: starts the worker, loads the model (reporting progress) and
 * serves the OpenAI/Anthropic shapes from it; every call takes an AbortSignal and fails with the
 * runtime's typed errors. With `remote`: the same calls against a server.
 */
export async function createEngine(options: EngineOptions & { readonly model: ModelDescriptor }): Promise<LocalEngine>;
export async function createEngine(options: EngineOptions & { readonly remote: RemoteOptions }): Promise<EngineApi>;
export async function createEngine(options: EngineOptions): Promise<EngineApi | LocalEngine> {
  if (options.remote && options.model) throw new InvalidRequestError('give either remote or model, not both', { param: 'remote' });
  if (options.remote) return createRemoteEngine(options.remote);
  if (!options.model) throw new InvalidRequestError('createEngine needs { model: { id, source } } or { remote: { baseURL } }', { param: 'model' });
  const client = new SemanticClient(options.worker ? { worker: options.worker } : {});
  let model: LoadedModelInfo;
  try {
    model = await client.loadModel(options.model, options.onProgress, options.cache);
  } catch (error) {
    client.terminate();
    throw error;
  }
  const api = createRemoteEngine({ baseURL: 'http://local/v1', fetch: client.fetch });
  const models: LocalModels = {
    list: api.models.list,
    load: (descriptor, o = {}) => abortable(o.signal, () => client.loadModel(descriptor, o.onProgress, o.cache ?? options.cache)),
    unload: (o = {}) => abortable(o.signal, () => client.ports.models.unloadModel()),
    current: (o = {}) => abortable(o.signal, () => client.ports.models.getCurrentModel()),
    available: (o = {}) => abortable(o.signal, () => client.ports.models.listAvailableModels()),
  };
  return { ...api, models, fetch: client.fetch, model, client, ports: client.ports, close: () => client.close() };
}

/**
 * A worker call under an AbortSignal: rejects with the signal's reason when it fires. Loading and
 * listing cannot be stopped half-way in the worker, so the call goes on there and its outcome is
 * dropped (a later load replaces the model anyway).
 */
function abortable<T>(signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
  if (!signal) return call();
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    call().then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

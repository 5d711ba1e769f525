import { InvalidRequestError } from '../domain/errors.ts';
import type { LoadProgress, ModelDescriptor } from '../ports/inbound.ts';
import type { EngineApi } from './api-types.ts';
import { createRemoteEngine, type RemoteOptions } from './remote-engine.ts';
import type { CacheOptions, LoadedModelInfo } from './runtime-api.ts';
import { SemanticClient } from './semantic-client.ts';

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

/** The in-page engine: the API plus the loaded model and a way to stop the worker. */
export interface LocalEngine extends EngineApi {
  readonly model: LoadedModelInfo;
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
  return { ...api, fetch: client.fetch, model, client, close: () => client.close() };
}

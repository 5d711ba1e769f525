import { InvalidRequestError } from '../domain/errors.ts';
import type { EngineApi } from './api-types.ts';
import { createRemoteEngine, type RemoteOptions } from './remote-engine.ts';

export interface EngineOptions {
  /** Run against a server (semantic serve, vLLM, SGLang...) instead of a worker in this page. */
  readonly remote?: RemoteOptions;
}

/**
 * The embedding API. With `remote`, calls go to an OpenAI-compatible server. The in-page
 * engine (a worker with WebGPU) is not wired to this entry point yet: use SemanticClient.
 */
export async function createEngine(options: EngineOptions): Promise<EngineApi> {
  if (options.remote) return createRemoteEngine(options.remote);
  throw new InvalidRequestError('createEngine needs { remote: { baseURL } } for now; the in-page engine is SemanticClient', { param: 'remote' });
}

import { InvalidRequestError } from '../domain/errors.ts';
import type {
  AgentEntry,
  CallOptions, ChatCompletion, ChatCompletionChunk, ChatCompletionParams, EngineApi, FetchLike, Message, MessageCreateParams, MessageStreamEvent, ModelEntry,
} from './api-types.ts';
import { errorFromBody, sseJson } from './sse-reader.ts';

/**
 * The embedding API against a server: `semantic serve`, or any OpenAI-compatible server (vLLM,
 * SGLang) for chat.completions. Agents and their memory are then the server's. Errors come back
 * as the runtime's typed classes (from the error object's `code`).
 */
export interface RemoteOptions {
  /** The API root, e.g. `http://127.0.0.1:8080/v1` (a missing `/v1` is added). */
  readonly baseURL: string;
  readonly apiKey?: string;
  /** A fetch to use instead of the global one (tests, proxies). */
  readonly fetch?: FetchLike;
}

function apiRoot(baseURL: string): string {
  let url: URL;
  try {
    url = new URL(baseURL);
  } catch {
    throw new InvalidRequestError(`remote.baseURL is not a URL: ${baseURL}`, { param: 'baseURL' });
  }
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${path.endsWith('/v1') ? path : `${path}/v1`}`;
}

export function createRemoteEngine(options: RemoteOptions): EngineApi {
  const root = apiRoot(options.baseURL);
  const fetcher: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.apiKey) {
    headers['authorization'] = `Bearer ${options.apiKey}`;
    headers['x-api-key'] = options.apiKey;
  }

  async function call(path: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    const response = await fetcher(`${root}${path}`, { ...init, headers: { ...headers, ...(path === '/messages' ? { 'anthropic-version': '2023-06-01' } : {}) }, signal });
    if (response.ok) return response;
    const body: unknown = await response.json().catch(() => null);
    throw errorFromBody(body, response.status);
  }

  async function post<T, C>(path: string, params: { readonly stream?: boolean }, options: CallOptions = {}): Promise<T | AsyncIterable<C>> {
    const response = await call(path, { method: 'POST', body: JSON.stringify(params) }, options.signal);
    if (!params.stream) return (await response.json()) as T;
    if (!response.body) throw new InvalidRequestError('the server answered a streamed request without a body');
    return sseJson<C>(response.body, options.signal);
  }

  const completions = {
    create: (params: ChatCompletionParams, o?: CallOptions) => post<ChatCompletion, ChatCompletionChunk>('/chat/completions', params, o),
  } as EngineApi['chat']['completions'];
  const messages = {
    create: (params: MessageCreateParams, o?: CallOptions) => post<Message, MessageStreamEvent>('/messages', params, o),
  } as EngineApi['messages'];
  const json = async <T>(path: string, init: RequestInit, o: CallOptions = {}): Promise<T> => (await (await call(path, init, o.signal)).json()) as T;
  const agentPath = (id: string): string => `/agents/${encodeURIComponent(id)}`;
  return {
    chat: { completions },
    messages,
    models: {
      list: async (o?: CallOptions) => (await json<{ data: ModelEntry[] }>('/models', { method: 'GET' }, o)).data,
    },
    agents: {
      create: (params, o) => json<AgentEntry>('/agents', { method: 'POST', body: JSON.stringify(params) }, o),
      list: async (o) => (await json<{ data: AgentEntry[] }>('/agents', { method: 'GET' }, o)).data,
      retrieve: (id, o) => json<AgentEntry>(agentPath(id), { method: 'GET' }, o),
      delete: async (id, o) => (await json<{ deleted: boolean }>(agentPath(id), { method: 'DELETE' }, o)).deleted,
    },
    fetch: (input, init) => fetcher(input, init),
  };
}

import { InvalidRequestError, ModelNotFoundError } from '../../domain/errors.ts';
import { chatCompletions, errorResponse, jsonResponse, messages } from './chat-routes.ts';
import { agentRoutes } from './agent-routes.ts';
import type { ApiPorts } from './generation-run.ts';

/**
 * A fetch-compatible handler serving the OpenAI and Anthropic routes over the inbound ports:
 * what `engine.fetch` is in the page (pass it as the SDKs' `fetch` option) and what
 * `semantic serve` puts behind node:http. Any origin and path prefix is accepted; the route is
 * the path's tail (`.../v1/chat/completions`, `.../v1/messages`, `.../v1/models`, and our
 * `.../v1/agents` extension, see agent-routes.ts).
 */
export type FetchHandler = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** Relative URLs ("/v1/models") get a placeholder origin: there is no document to resolve them against in a worker or Node. */
function toRequest(input: RequestInfo | URL, init?: RequestInit): Request {
  if (input instanceof Request) return init ? new Request(input, init) : input;
  const url = String(input);
  return new Request(url.startsWith('/') ? `http://local${url}` : url, init);
}

async function models(ports: ApiPorts, request: Request): Promise<Response> {
  const current = await ports.models.getCurrentModel();
  const listed = await ports.models.listAvailableModels();
  const ids = [...new Set([...(current ? [current.id] : []), ...listed.map((m) => m.id)])];
  const created = Math.floor(Date.now() / 1000);
  // One list both SDKs read: OpenAI's fields and Anthropic's (type, display_name, created_at, has_more).
  const entry = (id: string): Record<string, unknown> => ({
    id,
    object: 'model',
    created,
    owned_by: 'semantic',
    type: 'model',
    display_name: id,
    created_at: new Date(created * 1000).toISOString(),
    loaded: id === current?.id,
  });
  const one = /\/v1\/models\/([^/]+)$/.exec(new URL(request.url).pathname);
  if (one) {
    const id = decodeURIComponent(one[1]);
    if (!ids.includes(id)) throw new ModelNotFoundError(`no model ${id}`, { param: 'model' });
    return jsonResponse(200, entry(id));
  }
  return jsonResponse(200, { object: 'list', data: ids.map(entry), has_more: false, first_id: ids[0] ?? null, last_id: ids[ids.length - 1] ?? null });
}

function route(path: string): 'chat' | 'messages' | 'models' | 'agents' | null {
  if (/\/v1\/agents(\/[^/]+)?$/.test(path)) return 'agents';
  if (path.endsWith('/v1/chat/completions')) return 'chat';
  if (path.endsWith('/v1/messages')) return 'messages';
  if (/\/v1\/models(\/[^/]+)?$/.test(path)) return 'models';
  return null;
}

function agentIdOf(path: string): string | null {
  const m = /\/v1\/agents\/([^/]+)$/.exec(path);
  return m ? decodeURIComponent(m[1]) : null;
}

export function createApiHandler(ports: ApiPorts): FetchHandler {
  return async (input, init) => {
    let request: Request;
    try {
      request = toRequest(input, init);
    } catch (error) {
      return errorResponse('openai', new InvalidRequestError(`not a valid request: ${String(error)}`));
    }
    const path = new URL(request.url).pathname.replace(/\/+$/, '');
    const which = route(path);
    const flavor = which === 'messages' || request.headers.has('anthropic-version') ? 'anthropic' : 'openai';
    const wantMethod = which === 'models' ? 'GET' : 'POST';
    if (!which) return errorResponse(flavor, new ModelNotFoundError(`no route ${request.method} ${path}`, { reason: 'no-route' }));
    if (which !== 'agents' && request.method !== wantMethod) {
      return errorResponse(flavor, new InvalidRequestError(`${path} takes ${wantMethod}, not ${request.method}`, { param: 'method' }));
    }
    try {
      if (which === 'chat') return await chatCompletions(ports, request);
      if (which === 'messages') return await messages(ports, request);
      if (which === 'agents') return await agentRoutes(ports, request, agentIdOf(path));
      return await models(ports, request);
    } catch (error) {
      return errorResponse(flavor, error);
    }
  };
}

import type { AgentInfo } from '../../ports/inbound.ts';
import { jsonResponse } from './chat-routes.ts';
import type { ApiPorts } from './generation-run.ts';
import { agentOf, invalid, parseBody, textContent } from './request-fields.ts';

/**
 * Our extension routes over AgentManagementPort, so `engine.agents` works the same in the page
 * and against `semantic serve`:
 *   GET /v1/agents, GET /v1/agents/{id} (404 agent_not_found), DELETE /v1/agents/{id},
 *   POST /v1/agents { agent_id, system? } (prefills and caches the system prompt).
 */
function wire(a: AgentInfo): Record<string, unknown> {
  return { id: a.agentId, object: 'agent', token_count: a.tokenCount, blocks: a.blocks, tier: a.tier, last_used: a.lastUsed };
}

async function create(ports: ApiPorts, request: Request): Promise<Response> {
  const body = parseBody(await request.text());
  const agentId = agentOf(body, request.headers.get('x-agent-id'));
  if (!agentId) throw invalid('agent_id', 'is required');
  const system = body['system'];
  const initialContext = system === undefined || system === null ? undefined : [{ role: 'system' as const, content: textContent(system, 'system') }];
  return jsonResponse(200, wire(await ports.agents.createAgent(agentId, initialContext ? { initialContext } : {})));
}

export async function agentRoutes(ports: ApiPorts, request: Request, id: string | null): Promise<Response> {
  if (id === null && request.method === 'GET') return jsonResponse(200, { object: 'list', data: (await ports.agents.listAgents()).map(wire) });
  if (id === null && request.method === 'POST') return create(ports, request);
  if (id !== null && request.method === 'GET') return jsonResponse(200, wire(await ports.agents.getAgentInfo(id)));
  if (id !== null && request.method === 'DELETE') return jsonResponse(200, { id, object: 'agent.deleted', deleted: await ports.agents.deleteAgent(id) });
  throw invalid('method', `${request.method} is not allowed on ${new URL(request.url).pathname}`);
}

import { AgentNotFoundError, InvalidRequestError } from '../src/domain/errors.ts';
import { AgentService } from '../src/application/agent-service.ts';
import { InferenceService } from '../src/application/inference-service.ts';
import type { ApiPorts } from '../src/adapters/api/index.ts';
import type { AgentInfo, AgentManagementPort, InferencePort, ModelDescriptor, ModelManagementPort } from '../src/ports/inbound.ts';
import type { TokenizerPort } from '../src/ports/outbound.ts';
import type { AgentRuntime } from './agent-runtime.ts';

/**
 * The inbound ports over the worker's agent runtime, for the OpenAI/Anthropic handler
 * (engine.fetch). The engine is replaced after a lost device, so each call builds its service
 * over the engine of the moment; a turn takes the agent's cross-tab lock first.
 */
function inference(agents: AgentRuntime, tokenizer: TokenizerPort): InferencePort {
  return {
    async generate(agentId, prompt, options) {
      await agents.ready();
      await agents.lockAgent(agentId);
      const engine = agents.engine;
      return new InferenceService(engine, new AgentService(engine, tokenizer), tokenizer).generate(agentId, prompt, options);
    },
  };
}

function agentInfo(agents: AgentRuntime, agentId: string): AgentInfo {
  const blocks = agents.engine.kv.agentBlocks(agentId);
  const tier = agents.store.tierOf(agentId);
  if (!blocks && tier === 'none') throw new AgentNotFoundError(`no agent ${agentId}`, { agentId });
  return { agentId, tokenCount: blocks?.tokenIds.length ?? 0, blocks: blocks?.blockTable.length ?? 0, tier, lastUsed: 0 };
}

function agentPort(agents: AgentRuntime, tokenizer: TokenizerPort): AgentManagementPort {
  return {
    async createAgent(agentId, options) {
      await agents.ready();
      await agents.lockAgent(agentId);
      return new AgentService(agents.engine, tokenizer, (id) => agents.store.tierOf(id)).createAgent(agentId, options);
    },
    deleteAgent: (agentId) => agents.deleteAgent(agentId),
    async listAgents() {
      const stored = await agents.listStored();
      const spec = agents.backend.extractModelSpec();
      const ids = new Set([...agents.engine.kv.agentIds(), ...stored.filter((s) => s.modelFingerprint === spec.fingerprint).map((s) => s.agentId)]);
      return [...ids].map((id) => agentInfo(agents, id));
    },
    getAgentInfo: async (agentId) => agentInfo(agents, agentId),
  };
}

/** The loaded model; loading another goes through the worker's loadModel (it rebuilds these ports). */
function modelPort(descriptor: ModelDescriptor): ModelManagementPort {
  const elsewhere = async (): Promise<never> => {
    throw new InvalidRequestError('load and unload models with engine.models.load / the client; this port serves the loaded one', { param: 'model' });
  };
  return { loadModel: elsewhere, unloadModel: elsewhere, getCurrentModel: async () => descriptor, listAvailableModels: async () => [descriptor] };
}

export function workerApiPorts(agents: AgentRuntime, tokenizer: TokenizerPort, descriptor: ModelDescriptor): ApiPorts {
  return { inference: inference(agents, tokenizer), agents: agentPort(agents, tokenizer), models: modelPort(descriptor) };
}

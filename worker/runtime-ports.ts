import { proxy } from 'comlink';
import { validateAgentId } from '../src/domain/values.ts';
import type { AgentManagementPort, GenerateOptions, GenerationResult, InferencePort, ModelManagementPort, SubmitRequest } from '../src/ports/inbound.ts';
import type { RuntimePorts, WorkerEnginePort } from '../src/client/runtime-api.ts';
import type { ChatMessage } from '../src/ports/outbound.ts';
import type { ModelHost } from './model-host.ts';

/**
 * The inbound ports as the worker exposes them over Comlink, on whatever model is loaded: each
 * call goes to the application services of the current load (InferenceService, AgentService,
 * the batch engine, ModelHost). Before a turn, the worker waits out any device recovery and
 * becomes the agent's one writer across tabs (AgentBusyError otherwise). A page calls them as
 * `remote.inference.generate(...)`, `remote.engine.submit(...)`, with callbacks wrapped in
 * Comlink.proxy; AbortSignals cannot cross postMessage, so cancellation is `engine.cancel(uid)`
 * (or the abort of an `engine.fetch` call).
 */
/** Wait for any device recovery, then take the agent's cross-tab lock. */
async function enterTurn(models: ModelHost, agentId: string): Promise<void> {
  const { agents } = models.require();
  await agents.ready();
  await agents.lockAgent(validateAgentId(agentId));
}

function enginePort(models: ModelHost): WorkerEnginePort {
  const engine = () => models.require().agents.engine;
  return {
    async submit(request: SubmitRequest) {
      await enterTurn(models, request?.agentId);
      return engine().submit(request);
    },
    step: async () => engine().step(),
    result: async (uid) => engine().result(uid),
    onToken: async (uid, listener) => proxy(engine().onToken(uid, listener)),
    cancel: async (uid) => engine().cancel(uid),
    hasPendingWork: async () => engine().hasPendingWork(),
  };
}

function inferencePort(models: ModelHost): InferencePort {
  return {
    async generate(agentId: string, prompt: string | readonly ChatMessage[], options?: GenerateOptions): Promise<GenerationResult> {
      await enterTurn(models, agentId);
      return models.require().inference.generate(agentId, prompt, options);
    },
  };
}

function agentPort(models: ModelHost): AgentManagementPort {
  return {
    async createAgent(agentId, options) {
      await enterTurn(models, agentId);
      return models.require().agentService.createAgent(agentId, options);
    },
    async deleteAgent(agentId) {
      const { agents, agentService } = models.require();
      const existed = await agentService.deleteAgent(agentId);
      // Deleted: this tab stops being its writer.
      agents.releaseAgent(agentId);
      return existed;
    },
    listAgents: async () => models.require().agentService.listAgents(),
    getAgentInfo: async (agentId) => models.require().agentService.getAgentInfo(agentId),
  };
}

export function runtimePorts(models: ModelHost): RuntimePorts {
  // Only the port's methods cross: ModelHost's own (require, gpu, ...) stay in the worker.
  const modelPort: ModelManagementPort = {
    loadModel: (model, options) => models.loadModel(model, options),
    unloadModel: () => models.unloadModel(),
    getCurrentModel: () => models.getCurrentModel(),
    listAvailableModels: () => models.listAvailableModels(),
  };
  return { engine: enginePort(models), inference: inferencePort(models), agents: agentPort(models), models: modelPort };
}

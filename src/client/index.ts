export { SemanticClient, type RemotePorts, type SemanticClientOptions } from './semantic-client.ts';
export type { AgentReply, CacheOptions, StoredAgent, GenerateOptions, GenerateReply, GpuInfo, LoadedModelInfo, PromptInput, RuntimeApi, RuntimePorts, WorkerEnginePort } from './runtime-api.ts';
export * from '../domain/errors.ts';
export { createEngine, type EngineOptions, type LocalEngine, type LocalModels } from './create-engine.ts';
export type { RemoteOptions } from './remote-engine.ts';
export type { LoadProgress, ModelDescriptor } from '../ports/inbound.ts';
export type * from './api-types.ts';
export type * from '../ports/inspect.ts';

export { SemanticClient, type SemanticClientOptions } from './semantic-client.ts';
export type { GenerateOptions, GenerateReply, GpuInfo, LoadedModelInfo, PromptInput, RuntimeApi } from './runtime-api.ts';
export * from '../domain/errors.ts';

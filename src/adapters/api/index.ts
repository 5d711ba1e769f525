export { createApiHandler, type FetchHandler } from './api-handler.ts';
export type { ApiPorts } from './generation-run.ts';
export { apiError, type ApiFlavor } from './api-errors.ts';
export { parseOpenAiChat, openAiCompletion, openAiChunk } from './openai-chat.ts';
export { parseAnthropicMessages, anthropicMessage, anthropicEvents } from './anthropic-messages.ts';

/**
 * Server-sent events as both APIs stream them: OpenAI sends `data:` lines only and ends with
 * `data: [DONE]`; Anthropic names each event (`event: message_start` ...).
 */
const encoder = new TextEncoder();

export function sseData(data: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
}

export function sseEvent(event: string, data: unknown): Uint8Array {
  return encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export const SSE_DONE = encoder.encode('data: [DONE]\n\n');

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
};

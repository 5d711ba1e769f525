import { errorFromCode, InternalError, type SemanticError } from '../domain/errors.ts';

/**
 * Reads a server-sent-event body (OpenAI's `data:` lines ending in `[DONE]`, or Anthropic's
 * named events) as parsed JSON payloads. An `error` payload ends the stream by throwing the
 * typed error it names.
 */
export interface SseMessage {
  readonly event: string | null;
  readonly data: string;
}

async function* frames(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value, { stream: !done }).replace(/\r\n/g, '\n');
      let at: number;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        let event: string | null = null;
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length > 0) yield { event, data: data.join('\n') };
      }
      if (done) return;
    }
  } finally {
    // The consumer stopped early (break, abort): release the connection.
    await reader.cancel().catch(() => undefined);
  }
}

/** The typed error an API error object names (`{ error: { message, code } }`, either API's). */
export function errorFromBody(body: unknown, status: number): SemanticError {
  const e = (typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['error'] : undefined) as Record<string, unknown> | undefined;
  const message = typeof e?.['message'] === 'string' ? e['message'] : `request failed with status ${status}`;
  if (typeof e?.['code'] === 'string') return errorFromCode(e['code'], message, { status, type: e['type'] });
  return new InternalError(message, { status, type: e?.['type'] });
}

/** Payloads until `[DONE]` or the end; an aborted `signal` ends the iteration with its AbortError. */
export async function* sseJson<T>(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<T> {
  for await (const m of frames(body)) {
    signal?.throwIfAborted();
    if (m.data === '[DONE]') return;
    const value = JSON.parse(m.data) as Record<string, unknown>;
    if (m.event === 'error' || value['error'] !== undefined) throw errorFromBody(value, 200);
    yield value as T;
  }
}

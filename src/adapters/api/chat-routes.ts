import type { GenerationResult, TokenDelta } from '../../ports/inbound.ts';
import { anthropicEvents, anthropicMessage, parseAnthropicMessages } from './anthropic-messages.ts';
import { apiError, type ApiFlavor } from './api-errors.ts';
import { randomId, randomSeed, runGeneration, servedModel, type ApiPorts } from './generation-run.ts';
import { openAiChunk, openAiCompletion, openAiFinishReason, openAiLogprobs, openAiUsage, parseOpenAiChat, type CompletionMeta } from './openai-chat.ts';
import { parseBody, type ChatRequest } from './request-fields.ts';
import { SSE_DONE, SSE_HEADERS, sseData, sseEvent } from './sse.ts';

/**
 * POST /v1/chat/completions and POST /v1/messages: parse and validate the body in the API's
 * shape, run it through the inbound ports, and answer JSON or server-sent events.
 */
export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

export function errorResponse(flavor: ApiFlavor, error: unknown): Response {
  const { status, body } = apiError(flavor, error);
  return jsonResponse(status, body);
}

/** A byte stream fed from callbacks; writes after the reader went away are dropped. */
function pushStream(onCancel: () => void): { stream: ReadableStream<Uint8Array>; push: (b: Uint8Array) => void; close: () => void } {
  let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    cancel: () => {
      controller = null;
      onCancel();
    },
  });
  const guard = (f: (c: ReadableStreamDefaultController<Uint8Array>) => void): void => {
    try {
      if (controller) f(controller);
    } catch {
      controller = null;
    }
  };
  return { stream, push: (b) => guard((c) => c.enqueue(b)), close: () => guard((c) => c.close()) };
}

interface StreamShape {
  readonly flavor: ApiFlavor;
  readonly opening: () => Uint8Array[];
  readonly token: (d: TokenDelta) => Uint8Array | null;
  readonly closing: (r: GenerationResult) => Uint8Array[];
  readonly failure: (e: unknown) => Uint8Array[];
}

/** Run the request and answer with SSE; an error before the first token is a plain 4xx/5xx JSON answer. */
async function streamed(ports: ApiPorts, req: ChatRequest, signal: AbortSignal, shape: StreamShape): Promise<Response> {
  const abort = new AbortController();
  const out = pushStream(() => abort.abort());
  const run = runGeneration(ports, req, AbortSignal.any([signal, abort.signal]), (d) => {
    const bytes = shape.token(d);
    if (bytes) out.push(bytes);
  });
  const first = await run.started;
  if (first.failed) return errorResponse(shape.flavor, first.error);
  void run.done.then(
    (r) => shape.closing(r).forEach(out.push),
    (e: unknown) => shape.failure(e).forEach(out.push),
  ).finally(out.close);
  const opening = shape.opening();
  return new Response(prepend(opening, out.stream), { status: 200, headers: SSE_HEADERS });
}

/** The opening events go first, ahead of the token events queued meanwhile. */
function prepend(first: readonly Uint8Array[], rest: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = rest.getReader();
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (i < first.length) return c.enqueue(first[i++]);
      const { value, done } = await reader.read();
      if (done) c.close();
      else c.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

export async function chatCompletions(ports: ApiPorts, request: Request): Promise<Response> {
  try {
    const req = parseOpenAiChat(parseBody(await request.text()), request.headers.get('x-agent-id'), randomSeed);
    const model = await servedModel(ports.models, req.model);
    const meta: CompletionMeta = { id: `chatcmpl-${randomId()}`, created: Math.floor(Date.now() / 1000), model, ...(req.agentId ? { agentId: req.agentId } : {}) };
    const withLogprobs = req.logprobs !== undefined;
    if (!req.stream) {
      const run = runGeneration(ports, req, request.signal);
      return jsonResponse(200, openAiCompletion(await run.done, meta, withLogprobs));
    }
    const usageField = req.includeUsage ? null : undefined;
    return await streamed(ports, req, request.signal, {
      flavor: 'openai',
      opening: () => [sseData(openAiChunk(meta, { delta: { role: 'assistant', content: '' } }, usageField))],
      token: (d) => {
        if (d.text === '' && !(withLogprobs && d.logprob)) return null;
        const logprobs = withLogprobs && d.logprob ? openAiLogprobs([d.logprob]) : null;
        return sseData(openAiChunk(meta, { delta: { content: d.text }, logprobs }, usageField));
      },
      closing: (r) => [
        sseData(openAiChunk(meta, { delta: {}, finish_reason: openAiFinishReason(r.finishReason) }, usageField)),
        ...(req.includeUsage ? [sseData(openAiChunk(meta, null, openAiUsage(r.usage)))] : []),
        SSE_DONE,
      ],
      failure: (e) => [sseData(apiError('openai', e).body), SSE_DONE],
    });
  } catch (error) {
    return errorResponse('openai', error);
  }
}

export async function messages(ports: ApiPorts, request: Request): Promise<Response> {
  try {
    const req = parseAnthropicMessages(parseBody(await request.text()), request.headers.get('x-agent-id'), randomSeed);
    const model = await servedModel(ports.models, req.model);
    const meta = { id: `msg_${randomId()}`, model, ...(req.agentId ? { agentId: req.agentId } : {}) };
    if (!req.stream) {
      const run = runGeneration(ports, req, request.signal);
      return jsonResponse(200, anthropicMessage(await run.done, meta));
    }
    const ev = (e: Record<string, unknown>): Uint8Array => sseEvent(String(e['type']), e);
    return await streamed(ports, req, request.signal, {
      flavor: 'anthropic',
      opening: () => [ev(anthropicEvents.start(meta)), ev(anthropicEvents.blockStart())],
      token: (d) => (d.text === '' ? null : ev(anthropicEvents.delta(d.text))),
      closing: (r) => [ev(anthropicEvents.blockStop()), ev(anthropicEvents.messageDelta(r)), ev(anthropicEvents.stop())],
      failure: (e) => [sseEvent('error', apiError('anthropic', e).body)],
    });
  } catch (error) {
    return errorResponse('anthropic', error);
  }
}

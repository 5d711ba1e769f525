import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type Serving } from '../cli/serve.ts';
import { createEngine } from '../src/client/create-engine.ts';
import type { ChatCompletion, ChatCompletionChunk, MessageStreamEvent } from '../src/client/api-types.ts';
import { InvalidRequestError } from '../src/domain/errors.ts';
import { testGpu } from './gpu/harness.ts';

/**
 * `semantic serve` over real HTTP on loopback: one in-process server (tiny-llama, shared Dawn
 * device) serves every case; the restart case stops it and starts another on the same
 * --cache-dir. The CLI process itself (argument parsing, SIGTERM) runs with SEMANTIC_SERVE_CLI=1.
 */
const ROOT = join(import.meta.dirname, '..');
const MODEL = join(ROOT, 'public', 'models', 'tiny-llama');
const cacheDir = mkdtempSync(join(tmpdir(), 'semantic-serve-'));
let serving: Serving;

async function start(): Promise<Serving> {
  return startServer({ model: MODEL, port: 0, cacheDir, gpu: (await testGpu()).gpu });
}

beforeAll(async () => {
  serving = await start();
});
afterAll(async () => serving?.close());

const chat = (content: string) => [{ role: 'user' as const, content }];

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${serving.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** Server-sent events of a response: [event name or null, parsed data or '[DONE]']. */
async function events(response: Response): Promise<Array<[string | null, unknown]>> {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? null;
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
      return [event, data === '[DONE]' ? data : (JSON.parse(data) as unknown)];
    });
}

describe('semantic serve over HTTP (tiny-llama, WebGPU through Dawn)', () => {
  it('OpenAI: JSON and SSE give the same greedy text; logprobs are the argmax; usage counts cached tokens', async () => {
    const body = { model: 'tiny-llama', messages: chat('ROMEO: But soft'), max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 };
    const json = (await (await post('/v1/chat/completions', body)).json()) as ChatCompletion;
    const content = json.choices[0].logprobs?.content ?? [];
    expect(content).toHaveLength(json.usage.completion_tokens);
    for (const e of content) {
      expect(e.top_logprobs[0].logprob).toBeCloseTo(e.logprob, 6); // greedy: the chosen token is the most likely
      expect(e.bytes).toEqual([...new TextEncoder().encode(e.token)]);
      expect(e.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
    const sse = await events(await post('/v1/chat/completions', { ...body, logprobs: false, top_logprobs: undefined, stream: true, stream_options: { include_usage: true } }));
    expect(sse[sse.length - 1][1]).toBe('[DONE]');
    const chunks = sse.slice(0, -1).map(([, d]) => d as ChatCompletionChunk);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(json.choices[0].message.content);
    expect(chunks[chunks.length - 2].choices[0].finish_reason).toBe(json.choices[0].finish_reason);
    const usage = chunks[chunks.length - 1].usage;
    expect(chunks[chunks.length - 1].choices).toEqual([]);
    // The same prompt again, with no agent: its prefix comes from the prefix index.
    expect(usage?.prompt_tokens).toBe(json.usage.prompt_tokens);
    expect(usage?.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
  });

  it('OpenAI: logit_bias +100 on one token makes it the only choice, a large negative bias bans it', async () => {
    const body = { model: 'tiny-llama', messages: chat('ROMEO: But soft'), max_tokens: 3, temperature: 0, logprobs: true };
    const plain = (await (await post('/v1/chat/completions', body)).json()) as ChatCompletion;
    const first = plain.choices[0].logprobs?.content[0].token;
    const forced = (await (await post('/v1/chat/completions', { ...body, logit_bias: { '300': 100 } })).json()) as ChatCompletion;
    const tokens = forced.choices[0].logprobs?.content ?? [];
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
    expect(tokens[0].token).not.toBe(first);
    for (const t of tokens) expect(t.logprob).toBeGreaterThan(-1e-3);
    const banned = (await (await post('/v1/chat/completions', { ...body, logit_bias: { '300': -100 } })).json()) as ChatCompletion;
    expect(banned.choices[0].logprobs?.content.map((t) => t.token)).not.toContain(tokens[0].token);
    const bad = await post('/v1/chat/completions', { ...body, logit_bias: { '99999999': 1 } });
    expect(bad.status).toBe(400);
  });

  it('Anthropic: the event sequence, and stop_sequences cut the text where the stop string starts', async () => {
    const body = { model: 'tiny-llama', system: 'You are Juliet.', messages: chat('Who is there?'), max_tokens: 10, temperature: 0 };
    const whole = (await (await post('/v1/messages', body)).json()) as { content: Array<{ text: string }>; stop_reason: string };
    const text = whole.content[0].text;
    const at = [...text].findIndex((_, i) => i > 0 && !text.slice(i, i + 2).includes('\uFFFD') && i + 2 <= text.length);
    expect(at, `no clean stop candidate in ${JSON.stringify(text)}`).toBeGreaterThan(0);
    const stop = text.slice(at, at + 2);
    const sse = await events(await post('/v1/messages', { ...body, stream: true, stop_sequences: [stop] }));
    expect(sse.map(([e]) => e)).toEqual(['message_start', 'content_block_start', ...sse.slice(2, -3).map(() => 'content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
    const streamed = sse.filter(([e]) => e === 'content_block_delta').map(([, d]) => (d as { delta: { text: string } }).delta.text).join('');
    expect(streamed).toBe(text.slice(0, text.indexOf(stop)));
    expect(sse[sse.length - 2][1]).toMatchObject({ delta: { stop_reason: 'stop_sequence', stop_sequence: stop } });
  });

  it('two agents streaming at once get the tokens each gets alone', async () => {
    const prompts = ['JULIET: O Romeo, Romeo', 'MERCUTIO: A plague o both'];
    const alone: string[] = [];
    for (const p of prompts) {
      const r = (await (await post('/v1/chat/completions', { model: 'tiny-llama', messages: chat(p), max_tokens: 12, temperature: 0 })).json()) as ChatCompletion;
      alone.push(r.choices[0].message.content);
    }
    const together = await Promise.all(
      prompts.map(async (p, i) => {
        const sse = await events(await post('/v1/chat/completions', { model: 'tiny-llama', messages: chat(p), max_tokens: 12, temperature: 0, stream: true }, { 'X-Agent-Id': `pair-${i}` }));
        return sse.map(([, d]) => (d === '[DONE]' ? '' : ((d as ChatCompletionChunk).choices[0]?.delta.content ?? ''))).join('');
      }),
    );
    expect(together).toEqual(alone);
  });

  it('bad requests get a 4xx with the API\'s error object, and the server stays up', async () => {
    const cases: Array<[string, unknown, number, string]> = [
      ['/v1/chat/completions', '{"model": "tiny-llama", "messages": [', 400, 'body'],
      ['/v1/chat/completions', { model: 'tiny-llama', messages: chat('x'), max_tokens: -1 }, 400, 'max_tokens'],
      ['/v1/chat/completions', { model: 'tiny-llama', messages: [] }, 400, 'messages'],
      ['/v1/chat/completions', { model: 'tiny-llama', messages: chat('x'), n: 2 }, 400, 'n'],
      ['/v1/chat/completions', { model: 'gpt-4o', messages: chat('x') }, 404, 'model'],
    ];
    for (const [path, body, status, param] of cases) {
      const r = await post(path, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(((await r.json()) as { error: { param: string; type: string } }).error).toMatchObject({ param });
    }
    const anthropic = await post('/v1/messages', { model: 'tiny-llama', messages: chat('x') });
    expect(anthropic.status).toBe(400);
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens') } });
    const tooLong = await post('/v1/messages', { model: 'tiny-llama', messages: chat('x'), max_tokens: 1_000_000, stream: true });
    expect(tooLong.status).toBe(400);
    expect((await fetch(`${serving.url}/v1/models`)).status).toBe(200);
  });

  it('a client that aborts mid-stream frees the server for the next request', async () => {
    const abort = new AbortController();
    const r = await fetch(`${serving.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-llama', messages: chat('Speak on'), max_tokens: 400, stream: true }),
      signal: abort.signal,
    });
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    abort.abort();
    const next = (await (await post('/v1/chat/completions', { model: 'tiny-llama', messages: chat('hi'), max_tokens: 2 })).json()) as ChatCompletion;
    expect(next.usage.completion_tokens).toBe(2);
  });

  it('the openai and @anthropic-ai/sdk packages work against the server and against the handler as their fetch', async () => {
    const local = 'http://local';
    for (const [baseURL, fetchOption] of [[serving.url, undefined], [local, serving.handler]] as const) {
      const openai = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'local', ...(fetchOption ? { fetch: fetchOption } : {}) });
      const done = await openai.chat.completions.create({ model: 'tiny-llama', messages: chat('hello'), max_tokens: 4, temperature: 0 });
      expect(done.usage?.completion_tokens).toBeGreaterThan(0);
      const stream = await openai.chat.completions.create({ model: 'tiny-llama', messages: chat('hello'), max_tokens: 4, temperature: 0, stream: true });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      expect(text).toBe(done.choices[0].message.content);
      const anthropic = new Anthropic({ baseURL, apiKey: 'local', ...(fetchOption ? { fetch: fetchOption } : {}) });
      const message = await anthropic.messages.create({ model: 'tiny-llama', max_tokens: 4, messages: chat('hello') });
      const final = await anthropic.messages.stream({ model: 'tiny-llama', max_tokens: 4, messages: chat('hello') }).finalMessage();
      expect(final.content).toEqual(message.content);
      await expect(anthropic.messages.create({ model: 'tiny-llama', max_tokens: -1, messages: chat('x') })).rejects.toMatchObject({ status: 400 });
    }
  });

  it('remote mode: createEngine({ remote }) gives the same API, with typed errors', async () => {
    const engine = await createEngine({ remote: { baseURL: serving.url, apiKey: 'local' } });
    expect((await engine.models.list()).map((m) => m.id)).toEqual(['tiny-llama']);
    const params = { model: 'tiny-llama', messages: chat('ROMEO:'), max_tokens: 6, temperature: 0, agent_id: 'remote-romeo' };
    const done = await engine.chat.completions.create(params);
    let text = '';
    for await (const c of await engine.chat.completions.create({ ...params, stream: true })) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe(done.choices[0].message.content);
    const kinds: string[] = [];
    for await (const e of await engine.messages.create({ model: 'tiny-llama', max_tokens: 3, messages: chat('hi'), stream: true })) kinds.push((e as MessageStreamEvent).type);
    expect(kinds[0]).toBe('message_start');
    expect(kinds[kinds.length - 1]).toBe('message_stop');
    await expect(engine.chat.completions.create({ ...params, max_tokens: -1 })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(engine.messages.create({ model: 'nope', max_tokens: 3, messages: chat('hi') })).rejects.toMatchObject({ name: 'ModelNotFoundError', code: 'MODEL_NOT_FOUND' });
    // Agents are the server's: the one this test talked to is hot there; an unknown one is a typed 404.
    expect(await engine.agents.retrieve('remote-romeo')).toMatchObject({ id: 'remote-romeo', tier: 'hot' });
    await expect(engine.agents.retrieve('nobody')).rejects.toMatchObject({ name: 'AgentNotFoundError', code: 'AGENT_NOT_FOUND' });
    expect(await engine.agents.delete('remote-romeo')).toBe(true);
  });

  it('a restart keeps an agent\'s memory: the next turn reports cached tokens', async () => {
    const first = [{ role: 'user' as const, content: 'Tell me of Verona.' }];
    const turn1 = (await (await post('/v1/chat/completions', { model: 'tiny-llama', messages: first, max_tokens: 6, temperature: 0, agent_id: 'keeper' })).json()) as ChatCompletion;
    await serving.close();
    serving = await start();
    const history = [...first, { role: 'assistant' as const, content: turn1.choices[0].message.content }, { role: 'user' as const, content: 'And of Mantua?' }];
    // The new server knows the agent from its cache folder before any turn.
    expect(await (await fetch(`${serving.url}/v1/agents/keeper`)).json()).toMatchObject({ id: 'keeper', tier: 'cold' });
    const turn2 = (await (await post('/v1/chat/completions', { model: 'tiny-llama', messages: history, max_tokens: 4, agent_id: 'keeper' })).json()) as ChatCompletion;
    expect(turn2.usage.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(turn1.usage.prompt_tokens - 16);
    expect(turn2.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
  });
});

// ~5-12 s (a second model load and warm-up); SEMANTIC_SERVE_GGUF=0 skips it.
describe.runIf(process.env['SEMANTIC_SERVE_GGUF'] !== '0')('semantic serve --model <file.gguf>', () => {
  it('serves a lone GGUF file (tokenizer and template from its metadata) under the file\'s name', async () => {
    const gguf = await startServer({ model: join(ROOT, 'public', 'models', 'gguf', 'tiny-qwen2-q4_0.gguf'), port: 0, gpu: (await testGpu()).gpu });
    try {
      const models = (await (await fetch(`${gguf.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((m) => m.id)).toEqual(['tiny-qwen2-q4_0']);
      const body = { model: 'tiny-qwen2-q4_0', messages: chat('ROMEO: But soft'), max_tokens: 4, temperature: 0 };
      const r = await fetch(`${gguf.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(r.status).toBe(200);
      const done = (await r.json()) as ChatCompletion;
      expect(done.usage.completion_tokens).toBeGreaterThan(0);
      expect(done.usage.prompt_tokens).toBeGreaterThan(0);
    } finally {
      await gguf.close();
    }
  });
});

describe.runIf(process.env['SEMANTIC_SERVE_CLI'] === '1')('the semantic serve process', () => {
  it('listens on loopback, answers, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'semantic.mjs'), 'serve', '--model', MODEL, '--port', '0', '--cache-dir', cacheDir], { cwd: ROOT });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"listening":"([^"]+)"/.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new InvalidRequestError(`serve exited with ${code}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data[0].id).toBe('tiny-llama');
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  }, 120_000);
});

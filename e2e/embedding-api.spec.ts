import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * createEngine in headless Chromium with WebGPU in the worker (tiny-llama): OpenAI- and
 * Anthropic-shaped streams, two agents at once, an abort mid-stream, a typed error on the page,
 * and load progress. One page and one engine (made by the README's example) for the whole file.
 */
type Win = { semanticEngine: any; semanticReady?: boolean; engine: any };

let page: Page;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  await page.goto('/e2e/pages/engine.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
});

test.afterAll(async () => {
  await page.evaluate(() => (window as unknown as Win).engine?.close());
  await page.close();
});

/** The README's embedding example, run as written (imports mapped to the page's modules). */
function readmeExample(): string {
  const block = /```ts embedding-example\n([\s\S]*?)```/.exec(readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8'))?.[1];
  if (!block) throw new TypeError('README.md has no embedding-example block');
  expect(block.trim().split('\n').length).toBeLessThan(15);
  return block
    .replace("import { createEngine } from 'semantic';", 'const { createEngine } = window.semanticEngine;')
    .replace("import OpenAI from 'openai';", 'const { OpenAI } = window.semanticEngine;');
}

test('the README example: createEngine with load progress, a stream, Anthropic\'s shape, the OpenAI SDK', async () => {
  const code = `(async () => {
    const progress = [];
    let rendered = '';
    const showProgress = (p) => progress.push({ ...p });
    const render = (text) => (rendered += text);
    ${readmeExample()}
    window.engine = engine;
    return { progress, rendered, done: done.choices[0].message.content, cached: reply.usage.cache_read_input_tokens, model: engine.model.id };
  })()`;
  const out = (await page.evaluate(code)) as { progress: Array<{ file: string; loadedBytes: number; totalBytes: number }>; rendered: string; done: string; cached: number; model: string };
  expect(out.model).toBe('tiny-llama');
  const weights = out.progress.filter((e) => e.file.endsWith('.safetensors'));
  expect(weights.length).toBeGreaterThan(0);
  expect(weights[weights.length - 1].loadedBytes).toBe(weights[weights.length - 1].totalBytes);
  expect(out.rendered).toBe(out.done);
  expect(out.cached).toBeGreaterThan(0);
});

test('an OpenAI-shaped stream and an Anthropic-shaped stream', async () => {
  const out = await page.evaluate(async () => {
    const engine = (window as unknown as Win).engine;
    const params = { model: 'tiny-llama', messages: [{ role: 'user', content: 'ROMEO: But soft' }], max_tokens: 8, temperature: 0 };
    const whole = await engine.chat.completions.create(params);
    const chunks: any[] = [];
    for await (const c of await engine.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } })) chunks.push(c);
    const events: any[] = [];
    for await (const e of await engine.messages.create({ model: 'tiny-llama', max_tokens: 6, temperature: 0, system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }], stream: true })) events.push(e);
    return { whole, chunks, events };
  });
  const text = out.chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  expect(text).toBe(out.whole.choices[0].message.content);
  expect(out.chunks.length).toBeGreaterThan(3);
  expect(out.chunks[out.chunks.length - 1].usage.prompt_tokens).toBe(out.whole.usage.prompt_tokens);
  expect(out.chunks[out.chunks.length - 1].usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
  const kinds = out.events.map((e) => e.type);
  expect(kinds.slice(0, 2)).toEqual(['message_start', 'content_block_start']);
  expect(kinds.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
  expect(new Set(kinds.slice(2, -3))).toEqual(new Set(['content_block_delta']));
});

test('two agents stream at once with the tokens each gets alone', async () => {
  const out = await page.evaluate(async () => {
    const engine = (window as unknown as Win).engine;
    const ask = (content: string, agent_id: string) => ({ model: 'tiny-llama', messages: [{ role: 'user', content }], max_tokens: 10, temperature: 0, agent_id });
    const prompts = ['JULIET: O Romeo', 'MERCUTIO: A plague'];
    const alone = [];
    for (const [i, p] of prompts.entries()) alone.push((await engine.chat.completions.create(ask(p, `alone-${i}`))).choices[0].message.content);
    const together = await Promise.all(
      prompts.map(async (p, i) => {
        let text = '';
        for await (const c of await engine.chat.completions.create({ ...ask(p, `pair-${i}`), stream: true })) text += c.choices[0]?.delta.content ?? '';
        return text;
      }),
    );
    return { alone, together };
  });
  expect(out.together).toEqual(out.alone);
});

test('an abort mid-stream ends the stream, and the engine serves the next call', async () => {
  const out = await page.evaluate(async () => {
    const engine = (window as unknown as Win).engine;
    const abort = new AbortController();
    const stream = await engine.chat.completions.create(
      { model: 'tiny-llama', messages: [{ role: 'user', content: 'Speak on' }], max_tokens: 300, stream: true },
      { signal: abort.signal },
    );
    let chunks = 0;
    let error = '';
    try {
      for await (const _ of stream) {
        if (++chunks === 2) abort.abort();
      }
    } catch (e) {
      error = (e as Error).name;
    }
    const next = await engine.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    return { chunks, error, next: next.usage.completion_tokens };
  });
  expect(out.error).toBe('AbortError');
  expect(out.chunks).toBeLessThan(300);
  expect(out.next).toBe(2);
});

test('the openai and @anthropic-ai/sdk packages run unchanged with engine.fetch', async () => {
  const out = await page.evaluate(async () => {
    const w = window as unknown as Win;
    const { OpenAI, Anthropic } = w.semanticEngine;
    const openai = new OpenAI({ fetch: w.engine.fetch, baseURL: 'http://local/v1', apiKey: 'local', dangerouslyAllowBrowser: true });
    const params = { model: 'tiny-llama', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5, temperature: 0 };
    const done = await openai.chat.completions.create(params);
    let streamed = '';
    for await (const c of await openai.chat.completions.create({ ...params, stream: true })) streamed += c.choices[0]?.delta.content ?? '';
    const anthropic = new Anthropic({ fetch: w.engine.fetch, baseURL: 'http://local', apiKey: 'local', dangerouslyAllowBrowser: true });
    const message = await anthropic.messages.create({ model: 'tiny-llama', max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] });
    const final = await anthropic.messages.stream({ model: 'tiny-llama', max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] }).finalMessage();
    return { done: done.choices[0].message.content, streamed, message: message.content[0].text, final: final.content[0].text, cached: message.usage.cache_read_input_tokens };
  });
  expect(out.streamed).toBe(out.done);
  expect(out.final).toBe(out.message);
  expect(out.cached).toBeGreaterThan(0);
});

test('an unknown agent is an AgentNotFoundError on the page', async () => {
  const out = await page.evaluate(async () => {
    const w = window as unknown as Win;
    try {
      await w.engine.agents.retrieve('nobody-here');
      return null;
    } catch (e) {
      const err = e as { name: string; code: string };
      return { isClass: e instanceof w.semanticEngine.AgentNotFoundError, name: err.name, code: err.code };
    }
  });
  expect(out).toEqual({ isClass: true, name: 'AgentNotFoundError', code: 'AGENT_NOT_FOUND' });
});

test('the inbound ports over Comlink: engine submit/onToken/step/result/cancel, inference with an abort, UTF-8 deltas', async () => {
  const out = await page.evaluate(async () => {
    const { ports } = (window as unknown as Win).engine;
    const greedy = { temperature: 0 };
    // GenerationEnginePort driven by hand: the page steps the batch.
    const uid = await ports.engine.submit({ agentId: 'port-a', prompt: 'ROMEO: But soft', maxTokens: 6, sampling: greedy });
    const deltas: string[] = [];
    await ports.engine.onToken(uid, (d: { text: string }) => deltas.push(d.text));
    while (await ports.engine.hasPendingWork()) await ports.engine.step();
    const result = await ports.engine.result(uid);
    // A cancel mid-request ends it as cancelled.
    const long = await ports.engine.submit({ agentId: 'port-c', prompt: 'ROMEO: Speak', maxTokens: 200, sampling: greedy });
    await ports.engine.step();
    const cancelled = await ports.engine.cancel(long);
    const ended = await ports.engine.result(long);
    // InferencePort: callback and AbortSignal inside the options object.
    const streamed: string[] = [];
    const viaInference = await ports.inference.generate('port-b', 'ROMEO: But soft', { maxTokens: 6, sampling: greedy, onToken: (d: { text: string }) => streamed.push(d.text) });
    const abort = new AbortController();
    let seen = 0;
    const aborted = await ports.inference.generate('port-d', 'ROMEO: Speak on', {
      maxTokens: 200,
      sampling: greedy,
      signal: abort.signal,
      onToken: () => ++seen === 2 && abort.abort(),
    });
    return { result, deltas, cancelled, ended, viaInference, streamed, aborted };
  });
  expect(out.result.finishReason).not.toBe('error');
  expect(out.result.tokenCount).toBeGreaterThan(0);
  // Deltas as sampled, joined, are the whole text: multi-byte characters are never split.
  expect(out.deltas.join('')).toBe(out.result.text);
  expect(out.streamed.join('')).toBe(out.viaInference.text);
  // Greedy: the hand-stepped engine and the service give the same tokens.
  expect(out.viaInference.tokenIds).toEqual(out.result.tokenIds);
  expect(out.cancelled).toBe(true);
  expect(out.ended.finishReason).toBe('cancelled');
  expect(out.aborted.finishReason).toBe('cancelled');
  expect(out.aborted.tokenIds.length).toBeLessThan(200);
});

test('an unset seed samples at random; an explicit seed reproduces', async () => {
  const out = await page.evaluate(async () => {
    const { ports } = (window as unknown as Win).engine;
    const ask = (agent: string, seed?: number) => ports.inference.generate(agent, 'ROMEO:', { maxTokens: 6, sampling: { temperature: 1.5, ...(seed === undefined ? {} : { seed }) } });
    const unseeded = [];
    for (let i = 0; i < 3; i++) unseeded.push((await ask(`rand-${i}`)).tokenIds.join(','));
    const seeded = [(await ask('seed-a', 7)).tokenIds.join(','), (await ask('seed-b', 7)).tokenIds.join(',')];
    return { unseeded, seeded };
  });
  // 6 tokens at temperature 1.5 from a random-weight model: three equal unseeded runs would mean a fixed seed.
  expect(new Set(out.unseeded).size).toBeGreaterThan(1);
  expect(out.seeded[0]).toBe(out.seeded[1]);
});

test('model management: current, available (embedded, hub, cached), unload', async () => {
  const out = await page.evaluate(async () => {
    const engine = (window as unknown as Win).engine;
    const current = await engine.models.current();
    const available = await engine.models.available();
    await engine.models.unload();
    const after = await engine.models.current();
    const refused = await engine.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }).then(
      () => null,
      (e: { name: string }) => e.name,
    );
    return { current, available, after, refused };
  });
  expect(out.current).toMatchObject({ id: 'tiny-llama', source: '/models/tiny-llama/' });
  expect(out.available).toContainEqual(expect.objectContaining({ id: 'tiny-llama', kind: 'embedded', cached: false }));
  expect(out.available).toContainEqual(expect.objectContaining({ source: 'HuggingFaceTB/SmolLM2-135M-Instruct', kind: 'hub' }));
  expect(out.after).toBeNull();
  expect(out.refused).toBe('ModelNotFoundError');
});

import { describe, expect, it } from 'vitest';
import { apiError } from '../src/adapters/api/api-errors.ts';
import { anthropicEvents, anthropicMessage, parseAnthropicMessages } from '../src/adapters/api/anthropic-messages.ts';
import { openAiChunk, openAiCompletion, parseOpenAiChat } from '../src/adapters/api/openai-chat.ts';
import { parseBody, seedOf } from '../src/adapters/api/request-fields.ts';
import { AgentNotFoundError, InvalidRequestError, PoolExhaustedError } from '../src/domain/errors.ts';
import { tokenLogprob } from '../src/domain/logprobs.ts';
import type { GenerationResult } from '../src/ports/inbound.ts';

const fixed = (): number => 12345;
const user = [{ role: 'user', content: 'hi' }];

function rejects(f: () => unknown, param: string): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidRequestError);
    expect((e as InvalidRequestError).details?.['param']).toBe(param);
    return;
  }
  throw new InvalidRequestError(`expected a rejection of ${param}`);
}

const result = (over: Partial<GenerationResult> = {}): GenerationResult => ({
  agentId: 'a',
  text: 'Hello',
  tokenIds: [1, 2],
  finishReason: 'stop',
  usage: { promptTokens: 10, completionTokens: 2, cachedPromptTokens: 6 },
  timings: { ttftMs: 1, totalMs: 2 },
  ...over,
});

describe('OpenAI chat.completions request translation', () => {
  it('maps every supported field to the neutral request', () => {
    const req = parseOpenAiChat(
      {
        model: 'm',
        messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }],
        max_completion_tokens: 7,
        max_tokens: 99,
        temperature: 0.5,
        top_p: 0.9,
        seed: -1,
        stop: 'END',
        logprobs: true,
        top_logprobs: 3,
        logit_bias: { '5': -100, '7': 2.5 },
        presence_penalty: 0.5,
        stream: true,
        stream_options: { include_usage: true },
        agent_id: 'romeo',
      },
      null,
      fixed,
    );
    expect(req).toMatchObject({
      model: 'm',
      agentId: 'romeo',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'ab' }],
      maxTokens: 7,
      temperature: 0.5,
      topP: 0.9,
      seed: 2 ** 32 - 1,
      stop: ['END'],
      logprobs: 3,
      presencePenalty: 0.5,
      stream: true,
      includeUsage: true,
    });
    expect(req.logitBias).toEqual([[5, -100], [7, 2.5]]);
  });

  it('an unset seed is drawn at random; the header names the agent when the body does not', () => {
    const req = parseOpenAiChat({ messages: user }, 'juliet', fixed);
    expect(req.seed).toBe(12345);
    expect(req.agentId).toBe('juliet');
    expect(req.logprobs).toBeUndefined();
    expect(seedOf(undefined, () => 2 ** 32 + 5)).toBe(5);
    expect(seedOf(42, fixed)).toBe(42);
  });

  it('refuses malformed requests, naming the field', () => {
    rejects(() => parseBody('{"messages": ['), 'body');
    rejects(() => parseBody('[1]'), 'body');
    rejects(() => parseOpenAiChat({ messages: [] }, null, fixed), 'messages');
    rejects(() => parseOpenAiChat({ messages: user, max_tokens: -1 }, null, fixed), 'max_tokens');
    rejects(() => parseOpenAiChat({ messages: user, max_completion_tokens: 0 }, null, fixed), 'max_completion_tokens');
    rejects(() => parseOpenAiChat({ messages: user, n: 2 }, null, fixed), 'n');
    rejects(() => parseOpenAiChat({ messages: user, temperature: 3 }, null, fixed), 'temperature');
    rejects(() => parseOpenAiChat({ messages: user, top_logprobs: 2 }, null, fixed), 'top_logprobs');
    rejects(() => parseOpenAiChat({ messages: user, logprobs: true, top_logprobs: 21 }, null, fixed), 'top_logprobs');
    rejects(() => parseOpenAiChat({ messages: user, logit_bias: { x: 1 } }, null, fixed), 'logit_bias');
    rejects(() => parseOpenAiChat({ messages: user, stop: ['a', 'b', 'c', 'd', 'e'] }, null, fixed), 'stop');
    rejects(() => parseOpenAiChat({ messages: [{ role: 'wizard', content: 'x' }] }, null, fixed), 'messages[0].role');
    rejects(() => parseOpenAiChat({ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, null, fixed), 'messages[0].content[0]');
    rejects(() => parseOpenAiChat({ messages: user, agent_id: '../etc' }, null, fixed), 'agent_id');
    rejects(() => parseOpenAiChat({ messages: user, stream_options: { include_usage: true } }, null, fixed), 'stream_options');
  });
});

describe('Anthropic messages request translation', () => {
  it('puts the system prompt first and requires max_tokens', () => {
    const req = parseAnthropicMessages(
      { model: 'm', system: [{ type: 'text', text: 'sys' }], messages: user, max_tokens: 5, stop_sequences: ['\n\n'], temperature: 0, top_k: 4 },
      null,
      fixed,
    );
    expect(req).toMatchObject({ messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'hi' }], maxTokens: 5, stop: ['\n\n'], temperature: 0, topK: 4, seed: 12345 });
    rejects(() => parseAnthropicMessages({ messages: user }, null, fixed), 'max_tokens');
    rejects(() => parseAnthropicMessages({ messages: user, max_tokens: -3 }, null, fixed), 'max_tokens');
    rejects(() => parseAnthropicMessages({ messages: [{ role: 'system', content: 'x' }], max_tokens: 3 }, null, fixed), 'messages.0.role');
    rejects(() => parseAnthropicMessages({ messages: user, max_tokens: 3, temperature: 1.5 }, null, fixed), 'temperature');
  });
});

describe('responses', () => {
  it('OpenAI: usage carries cached tokens; logprobs entries carry token, logprob and bytes', () => {
    const row = Float32Array.from([0, 1, 2, 3]);
    const lp = tokenLogprob(row, 2, 2, (id) => ['a', 'é', 'c', 'd'][id]);
    const norm = Math.log(Math.exp(0) + Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(lp.logprob).toBeCloseTo(2 - norm, 6);
    expect(lp.top.map((t) => t.tokenId)).toEqual([3, 2]);
    const body = openAiCompletion(result({ logprobs: [{ ...lp, token: 'é' }] }), { id: 'x', created: 1, model: 'm' }, true) as {
      choices: Array<{ logprobs: { content: Array<{ token: string; logprob: number; bytes: number[]; top_logprobs: unknown[] }> }; finish_reason: string }>;
      usage: Record<string, unknown>;
    };
    expect(body.usage).toEqual({ prompt_tokens: 10, completion_tokens: 2, total_tokens: 12, prompt_tokens_details: { cached_tokens: 6 } });
    expect(body.choices[0].logprobs.content[0]).toMatchObject({ token: 'é', bytes: [0xc3, 0xa9] });
    expect(body.choices[0].logprobs.content[0].top_logprobs).toHaveLength(2);
    expect(body.choices[0].finish_reason).toBe('stop');
    expect(openAiChunk({ id: 'x', created: 1, model: 'm' }, null, { total_tokens: 1 })).toMatchObject({ choices: [], usage: { total_tokens: 1 } });
  });

  it('Anthropic: stop reasons, stop_sequence, and input tokens net of cache reads', () => {
    const meta = { id: 'msg_1', model: 'm' };
    expect(anthropicMessage(result(), meta)).toMatchObject({
      type: 'message',
      stop_reason: 'end_turn',
      stop_sequence: null,
      content: [{ type: 'text', text: 'Hello' }],
      usage: { input_tokens: 4, output_tokens: 2, cache_read_input_tokens: 6 },
    });
    expect(anthropicMessage(result({ stopSequence: 'END' }), meta)).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    expect(anthropicMessage(result({ finishReason: 'length' }), meta)).toMatchObject({ stop_reason: 'max_tokens' });
    expect(anthropicEvents.messageDelta(result())).toMatchObject({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { cache_read_input_tokens: 6 } });
  });

  it('errors use each API\'s object and status', () => {
    const bad = new InvalidRequestError('max_tokens: must be positive', { param: 'max_tokens' });
    expect(apiError('openai', bad)).toEqual({ status: 400, body: { error: { message: bad.message, type: 'invalid_request_error', param: 'max_tokens', code: 'invalid_request' } } });
    expect(apiError('anthropic', bad)).toEqual({ status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: bad.message, code: 'invalid_request' } } });
    expect(apiError('openai', new AgentNotFoundError('no agent')).status).toBe(404);
    expect(apiError('anthropic', new PoolExhaustedError('full')).body).toMatchObject({ error: { type: 'overloaded_error' } });
    expect(apiError('openai', new TypeError('boom')).status).toBe(500);
  });
});

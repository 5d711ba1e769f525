import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BlockPoolBatchEngine, type EngineOptions } from '../../src/application/block-pool-batch-engine.ts';
import type { CompletedGeneration } from '../../src/domain/values.ts';
import type { SubmitRequest } from '../../src/ports/inbound.ts';
import type { TokenizerPort } from '../../src/ports/outbound.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../../src/adapters/tokenizer/index.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { testGpu } from './harness.ts';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { generateBatch } from './lockstep.ts';

/** The batch engine on the real WebGPU backend (Dawn + SwiftShader) with the tiny Llama fixture. */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
const DIR = join(MODELS, 'tiny-llama');

let backend: WebGpuBackend;
let small: WebGpuBackend;
let tokenizer: HfTokenizer;

beforeAll(async () => {
  const t = await testGpu();
  const files = new FsModelSource(DIR);
  tokenizer = await HfTokenizer.load({ modelId: 'tiny-llama', localModelPath: MODELS, files });
  backend = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 4 * 1024 * 1024 });
  // 12 blocks of 16 tokens (4 KiB each with the default f16 KV): too small for four 60-token requests at once.
  small = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 12 * 4096 });
  expect(small.totalBlocks).toBe(12);
});

afterAll(() => {
  backend.dispose();
  small.dispose();
});

function ids(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 97 + i * 31 + ((i * i) % 11)) % 500);
}

function engine(options: EngineOptions = {}, tok: TokenizerPort = tokenizer, b: WebGpuBackend = backend): BlockPoolBatchEngine {
  return new BlockPoolBatchEngine(b, tok, options);
}

/** Submit each request at its join step, step until all finish; results in request order. */
async function runStaggered(e: BlockPoolBatchEngine, reqs: ReadonlyArray<{ req: SubmitRequest; joinAt: number }>): Promise<CompletedGeneration[]> {
  const uids: string[] = new Array(reqs.length);
  const done = new Map<string, CompletedGeneration>();
  for (let step = 0; done.size < reqs.length; step++) {
    for (const [i, r] of reqs.entries()) if (r.joinAt === step) uids[i] = await e.submit(r.req);
    for (const g of await e.step()) done.set(g.uid, g);
    if (step > 10_000) throw new Error('engine did not finish');
  }
  return uids.map((u) => done.get(u) as CompletedGeneration);
}

async function alone(req: SubmitRequest, b: WebGpuBackend = backend): Promise<CompletedGeneration> {
  return (await runStaggered(engine({}, tokenizer, b), [{ req, joinAt: 0 }]))[0];
}

describe('BlockPoolBatchEngine on WebGPU', () => {
  it('8 agents joining at staggered steps decode the same greedy tokens as each alone', async () => {
    const joins = [0, 0, 1, 2, 3, 5, 8, 13];
    const reqs = joins.map((joinAt, i) => ({ joinAt, req: { agentId: `a${i}`, promptIds: ids(i + 1, 6 + 5 * i), maxTokens: 12 } }));
    const e = engine({ maxBatchTokens: 32, maxPrefillChunk: 16 });
    const together = await runStaggered(e, reqs);
    for (const [i, r] of reqs.entries()) {
      const solo = await alone(r.req);
      expect(together[i].tokenIds, `agent ${i}`).toEqual(solo.tokenIds);
    }
    expect(e.stats().steps).toBeGreaterThan(12);
  });

  it('16 agents sharing a 200-token system prompt hold its blocks once and prefill only their suffix', async () => {
    const system = ids(42, 200);
    const e = engine({ maxBatchTokens: 512, maxPrefillChunk: 256 });
    const first = await runStaggered(e, [{ joinAt: 0, req: { agentId: 'sys-0', promptIds: [...system, ...ids(1, 10)], maxTokens: 4 } }]);
    expect(first[0].finishReason).toBe('length');
    const uids: string[] = [];
    for (let i = 1; i < 16; i++) uids.push(await e.submit({ agentId: `sys-${i}`, promptIds: [...system, ...ids(100 + i, 10)], maxTokens: 4 }));
    await e.step();
    const stats = e.stats().pool;
    const sharedBlocks = Math.floor(200 / 16);
    // 16 owners (agent 0's cache + 15 running) of the 12 prefix blocks, counted once in the pool.
    expect(stats.sharedBlocks).toBeGreaterThanOrEqual(sharedBlocks);
    expect(stats.usedBlocks).toBeLessThanOrEqual(sharedBlocks + 16 * 2);
    expect(stats.logicalBlocks - stats.usedBlocks).toBeGreaterThanOrEqual(15 * sharedBlocks);
    for (const uid of uids) expect(e.accounting(uid)).toEqual({ prefillReused: sharedBlocks * 16, prefillComputed: 210 - sharedBlocks * 16 });
    while (e.hasPendingWork()) await e.step();
  });

  it('preempts under pool pressure; every request completes with the tokens it has without pressure', async () => {
    const reqs = [0, 1, 2, 3].map((i) => ({ joinAt: 0, req: { agentId: `p${i}`, promptIds: ids(7 + i, 30), maxTokens: 30 } }));
    const e = engine({}, tokenizer, small);
    const pressured = await runStaggered(e, reqs);
    expect(e.stats().preemptions).toBeGreaterThan(0);
    for (const [i, r] of reqs.entries()) {
      expect(pressured[i].finishReason).not.toBe('error');
      expect(pressured[i].tokenIds).toEqual((await alone(r.req)).tokenIds);
    }
  });

  it('with a cache store, preempted requests resume from a KV snapshot instead of recomputing', async () => {
    const { AgentCacheStore } = await import('../../src/application/agent-cache-store.ts');
    const { RestoreCostModel } = await import('../../src/application/cache/cost-model.ts');
    const { safetensorsBlobCodec } = await import('../../src/adapters/safetensors/blob-codec.ts');
    const reqs = [0, 1, 2, 3].map((i) => ({ joinAt: 0, req: { agentId: `q${i}`, promptIds: ids(7 + i, 30), maxTokens: 30 } }));
    const e = engine({}, tokenizer, small);
    new AgentCacheStore(e, small, safetensorsBlobCodec, null, { costModel: new RestoreCostModel({ prefillTokensPerSecond: 1, restoreMegabytesPerSecond: 1e6 }) });
    const pressured = await runStaggered(e, reqs);
    expect(e.stats().preemptions).toBeGreaterThan(0);
    expect(e.stats().resumedFromSnapshot).toBeGreaterThan(0);
    for (const [i, r] of reqs.entries()) expect(pressured[i].tokenIds).toEqual((await alone(r.req)).tokenIds);
  });

  it('refuses a request that cannot fit even alone with PoolExhaustedError', async () => {
    await expect(engine({}, tokenizer, small).submit({ agentId: 'big', promptIds: ids(1, 150), maxTokens: 100 })).rejects.toMatchObject({ name: 'PoolExhaustedError' });
  });

  it('max tokens, EOS, stop strings and cancel end with the right reason and free their blocks', async () => {
    const req = { agentId: 'f', promptIds: ids(3, 12), maxTokens: 16 };
    const base = await alone(req);
    expect(base.finishReason).toBe('length');
    expect(base.tokenIds).toHaveLength(16);

    // EOS: make the 5th greedy token the end-of-sequence id.
    const eosTok: TokenizerPort = { ...bind(tokenizer), eosTokenIds: () => [base.tokenIds[4]] };
    const eos = await runStaggered(engine({}, eosTok), [{ joinAt: 0, req }]);
    expect(eos[0].finishReason).toBe('stop');
    expect(eos[0].tokenIds).toEqual(base.tokenIds.slice(0, base.tokenIds.indexOf(base.tokenIds[4]) + 1));

    // Stop string: a piece of the text greedy decoding produces; the output stops before it.
    const stop = base.text.slice(6, 9);
    const e = engine();
    const streamed: string[] = [];
    const uid = await e.submit({ ...req, stop: [stop] });
    e.onToken(uid, (d) => streamed.push(d.text));
    let stopped: CompletedGeneration | undefined;
    while (!stopped) stopped = (await e.step()).find((g) => g.uid === uid);
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(base.text.slice(0, base.text.indexOf(stop)));
    expect(streamed.join('')).toBe(stopped.text);

    // Cancel mid-decode frees every block the request held.
    const c = engine();
    const before = c.stats().pool.usedBlocks;
    const cu = await c.submit({ ...req, agentId: 'c' });
    await c.step();
    await c.step();
    expect(c.stats().pool.usedBlocks).toBeGreaterThan(before);
    expect(await c.cancel(cu)).toBe(true);
    const [cancelled] = await c.step();
    expect(cancelled).toMatchObject({ uid: cu, finishReason: 'cancelled' });
    expect(c.stats().pool.usedBlocks).toBe(before);

    // The finished requests' blocks are held only by their agents' caches, and freed with them.
    expect(e.stats().pool.usedBlocks).toBeGreaterThan(0);
    e.dropAgent('f');
    expect(e.stats().pool.usedBlocks).toBe(0);
  });

  it('32 concurrent requests complete; deleting every agent returns the pool to its starting free count', async () => {
    const e = engine({ maxBatchTokens: 256, maxRunning: 32 });
    const start = e.stats().pool.freeBlocks;
    const reqs = Array.from({ length: 32 }, (_, i) => ({ joinAt: i % 3, req: { agentId: `m${i}`, promptIds: ids(200 + i, 8 + (i % 5)), maxTokens: 6 } }));
    const results = await runStaggered(e, reqs);
    expect(results.every((r) => r.finishReason === 'length' || r.finishReason === 'stop')).toBe(true);
    for (let i = 0; i < 32; i++) e.dropAgent(`m${i}`);
    expect(e.stats().pool.freeBlocks).toBe(start);
    expect(e.stats().pool.usedBlocks).toBe(0);
  });

  it("an agent's next turn that extends its context prefills only the new tokens, with the same tokens as from scratch", async () => {
    const e = engine();
    const prompt = ids(9, 21);
    const [turn1] = await runStaggered(e, [{ joinAt: 0, req: { agentId: 'chat', promptIds: prompt, maxTokens: 7 } }]);
    const next = [...prompt, ...turn1.tokenIds, ...ids(77, 9)];
    const uid = await e.submit({ agentId: 'chat', promptIds: next, maxTokens: 8 });
    let turn2: CompletedGeneration | undefined;
    while (!turn2) turn2 = (await e.step()).find((g) => g.uid === uid);
    // Everything but the last generated token (whose KV was never computed) is reused.
    const reused = prompt.length + turn1.tokenIds.length - 1;
    expect(e.accounting(uid)).toEqual({ prefillReused: reused, prefillComputed: next.length - reused });
    expect(turn2.tokenIds).toEqual((await alone({ agentId: 'fresh', promptIds: next, maxTokens: 8 })).tokenIds);
  });

  it('validates requests at submit time with InvalidRequestError', async () => {
    const e = engine();
    await expect(e.submit({ agentId: 'x', promptIds: [1], sampling: { temperature: -1 } })).rejects.toMatchObject({ name: 'InvalidRequestError' });
    await expect(e.submit({ agentId: 'bad id!', promptIds: [1] })).rejects.toMatchObject({ name: 'InvalidRequestError' });
    await expect(e.submit({ agentId: 'x', promptIds: [1], maxTokens: 0 })).rejects.toMatchObject({ name: 'InvalidRequestError' });
    await expect(e.submit({ agentId: 'x', promptIds: [100000] })).rejects.toMatchObject({ name: 'InvalidRequestError' });
  });
});

/** A TokenizerPort's methods bound to it, so a test can override one of them. */
function bind(t: TokenizerPort): TokenizerPort {
  return {
    encode: t.encode.bind(t),
    decode: t.decode.bind(t),
    eosTokenIds: t.eosTokenIds.bind(t),
    vocabSize: t.vocabSize.bind(t),
    renderChat: t.renderChat.bind(t),
    applyChatTemplate: t.applyChatTemplate.bind(t),
  };
}

function logSoftmax(row: Float32Array): Float64Array {
  const max = Math.max(...row);
  const norm = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
  return Float64Array.from(row, (v) => v - norm);
}

describe('engine logprobs', () => {
  /**
   * The engine's logprobs (logits read back, log-softmax on the host, another request sharing
   * the batch) against the log-softmax of each step's logits from a lone run on the same backend
   * (whose logits the kernel tests hold to the CPU reference). Tolerance 1e-4.
   */
  it('equal the log-softmax of the step logits for the chosen and the top tokens, in a batch', async () => {
    const promptIds = tokenizer.encodePrompt('ROMEO:\nBut soft, what light');
    const steps = 6;
    const [lone] = await generateBatch(backend, new BlockPool(backend.totalBlocks), [{ promptIds, maxTokens: steps }], { returnLogits: true });
    const e = engine();
    const other = e.generate({ agentId: 'other', promptIds: [5, 6, 7, 8, 9], maxTokens: 8 });
    const got = await e.generate({ agentId: 'lp', promptIds, maxTokens: steps, logprobs: 3 });
    await other;
    expect(got.tokenIds).toEqual(lone.tokens);
    expect(got.logprobs).toHaveLength(steps);
    got.logprobs?.forEach((entry, i) => {
      const ref = logSoftmax(lone.logits[i]);
      expect(entry.tokenId).toBe(lone.tokens[i]);
      expect(Math.abs(entry.logprob - ref[entry.tokenId])).toBeLessThanOrEqual(1e-4);
      expect(entry.top.map((t) => t.tokenId)[0]).toBe(entry.tokenId); // greedy: the chosen token is the most likely
      expect(entry.top).toHaveLength(3);
      for (const t of entry.top) expect(Math.abs(t.logprob - ref[t.tokenId])).toBeLessThanOrEqual(1e-4);
      expect(entry.top[1].logprob).toBeLessThanOrEqual(entry.top[0].logprob);
    });
    expect((await e.generate({ agentId: 'none', promptIds, maxTokens: 2 })).logprobs).toBeUndefined();
    await expect(e.submit({ agentId: 'bad', promptIds, logprobs: 21 })).rejects.toMatchObject({ name: 'InvalidRequestError' });
    e.reset();
  });
});

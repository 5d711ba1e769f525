import { expect, test, type Page } from '@playwright/test';
import { join } from 'node:path';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { loadCpuModel } from '../src/adapters/cpu/index.ts';

/**
 * Foundation in a real browser: the tiny models load inside a real Web Worker over real Comlink,
 * the tokenizer comes from @huggingface/transformers with no network, the worker sees WebGPU,
 * and typed errors cross the boundary. Expected values are computed here in Node, not written down.
 */
const FIXTURES = ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'];
const MODELS = join(import.meta.dirname, '..', 'public', 'models');
const PROMPT = 'ROMEO:\nBut soft, what light through yonder window breaks?';

async function openHarness(page: Page, offsite: string[]): Promise<void> {
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.hostname === 'localhost') return route.continue();
    offsite.push(url.href);
    return route.abort();
  });
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as { semanticReady?: boolean }).semanticReady === true);
}

test('the worker sees a real WebGPU adapter', async ({ page }) => {
  const offsite: string[] = [];
  await openHarness(page, offsite);
  const info = await page.evaluate(() => (window as any).semantic.client.gpuInfo());
  expect(info.available).toBe(true);
  expect(typeof info.vendor).toBe('string');
});

for (const id of FIXTURES) {
  test(`${id}: tokenizer, and WebGPU generation in the worker, match the Node CPU reference`, async ({ page }) => {
    const files = new FsModelSource(join(MODELS, id));
    const tokenizer = await HfTokenizer.load({ modelId: id, localModelPath: MODELS, files });
    // The worker's KV pool is f16 (the default): the reference rounds K/V the same way.
    const { model } = await loadCpuModel(files, { kvDtype: 'f16' });
    const chat = [
      { role: 'system' as const, content: 'You are a player.' },
      { role: 'user' as const, content: 'Speak the speech, I pray you.' },
    ];
    const expectedIds = tokenizer.encode(PROMPT);
    // A text prompt gets the specials its tokenizer config asks for (tiny-llama: BOS).
    const promptIds = tokenizer.encodePrompt(PROMPT);
    const expectedChat = { text: tokenizer.renderChat(chat), ids: tokenizer.applyChatTemplate(chat) };
    const expected = model.generateGreedy(promptIds, 12, { eosTokenIds: tokenizer.eosTokenIds() });
    const expectedTokens = expected.tokens;
    const parity = model.generateGreedy(promptIds, 33, { eosTokenIds: [] });

    const offsite: string[] = [];
    await openHarness(page, offsite);
    const got = await page.evaluate(
      async ({ id, prompt, chat }) => {
        const client = (window as any).semantic.client;
        const info = await client.loadModel({ id, source: `/models/${id}/` });
        const ids = await client.tokenize(prompt);
        const text = await client.detokenize(ids);
        const rendered = await client.renderChat(chat);
        const streamed: number[] = [];
        const reply = await client.generate({ text: prompt }, 12, (t: number) => streamed.push(t));
        const withLogits = await client.generate({ text: prompt }, 33, undefined, { returnLogits: true, ignoreEos: true });
        const logits = withLogits.logits.map((l: Float32Array) => Array.from(l));
        return { info, ids, text, rendered, reply, streamed, parityTokens: withLogits.tokenIds, logits };
      },
      { id, prompt: PROMPT, chat },
    );
    expect(got.info.id).toBe(id);
    expect(got.ids).toEqual(expectedIds);
    expect(got.text).toBe(PROMPT);
    expect(got.rendered).toEqual(expectedChat);
    expect(got.reply.promptIds).toEqual(promptIds);
    // Greedy tokens must agree up to the first step where the reference's top-2 logits are
    // closer than the logit tolerance (a near tie, which f16 KV rounding may flip either way);
    // past it the contexts differ. At least 4 steps are always compared.
    const agreed = stepsBeforeTie(parity.logits, 1e-3);
    expect(agreed).toBeGreaterThanOrEqual(4);
    const upTo = (ids: readonly number[], n: number): number[] => ids.slice(0, Math.min(n, ids.length));
    expect(upTo(got.reply.tokenIds, agreed)).toEqual(upTo(expectedTokens, agreed));
    expect(got.streamed).toEqual(got.reply.tokenIds);
    // WebGPU (SwiftShader) in the Worker vs the CPU reference: prefill + 32 decode steps.
    expect(upTo(got.parityTokens, agreed)).toEqual(upTo(parity.tokens, agreed));
    const rows = got.logits.slice(0, agreed + 1);
    const maxErr = Math.max(...rows.map((row: number[], i: number) => Math.max(...row.map((v, j) => Math.abs(v - parity.logits[i][j])))));
    expect(maxErr).toBeLessThanOrEqual(1e-3);
    expect(offsite).toEqual([]);
  });
}

test("AutoTokenizer loads every fixture's tokenizer in the page from local files, with remote models off", async ({ page }) => {
  const offsite: string[] = [];
  await openHarness(page, offsite);
  for (const id of FIXTURES) {
    const tokenizer = await HfTokenizer.load({ modelId: id, localModelPath: MODELS, files: new FsModelSource(join(MODELS, id)) });
    const got = await page.evaluate(
      async ({ id, prompt }) => {
        const t = await (window as any).semantic.HfTokenizer.load({ modelId: id, localModelPath: '/models/' });
        return { ids: t.encode(prompt), eos: t.eosTokenIds() };
      },
      { id, prompt: PROMPT },
    );
    expect(got.ids).toEqual(tokenizer.encode(PROMPT));
  }
  expect(offsite).toEqual([]);
});

test('typed errors keep name, code and class across the worker boundary', async ({ page }) => {
  const offsite: string[] = [];
  await openHarness(page, offsite);
  const errors = await page.evaluate(async () => {
    const { client, SemanticError, ModelNotFoundError } = (window as any).semantic;
    const capture = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
        return null;
      } catch (e: any) {
        return { name: e.name, code: e.code, message: e.message, typed: e instanceof SemanticError, notFound: e instanceof ModelNotFoundError, details: e.details };
      }
    };
    return {
      noModel: await capture(() => client.tokenize('x')),
      missing: await capture(() => client.loadModel({ id: 'nope', source: '/models/does-not-exist/' })),
      badArgs: await (async () => {
        await client.loadModel({ id: 'tiny-llama', source: '/models/tiny-llama/' });
        return capture(() => client.generate({ ids: [1, 99999] }, 4));
      })(),
    };
  });
  expect(errors.noModel).toMatchObject({ name: 'ModelNotFoundError', code: 'MODEL_NOT_FOUND', typed: true, notFound: true });
  expect(errors.missing).toMatchObject({ name: 'ModelNotFoundError', code: 'MODEL_NOT_FOUND', typed: true });
  expect(errors.missing?.details).toMatchObject({ status: 404 });
  expect(errors.badArgs).toMatchObject({ name: 'InvalidRequestError', code: 'INVALID_REQUEST', typed: true, notFound: false });
});

/** Steps whose reference top-2 logit gap exceeds `tol` before the first near tie (all if none). */
function stepsBeforeTie(logits: readonly ArrayLike<number>[], tol: number): number {
  for (let i = 0; i < logits.length; i++) {
    let a = -Infinity;
    let b = -Infinity;
    for (const v of Array.from(logits[i])) {
      if (v > a) [a, b] = [v, a];
      else if (v > b) b = v;
    }
    if (a - b <= tol) return i;
  }
  return logits.length;
}


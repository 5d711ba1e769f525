import { expect, test, type Page } from '@playwright/test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Agent memory in a real browser: real IndexedDB, a real Worker, real page reloads.
 * Each test uses its own database so runs cannot see each other.
 */
type Win = { semantic: any; semanticReady?: boolean };
const PROMPT = Array.from({ length: 48 }, (_, i) => (i * 37 + 5) % 500);
/** A longer context for the reload test, so TTFT compares a real prefill with a restore. */
const LONG_PROMPT = Array.from({ length: 400 }, (_, i) => (i * 37 + 5) % 500);
const MORE = [11, 12, 13, 14, 15, 16, 17];

async function open(page: Page): Promise<void> {
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
}

async function load(page: Page, model: string, dbName: string): Promise<void> {
  await page.evaluate(
    ({ model, dbName }) => (window as unknown as Win).semantic.client.loadModel({ id: model, source: `/models/${model}/` }, undefined, { dbName, quantization: 'none' }),
    { model, dbName },
  );
}

test('an agent evicted to IndexedDB resumes after a page reload with the reply it gives without eviction', async ({ page }, info) => {
  const db = `e2e-reload-${Date.now()}`;
  await open(page);
  await load(page, 'tiny-llama', db);
  const before = await page.evaluate(
    async ({ prompt, more }) => {
      const c = (window as unknown as Win).semantic.client;
      const first = await c.agentGenerate('romeo', { ids: prompt }, 8);
      // Reference agent: the same two turns, never evicted.
      const refFirst = await c.agentGenerate('ref', { ids: prompt }, 8);
      const next = [...prompt, ...first.tokenIds, ...more];
      const expected = await c.agentGenerate('ref', { ids: next }, 10);
      const tiers = [await c.evictAgent('romeo'), await c.evictAgent('romeo')];
      await c.persistAll();
      return { first, refFirst, next, expected, tiers };
    },
    { prompt: LONG_PROMPT, more: MORE },
  );
  expect(before.refFirst.tokenIds).toEqual(before.first.tokenIds);
  expect(before.tiers).toEqual(['warm', 'cold']);

  await page.reload();
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await load(page, 'tiny-llama', db);
  const after = await page.evaluate(
    async ({ next }) => {
      const c = (window as unknown as Win).semantic.client;
      const tier = await c.agentTier('romeo');
      // Warm up the pipelines so TTFT compares restore with prefill, not shader compilation.
      await c.agentGenerate('warmup', { ids: [1, 2, 3] }, 2);
      // Recompute first: once romeo is restored its full blocks are indexed and would be shared.
      const cold = await c.agentGenerate('no-cache', { ids: next }, 10);
      const restored = await c.agentGenerate('romeo', { ids: next }, 10);
      return { tier, restored, cold };
    },
    { next: before.next },
  );
  expect(after.tier).toBe('cold');
  expect(after.restored.tokenIds).toEqual(before.expected.tokenIds);
  expect(after.restored.restoredFrom).toBe('cold');
  const skipped = LONG_PROMPT.length + before.first.tokenIds.length - 1;
  expect(after.restored.cachedPromptTokens).toBe(skipped);
  expect(after.cold.cachedPromptTokens).toBe(0);
  expect(after.cold.tokenIds).toEqual(after.restored.tokenIds);
  const report = {
    contextTokens: before.next.length,
    prefillTokensSkipped: skipped,
    ttftRestoredMs: after.restored.ttftMs,
    ttftRecomputedMs: after.cold.ttftMs,
    recomputedOverRestored: after.cold.ttftMs / after.restored.ttftMs,
    adapter: 'SwiftShader (headless Chromium)',
  };
  console.log(`[agent-memory] ${JSON.stringify(report)}`);
  mkdirSync('test-results', { recursive: true });
  writeFileSync(join('test-results', 'agent-memory-reload.json'), JSON.stringify(report, null, 2));
  await info.attach('reload-report', { body: JSON.stringify(report), contentType: 'application/json' });
});

test('a worker killed in the middle of a large save leaves the old cache or the new one; a torn blob is refused', async ({ page }) => {
  const db = `e2e-kill-${Date.now()}`;
  await open(page);
  await load(page, 'tiny-llama', db);
  const old = await page.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    const first = await c.agentGenerate('kill', { ids: prompt }, 6);
    await c.persistAll();
    const stored = (await c.listStoredAgents()).find((a: { agentId: string }) => a.agentId === 'kill');
    // Start a ~20 MB save (80,000 tokens of f16 KV) and terminate the worker while IndexedDB writes it.
    const bytes = await c.debugStartLargeSave('kill', 80000);
    c.terminate();
    return { first, stored, bytes };
  }, { prompt: PROMPT });
  expect(old.bytes).toBeGreaterThan(10 * 1024 * 1024);

  await page.reload();
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await load(page, 'tiny-llama', db);
  const after = await page.evaluate(async ({ db }) => {
    const s = (window as unknown as Win).semantic;
    const stored = (await s.client.listStoredAgents()).find((a: { agentId: string }) => a.agentId === 'kill');
    const raw = await s.rawBlob(db, 'kill');
    const meta = s.readAgentBlobMeta(raw);
    return { stored, tokens: meta.tokens, byteLength: raw.byteLength };
  }, { db });
  console.log(`[agent-memory] after kill: stored blob has ${after.tokens} tokens (old ${old.stored.tokenCount}, new 80000)`);
  // Either the whole old pair or the whole new pair: record and blob agree.
  expect([old.stored.tokenCount, 80000]).toContain(after.tokens);
  expect(after.stored.tokenCount).toBe(after.tokens);
  expect(after.stored.bytes).toBe(after.byteLength);

  // Tear the stored blob by hand: the next turn refuses it with CacheCorruptError and recomputes.
  const torn = await page.evaluate(async ({ db, prompt, first }) => {
    const s = (window as unknown as Win).semantic;
    await s.rawBlob(db, 'kill', (bytes: Uint8Array) => bytes.subarray(0, Math.floor(bytes.length / 2)));
    let direct: { name: string; code: string } | null = null;
    try {
      s.readAgentBlobMeta(await s.rawBlob(db, 'kill'));
    } catch (e: any) {
      direct = { name: e.name, code: e.code };
    }
    const reply = await s.client.agentGenerate('kill', { ids: [...prompt, ...first.tokenIds, 9] }, 4);
    return { direct, reply };
  }, { db, prompt: PROMPT, first: old.first });
  expect(torn.direct).toEqual({ name: 'CacheCorruptError', code: 'CACHE_CORRUPT' });
  expect(torn.reply.refused).toMatchObject({ name: 'CacheCorruptError', code: 'CACHE_CORRUPT' });
  expect(torn.reply.cachedPromptTokens).toBe(0);
});

test('after a model change, agents of both models keep their own blobs side by side', async ({ page }) => {
  test.setTimeout(300_000); // three model loads
  const db = `e2e-model-${Date.now()}`;
  await open(page);
  await load(page, 'tiny-llama', db);
  const llama = await page.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    await c.agentGenerate('tybalt', { ids: prompt }, 5);
    await c.persistAll();
    return (await c.listStoredAgents()).find((a: { agentId: string }) => a.agentId === 'tybalt');
  }, { prompt: PROMPT });

  await page.reload();
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await load(page, 'tiny-qwen2', db);
  const qwen = await page.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    const reply = await c.agentGenerate('tybalt', { ids: [...prompt, 1, 2, 3] }, 5);
    await c.persistAll();
    const stored = (await c.listStoredAgents()).filter((a: { agentId: string }) => a.agentId === 'tybalt');
    return { reply, stored };
  }, { prompt: PROMPT });
  // Another model's blob is not this agent's memory under qwen: nothing refused, nothing reused.
  expect(qwen.reply.refused).toBeUndefined();
  expect(qwen.reply.cachedPromptTokens).toBe(0);
  expect(qwen.stored).toHaveLength(2);
  expect(qwen.stored).toContainEqual(llama);

  // Back on llama, its blob is intact and the agent resumes from it.
  await page.reload();
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await load(page, 'tiny-llama', db);
  const back = await page.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    return c.agentGenerate('tybalt', { ids: [...prompt, 4, 5] }, 3);
  }, { prompt: PROMPT });
  expect(back.restoredFrom).toBe('cold');
  expect(back.cachedPromptTokens).toBeGreaterThan(0);
});

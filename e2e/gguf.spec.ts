import { expect, test, type Page } from '@playwright/test';

/**
 * A lone GGUF file in the browser: loaded through HTTP range requests from the app's origin
 * (tokenizer from its metadata, Q4_0 matrices kept as blocks on the GPU), an agent evicted to
 * IndexedDB survives a page reload and resumes with the reply it gives without eviction.
 */
type Win = { semantic: any; semanticReady?: boolean };
const MODEL = '/models/gguf/tiny-qwen2-q4_0.gguf';
const PROMPT = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 500);
const MORE = [11, 12, 13];

async function open(page: Page, db: string): Promise<void> {
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await page.evaluate(
    ({ model, db }) => (window as unknown as Win).semantic.client.loadModel({ id: 'tiny-qwen2-gguf', source: model }, undefined, { dbName: db }),
    { model: MODEL, db },
  );
}

test('an agent on a GGUF model survives a page reload', async ({ page }) => {
  // Two loads, each compiling its shaders in a fresh worker on SwiftShader.
  test.setTimeout(300_000);
  const t0 = Date.now();
  const db = `e2e-gguf-${Date.now()}`;
  await open(page, db);
  const before = await page.evaluate(
    async ({ prompt, more }) => {
      const c = (window as unknown as Win).semantic.client;
      const first = await c.agentGenerate('romeo', { ids: prompt }, 4);
      const text = await c.agentGenerate('texter', { text: 'Hello' }, 2);
      await c.agentGenerate('ref', { ids: prompt }, 4);
      const next = [...prompt, ...first.tokenIds, ...more];
      const expected = await c.agentGenerate('ref', { ids: next }, 6);
      const tiers = [await c.evictAgent('romeo'), await c.evictAgent('romeo')];
      await c.persistAll();
      return { next, expected, tiers, textTokens: text.tokenIds.length };
    },
    { prompt: PROMPT, more: MORE },
  );
  expect(before.tiers).toEqual(['warm', 'cold']);
  expect(before.textTokens).toBe(2);

  console.log(`[gguf e2e] first load and turns: ${Date.now() - t0} ms`);
  await page.reload();
  await open(page, db);
  console.log(`[gguf e2e] reloaded and loaded again: ${Date.now() - t0} ms`);
  const after = await page.evaluate(async ({ next }) => {
    const c = (window as unknown as Win).semantic.client;
    const tier = await c.agentTier('romeo');
    const restored = await c.agentGenerate('romeo', { ids: next }, 6);
    return { tier, restored };
  }, { next: before.next });
  expect(after.tier).toBe('cold');
  expect(after.restored.restoredFrom).toBe('cold');
  expect(after.restored.cachedPromptTokens).toBeGreaterThan(PROMPT.length);
  expect(after.restored.tokenIds).toEqual(before.expected.tokenIds);
});

import { expect, test, type Page } from '@playwright/test';

/**
 * `new SemanticClient({ shared: true })`: one runtime in a SharedWorker serves every tab of the
 * origin. Two pages of one context connect; the second joins the loaded model instead of loading
 * its own, sees the first tab's agent in the hot tier (the same KV pool, no restore), and both
 * tabs generate at once through one engine with the tokens each would get alone.
 */
type Win = { semantic: any; semanticReady?: boolean; shared?: any };
const PROMPT = Array.from({ length: 24 }, (_, i) => (i * 29 + 5) % 500);

async function connect(page: Page, db: string): Promise<{ mode: string; ms: number }> {
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  return page.evaluate(async ({ db }) => {
    const w = window as unknown as Win;
    w.shared = new w.semantic.SemanticClient({ shared: true, persistOnPageHide: false });
    const t0 = performance.now();
    await w.shared.loadModel({ id: 'tiny-llama', source: '/models/tiny-llama/' }, undefined, { dbName: db, quantization: 'none' });
    return { mode: w.shared.mode, ms: performance.now() - t0 };
  }, { db });
}

test('shared worker: two tabs, one engine', async ({ context }) => {
  test.setTimeout(240_000);
  const db = `e2e-shared-${Date.now()}`;
  const a = await context.newPage();
  const b = await context.newPage();
  const first = await connect(a, db);
  expect(first.mode).toBe('shared');
  const alone = await a.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).shared;
    const x = await c.agentGenerate('romeo', { ids: prompt }, 5);
    const y = await c.agentGenerate('juliet', { ids: [...prompt].reverse() }, 5);
    return { romeo: x.tokenIds, juliet: y.tokenIds, tier: await c.agentTier('romeo') };
  }, { prompt: PROMPT });
  expect(alone.tier).toBe('hot');

  // Tab B joins the loaded model and finds romeo's KV still in the shared pool.
  const second = await connect(b, db);
  expect(second.mode).toBe('shared');
  expect(await b.evaluate(() => (window as unknown as Win).shared.agentTier('romeo'))).toBe('hot');

  // Both tabs continue their agents at once: one engine batches them, tokens as alone.
  const next = [...PROMPT, ...alone.romeo, 11, 12];
  const nextJ = [...[...PROMPT].reverse(), ...alone.juliet, 13];
  const [ra, rb] = await Promise.all([
    a.evaluate(({ ids }) => (window as unknown as Win).shared.agentGenerate('romeo', { ids }, 4), { ids: next }),
    b.evaluate(({ ids }) => (window as unknown as Win).shared.agentGenerate('juliet', { ids }, 4), { ids: nextJ }),
  ]);
  // Each continued from the shared hot cache: only the new tokens were prefilled.
  expect(ra.cachedPromptTokens).toBe(PROMPT.length + alone.romeo.length - 1);
  expect(rb.cachedPromptTokens).toBe(PROMPT.length + alone.juliet.length - 1);
  // The same continuations one at a time, without agents (nothing cached, nothing batched).
  const reference = await a.evaluate(async ({ next, nextJ }) => {
    const c = (window as unknown as Win).shared;
    return [(await c.generate({ ids: next }, 4)).tokenIds, (await c.generate({ ids: nextJ }, 4)).tokenIds];
  }, { next, nextJ });
  expect(ra.tokenIds).toEqual(reference[0]);
  expect(rb.tokenIds).toEqual(reference[1]);
});

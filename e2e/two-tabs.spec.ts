import { expect, test, type Page } from '@playwright/test';

/**
 * Two tabs of one origin (two pages in one browser context, one IndexedDB): one writer per agent
 * (Web Locks), and each tab sees the agents the other stored (BroadcastChannel notice).
 */
type Win = { semantic: any; semanticReady?: boolean };
const PROMPT = Array.from({ length: 36 }, (_, i) => (i * 31 + 7) % 500);

async function open(page: Page, db: string): Promise<void> {
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await page.evaluate(
    ({ db }) => (window as unknown as Win).semantic.client.loadModel({ id: 'tiny-llama', source: '/models/tiny-llama/' }, undefined, { dbName: db, quantization: 'none' }),
    { db },
  );
}

test('two tabs: one writer per agent, and each sees what the other stored', async ({ context }) => {
  test.setTimeout(300_000);
  const db = `e2e-tabs-${Date.now()}`;
  const a = await context.newPage();
  const b = await context.newPage();
  await open(a, db);
  await open(b, db);

  const first = await a.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    const reply = await c.agentGenerate('juliet', { ids: prompt }, 4);
    await c.persistAll();
    return reply.tokenIds;
  }, { prompt: PROMPT });

  // Tab B may not write juliet while tab A is its writer: a typed error, nothing torn.
  const busy = await b.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    try {
      await c.agentGenerate('juliet', { ids: prompt }, 4);
      return null;
    } catch (e: any) {
      return { name: e.name, code: e.code };
    }
  }, { prompt: PROMPT });
  expect(busy).toEqual({ name: 'AgentBusyError', code: 'AGENT_BUSY' });

  // Tab B stores its own agent; tab A learns of it without a reload.
  await b.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    await c.agentGenerate('nurse', { ids: [...prompt].reverse() }, 4);
    await c.persistAll();
  }, { prompt: PROMPT });
  await expect.poll(() => a.evaluate(() => (window as unknown as Win).semantic.client.agentTier('nurse')), { timeout: 30_000 }).toBe('cold');

  // Tab A lets juliet go (delete); tab B may now write it, and computes it afresh.
  await a.evaluate(() => (window as unknown as Win).semantic.client.deleteAgent('juliet'));
  const taken = await b.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    return c.agentGenerate('juliet', { ids: prompt }, 4);
  }, { prompt: PROMPT });
  expect(taken.tokenIds).toEqual(first);
  expect(taken.cachedPromptTokens).toBe(0);
  const stored = await b.evaluate(async () => {
    const c = (window as unknown as Win).semantic.client;
    await c.persistAll();
    return (await c.listStoredAgents()).map((s: { agentId: string }) => s.agentId).sort();
  });
  expect(stored).toEqual(['juliet', 'nurse']);
});

import { expect, test, type Page } from '@playwright/test';

/**
 * A lost GPU device in the browser worker (device.destroy(), as a driver reset would do): the
 * request in flight fails on the page with DeviceLostError (name and code intact), the worker
 * loads the model on a new device, and agents resume from their warm and cold memory with the
 * tokens of an uninterrupted run.
 */
type Win = { semantic: any; semanticReady?: boolean };
const PROMPT = Array.from({ length: 40 }, (_, i) => (i * 29 + 3) % 500);

async function open(page: Page, db: string): Promise<void> {
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await page.evaluate(
    ({ db }) => (window as unknown as Win).semantic.client.loadModel({ id: 'tiny-llama', source: '/models/tiny-llama/' }, undefined, { dbName: db, quantization: 'none' }),
    { db },
  );
}

test('device loss mid-generation: DeviceLostError on the page, then every agent continues with the right tokens', async ({ page }) => {
  test.setTimeout(300_000);
  await open(page, `e2e-lost-${Date.now()}`);
  const out = await page.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    const a1 = await c.agentGenerate('a', { ids: prompt }, 5);
    const b1 = await c.agentGenerate('b', { ids: [...prompt].reverse() }, 5);
    await c.persistAll(); // a and b to cold storage; their hot copies stay until the device goes
    const pending = c.agentGenerate('busy', { ids: prompt.slice(0, 10) }, 400).then(
      () => null,
      (e: any) => ({ name: e.name, code: e.code, isClass: e.constructor?.name }),
    );
    await new Promise((r) => setTimeout(r, 300));
    await c.debugLoseDevice();
    const lost = await pending;
    const recoveries = await c.deviceRecoveries();
    const nextA = [...prompt, ...a1.tokenIds, 7, 8];
    const nextB = [...[...prompt].reverse(), ...b1.tokenIds, 9];
    const a2 = await c.agentGenerate('a', { ids: nextA }, 6);
    const b2 = await c.agentGenerate('b', { ids: nextB }, 6);
    // Reference: the one-shot path on the new device, with no cache.
    const refA = await c.generate({ ids: nextA }, 6, undefined, { ignoreEos: false });
    const refB = await c.generate({ ids: nextB }, 6, undefined, { ignoreEos: false });
    return { lost, recoveries, a2, b2, refA: refA.tokenIds, refB: refB.tokenIds };
  }, { prompt: PROMPT });
  expect(out.lost).toEqual({ name: 'DeviceLostError', code: 'DEVICE_LOST', isClass: 'DeviceLostError' });
  expect(out.recoveries).toBe(1);
  expect(out.a2.tokenIds).toEqual(out.refA);
  expect(out.b2.tokenIds).toEqual(out.refB);
  expect(out.a2.restoredFrom).toBe('cold');
  expect(out.a2.cachedPromptTokens).toBeGreaterThan(0);
  expect(out.b2.cachedPromptTokens).toBeGreaterThan(0);
});

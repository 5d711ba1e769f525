import { expect, test } from '@playwright/test';

/**
 * Fuzz of the worker API: random and malformed arguments to every method. Each call either
 * succeeds or fails with one of the runtime's typed errors (never a bare TypeError, never an
 * InternalError from unvalidated input); the worker stays alive and no agent is lost.
 */
type Win = { semantic: any; semanticReady?: boolean };

test('every worker method answers bad input with a typed error, and the worker and its agents survive', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  const out = await page.evaluate(async () => {
    const c = (window as unknown as Win).semantic.client;
    await c.loadModel({ id: 'tiny-llama', source: '/models/tiny-llama/' }, undefined, { dbName: `e2e-fuzz-${Date.now()}` });
    const prompt = Array.from({ length: 20 }, (_, i) => (i * 13 + 1) % 500);
    const before = await c.agentGenerate('keeper', { ids: prompt }, 3);
    let seed = 99;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const values: unknown[] = [
      undefined, null, 0, -1, 1.5, NaN, Infinity, 1e30, '', 'keeper', '../../etc/passwd', 'x'.repeat(5000), true,
      {}, [], [-1], [1e9], [0.5], ['a'], { ids: 'x' }, { ids: [-3] }, { text: 42 }, { chat: 'hi' }, { chat: [{ role: 'god', content: 1 }] },
      { text: 'a', ids: [1] }, { id: 1, source: 5 }, { id: 'x', source: '/nope/' }, 'bytes3', 'bytes64', 'callback',
      { temperature: -1 }, { sampling: { topP: 7 } },
    ];
    // Buffers are made afresh each time (a transferred one is detached); a function stands where data belongs.
    const fresh = (v: unknown): unknown => v === 'bytes3' ? new Uint8Array([1, 2, 3]) : v === 'bytes64' ? new Uint8Array(64) : v === 'callback' ? () => 1 : v;
    const pick = (): unknown => fresh(values[Math.floor(rand() * values.length)]);
    const methods = [
      'agentGenerate', 'evictAgent', 'agentTier', 'deleteAgent', 'listStoredAgents', 'deleteStoredAgent', 'unsavedAgents',
      'storageEstimate', 'exportAgent', 'importAgent', 'tokenize', 'detokenize', 'renderChat', 'generate', 'loadModel',
    ];
    const typed = new Set(['PoolExhaustedError', 'InvalidRequestError', 'AgentNotFoundError', 'ModelNotFoundError', 'ModelMismatchError',
      'CacheCorruptError', 'QuotaExceededError', 'DeviceLostError', 'UnsupportedModelError', 'TokenizerError', 'CancelledError', 'AgentBusyError']);
    const bad: string[] = [];
    let calls = 0;
    for (const method of methods) {
      for (let k = 0; k < 12; k++) {
        const args = Array.from({ length: Math.floor(rand() * 4) }, pick);
        // Never ask for the keeper's deletion: the test checks it survives everything else.
        if ((method === 'deleteAgent' || method === 'deleteStoredAgent' || method === 'importAgent') && args.includes('keeper')) continue;
        if (method === 'agentGenerate' && typeof args[2] === 'number' && args[2] > 64) args[2] = 8;
        if (method === 'generate' && typeof args[1] === 'number' && args[1] > 64) args[1] = 8;
        calls++;
        try {
          await (c as any)[method](...args);
        } catch (e: any) {
          if (!typed.has(e?.name) || typeof e?.code !== 'string') bad.push(`${method}(${JSON.stringify(args).slice(0, 80)}) -> ${e?.name}: ${String(e?.message).slice(0, 120)}`);
        }
      }
    }
    const tier = await c.agentTier('keeper');
    const after = await c.agentGenerate('keeper', { ids: [...prompt, ...before.tokenIds, 5] }, 3);
    return { bad, calls, tier, reused: after.cachedPromptTokens, alive: (await c.tokenize('ROMEO')).length > 0 };
  });
  expect(out.bad).toEqual([]);
  expect(out.calls).toBeGreaterThan(100);
  expect(out.alive).toBe(true);
  expect(out.tier).not.toBe('none');
  expect(out.reused).toBeGreaterThan(0);
});

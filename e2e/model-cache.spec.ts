import { expect, test } from '@playwright/test';

/**
 * A model from another origin (like the Hugging Face hub) is downloaded once, with progress, and
 * then loads from the browser's Cache API: after a reload no weight byte crosses the network.
 */
type Win = { semantic: any; semanticReady?: boolean };

test('cross-origin model files load from the Cache API the second time', async ({ page, context, baseURL }) => {
  const port = new URL(baseURL ?? 'http://127.0.0.1:5199').port;
  // The page is on 127.0.0.1; localhost is another origin, served by the same dev server.
  const source = `http://localhost:${port}/models/tiny-qwen2/`;
  const fetched: string[] = [];
  await context.route(`http://localhost:${port}/models/**`, (route) => {
    fetched.push(new URL(route.request().url()).pathname);
    return route.continue();
  });
  const load = async (): Promise<{ id: string; progress: number }> => {
    await page.goto('/e2e/pages/harness.html');
    await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
    return page.evaluate(async (src) => {
      let progress = 0;
      const c = (window as unknown as Win).semantic.client;
      const info = await c.loadModel({ id: 'tiny-qwen2-remote', source: src }, () => progress++, { dbName: `e2e-remote-${Date.now()}` });
      await c.generate({ ids: [1, 2, 3] }, 2);
      return { id: info.id, progress };
    }, source);
  };
  const first = await load();
  expect(first.id).toBe('tiny-qwen2-remote');
  expect(first.progress).toBeGreaterThan(0);
  expect(fetched).toContain('/models/tiny-qwen2/model.safetensors');
  fetched.length = 0;
  await page.reload();
  await load();
  expect(fetched).not.toContain('/models/tiny-qwen2/model.safetensors');
  expect(fetched).not.toContain('/models/tiny-qwen2/config.json');
});

import { expect, test, type Page } from '@playwright/test';
import { build, preview, type PreviewServer } from 'vite';

/**
 * The demo, end to end, on the production build (as installed): agents answer with streamed
 * text, two at once; the inspector shows their blocks and tiers; a reload restores an agent's
 * memory from IndexedDB; and with the server gone and the context offline, the service worker
 * still serves the app and the embedded model, and an agent still answers.
 */
let server: PreviewServer;
let origin: string;

test.beforeAll(async () => {
  const started = performance.now();
  await build({ logLevel: 'warn', build: { outDir: 'dist-demo', emptyOutDir: true } });
  server = await preview({ logLevel: 'warn', preview: { host: '127.0.0.1', port: 4199, strictPort: false }, build: { outDir: 'dist-demo' } });
  origin = server.resolvedUrls?.local[0] ?? 'http://127.0.0.1:4199/';
  console.log(`[demo] production build + preview in ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

test.afterAll(async () => {
  await server?.close();
});

/** Letters, spaces and punctuation: what a reply of the trained model reads like. */
function expectReadable(text: string): void {
  expect(text.length).toBeGreaterThan(3);
  const plain = text.replace(/[^A-Za-z ,.;:'!?\n-]/g, '');
  expect(plain.length / text.length).toBeGreaterThan(0.9);
  expect(text).toMatch(/[A-Za-z]{3,}/);
}

async function waitReady(page: Page): Promise<void> {
  await expect(page.locator('#model-status')).toContainText('ready: shakespeare-llama', { timeout: 90_000 });
}

/** The inspector's row for the agent's latest request, once it finished. */
async function finishedRequest(page: Page, agent: string) {
  const row = page.locator(`inspector-panel tr[data-agent="${agent}"][data-end]:not([data-end=""])`).first();
  await expect(row).toBeVisible({ timeout: 60_000 });
  const attr = async (name: string): Promise<number> => Number(await row.getAttribute(name));
  return { row, start: await attr('data-start'), end: await attr('data-end'), chunks: await attr('data-chunks'), skipped: await attr('data-skipped'), source: await row.getAttribute('data-source') };
}

async function lastReply(page: Page): Promise<string> {
  const li = page.locator('chat-pane li.assistant').last();
  return ((await li.textContent()) ?? '').trim();
}

async function createAgent(page: Page, character: string): Promise<void> {
  await page.getByLabel('Character').selectOption(character);
  await page.getByRole('button', { name: 'New agent' }).click();
  await expect(page.locator('chat-pane h2')).toHaveText(character);
}

async function send(page: Page, text: string): Promise<void> {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

test('the demo: streamed agents, two at once, the inspector, a reload from IndexedDB, offline', async ({ page, context }, info) => {
  test.setTimeout(240_000);
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));

  // 1. The page loads the embedded model.
  await page.goto(origin);
  await waitReady(page);
  await page.getByLabel('Reply tokens').fill('12');
  await page.getByLabel('Reply tokens').dispatchEvent('change');

  // 2. An agent answers with streamed, readable text.
  await createAgent(page, 'Romeo');
  await send(page, 'But soft, what light through yonder window breaks?');
  const first = await finishedRequest(page, 'romeo');
  expect(first.chunks).toBeGreaterThan(1);
  expectReadable(await lastReply(page));

  // 3. Two agents answer at once.
  await createAgent(page, 'Juliet');
  await send(page, 'Wherefore art thou Romeo?');
  await page.locator('agent-list li[data-agent="romeo"] .pick').click();
  await send(page, 'Speak again, bright angel.');
  const juliet = await finishedRequest(page, 'juliet');
  await expect(page.locator('inspector-panel tr[data-agent="romeo"]')).toHaveCount(2);
  const romeo = await finishedRequest(page, 'romeo');
  expect(juliet.start < romeo.end && romeo.start < juliet.end).toBe(true);
  expectReadable(await lastReply(page));

  // 4. The inspector shows their blocks, the shared prefix marked, and their tiers.
  const grid = page.locator('block-grid');
  await expect(grid.locator('.b[data-shared][data-owners="juliet, romeo"]').first()).toBeVisible();
  await expect(grid.locator('.b[data-owners="romeo"]').first()).toBeVisible();
  await expect(grid.locator('.b[data-owners="juliet"]').first()).toBeVisible();
  await expect(page.locator('inspector-panel tr[data-agent="romeo"][data-tier="hot"]').first()).toBeVisible();
  await expect(page.locator('inspector-panel tr[data-agent="juliet"][data-tier="hot"]').first()).toBeVisible();
  for (const [width, height] of [[1280, 900], [360, 780]]) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: info.outputPath(`demo-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // 5. After a reload the agent's memory comes back from IndexedDB, and the next turn skips its prompt.
  await expect(page.locator('inspector-panel tbody tr[data-agent="romeo"][data-tier]').first()).toContainText('in IndexedDB', { timeout: 30_000 });
  await page.reload();
  await waitReady(page);
  await expect(page.locator('inspector-panel tr[data-agent="romeo"][data-tier="cold"]')).toBeVisible();
  await page.locator('agent-list li[data-agent="romeo"] .pick').click();
  const before = await page.locator('chat-pane li').count();
  await send(page, 'O, wilt thou leave me so unsatisfied?');
  const restored = await finishedRequest(page, 'romeo');
  expect(restored.source).toBe('cold');
  expect(restored.skipped).toBeGreaterThan(30);
  await expect(page.locator('chat-pane li')).toHaveCount(before + 2);
  expectReadable(await lastReply(page));
  expect(problems).toEqual([]);

  // 6. Offline: the server is gone and the context offline; the service worker serves the app.
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
  await server.close();
  await context.setOffline(true);
  await page.reload();
  await waitReady(page);
  expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  await page.locator('agent-list li[data-agent="juliet"] .pick').click();
  await send(page, 'Good night, good night!');
  const offline = await finishedRequest(page, 'juliet');
  expect(offline.skipped).toBeGreaterThan(0);
  expectReadable(await lastReply(page));
});

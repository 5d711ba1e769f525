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

/** The inspector's rows of an agent's requests, newest first. */
function requestRows(page: Page, agent: string) {
  return page.locator(`inspector-panel tr[data-chunks][data-agent="${agent}"]`);
}

/** Send a message to the selected agent; returns once its request is listed. */
async function send(page: Page, agent: string, text: string): Promise<void> {
  const before = await requestRows(page, agent).count();
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(requestRows(page, agent)).toHaveCount(before + 1);
}

/** The agent's latest request, once it finished: its times, chunks, context source and skipped tokens. */
async function finishedRequest(page: Page, agent: string) {
  const row = requestRows(page, agent).first();
  await expect(row).not.toHaveAttribute('data-end', '', { timeout: 60_000 });
  const attr = async (name: string): Promise<number> => Number(await row.getAttribute(name));
  return { start: await attr('data-start'), first: await attr('data-first'), end: await attr('data-end'), chunks: await attr('data-chunks'), skipped: await attr('data-skipped'), source: await row.getAttribute('data-source') };
}

async function lastReply(page: Page): Promise<string> {
  const li = page.locator('chat-pane li.assistant').last();
  return ((await li.textContent()) ?? '').trim();
}

async function createAgent(page: Page, character: string): Promise<void> {
  await page.getByLabel('Character').selectOption(character);
  await expect(page.getByRole('textbox', { name: 'Name' })).toHaveValue(character);
  await page.getByRole('button', { name: 'New agent' }).click();
  await expect(page.locator('chat-pane h2')).toHaveText(character);
}

test('the demo: streamed agents, two at once, the inspector, a reload from IndexedDB, offline', async ({ page, context }, info) => {
  test.setTimeout(200_000);
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // HEAD requests are the loader's probes for optional files: a 404 is their "absent", and
  // Chromium reports every finished HEAD fetch as failed with ERR_ABORTED (seen with a bare
  // fetch too). Any other failure or error status counts.
  const probe = (method: string): boolean => method === 'HEAD';
  page.on('requestfailed', (r) => !probe(r.method()) && problems.push(`failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => r.status() >= 400 && !probe(r.request().method()) && problems.push(`HTTP ${r.status()}: ${r.url()}`));

  const t0 = performance.now();
  const mark = (what: string): void => console.log(`[demo] ${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // 1. The page loads the embedded model.
  await page.goto(origin);
  await waitReady(page);
  await page.getByLabel('Reply tokens').fill('12');
  await page.getByLabel('Reply tokens').dispatchEvent('change');

  mark('before steps 2 and 3');
  // 2 and 3. Two agents, created with characters that open alike, answer at once, each with
  // streamed readable text (one turn serves both checks: every turn costs the suite seconds).
  await createAgent(page, 'Romeo');
  await createAgent(page, 'Juliet');
  await send(page, 'juliet', 'Wherefore art thou Romeo?');
  const julietReply = page.locator('chat-pane li.assistant').last();
  await page.locator('agent-list li[data-agent="romeo"] .pick').click();
  await send(page, 'romeo', 'But soft, what light through yonder window breaks?');
  const romeo = await finishedRequest(page, 'romeo');
  expectReadable(await lastReply(page));
  await page.locator('agent-list li[data-agent="juliet"] .pick').click();
  const juliet = await finishedRequest(page, 'juliet');
  expectReadable(((await julietReply.textContent()) ?? '').trim());
  // At once: each one's tokens were arriving while the other's were (one batch in the engine).
  expect(romeo.first < juliet.end && juliet.first < romeo.end).toBe(true);
  console.log(`[demo] juliet tokens ${juliet.first.toFixed(0)}-${juliet.end.toFixed(0)} ms, romeo ${romeo.first.toFixed(0)}-${romeo.end.toFixed(0)} ms`);
  expect(romeo.chunks).toBeGreaterThan(1);
  expect(juliet.chunks).toBeGreaterThan(1);
  await page.locator('agent-list li[data-agent="romeo"] .pick').click();

  mark('before step 4');
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

  mark('before step 5');

  // 5 and 6 in one reload (each model load costs the suite tens of seconds): with the preview
  // server gone and the context offline, the service worker serves the production build, and
  // the agent's memory comes back from IndexedDB: the next turn skips its prompt.
  await expect(page.locator('inspector-panel tr[data-tier][data-agent="romeo"]')).toContainText('IndexedDB', { timeout: 30_000 });
  expect(problems).toEqual([]);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
  await server.close();
  await context.setOffline(true);
  await page.reload();
  await waitReady(page);
  mark('reloaded offline');
  expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  await expect(page.locator('inspector-panel tr[data-tier="cold"][data-agent="romeo"]')).toContainText('cold (IndexedDB)');
  await page.locator('agent-list li[data-agent="romeo"] .pick').click();
  const before = await page.locator('chat-pane li').count();
  await send(page, 'romeo', 'O, wilt thou leave me so unsatisfied?');
  const restored = await finishedRequest(page, 'romeo');
  expect(restored.source).toBe('cold');
  expect(restored.skipped).toBeGreaterThan(30);
  await expect(page.locator('inspector-panel tr[data-chunks][data-agent="romeo"] td[data-source="cold"]')).toHaveText('cold');
  await expect(page.locator('chat-pane li')).toHaveCount(before + 2);
  expectReadable(await lastReply(page));
  expect(problems).toEqual([]);
  mark('done');
});

import { expect, test, type Page } from '@playwright/test';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * One blob format everywhere: an agent's memory exported in the browser (IndexedDB blob) is
 * restored by the Node CLI (folder of .safetensors files), and the other way round.
 */
type Win = { semantic: any; semanticReady?: boolean };
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const MODEL = join(ROOT, 'public', 'models', 'tiny-llama');

async function cli(args: string[]): Promise<any> {
  const { stdout } = await run(process.execPath, [join(ROOT, 'bin', 'semantic.mjs'), ...args], { cwd: ROOT, timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
}

async function openLoaded(page: Page, db: string): Promise<void> {
  await page.goto('/e2e/pages/harness.html');
  await page.waitForFunction(() => (window as unknown as Win).semanticReady === true);
  await page.evaluate((dbName) => (window as unknown as Win).semantic.client.loadModel({ id: 'tiny-llama', source: '/models/tiny-llama/' }, undefined, { dbName, quantization: 'none' }), db);
}

const PROMPT = Array.from({ length: 30 }, (_, i) => (i * 41 + 3) % 500);

test('a blob exported from the browser restores in the Node CLI', async ({ page }) => {
  await openLoaded(page, `e2e-b2n-${Date.now()}`);
  const browser = await page.evaluate(async ({ prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    const first = await c.agentGenerate('b2n', { ids: prompt }, 6);
    const bytes: Uint8Array = await c.exportAgent('b2n');
    const next = [...prompt, ...first.tokenIds, 4, 5, 6];
    const reference = await c.agentGenerate('reference', { ids: next }, 6);
    return { bytes: Array.from(bytes), next, reference: reference.tokenIds };
  }, { prompt: PROMPT });
  const dir = mkdtempSync(join(tmpdir(), 'semantic-b2n-'));
  const file = join(dir, 'b2n.safetensors');
  writeFileSync(file, Uint8Array.from(browser.bytes));
  const imported = await cli(['import', '--model', MODEL, '--cache-dir', join(dir, 'cache'), '--in', file]);
  expect(imported.agent).toBe('b2n');
  const out = await cli(['generate', '--model', MODEL, '--cache-dir', join(dir, 'cache'), '--agent', 'b2n', '--kv-quant', 'none', '--prompt-ids', browser.next.join(','), '--max-tokens', '6', '--json']);
  expect(out.restored).toBe('cold');
  expect(out.prefill_tokens_reused).toBe(imported.tokens);
  expect(out.tokens).toEqual(browser.reference);
});

test('a blob written by the Node CLI restores in the browser', async ({ page }) => {
  const dir = mkdtempSync(join(tmpdir(), 'semantic-n2b-'));
  const first = await cli(['generate', '--model', MODEL, '--cache-dir', dir, '--agent', 'n2b', '--kv-quant', 'none', '--prompt-ids', PROMPT.join(','), '--max-tokens', '6', '--json']);
  // The CLI keeps each model's blobs in their own folder, named by the model fingerprint.
  const scope = readdirSync(dir, { withFileTypes: true }).find((e) => e.isDirectory())?.name ?? '';
  const bytes = Array.from(readFileSync(join(dir, scope, 'n2b.safetensors')));
  const next = [...PROMPT, ...first.tokens, 7, 8, 9];
  await openLoaded(page, `e2e-n2b-${Date.now()}`);
  const got = await page.evaluate(async ({ bytes, next }) => {
    const c = (window as unknown as Win).semantic.client;
    const id = await c.importAgent(Uint8Array.from(bytes));
    const restored = await c.agentGenerate(id, { ids: next }, 6);
    const reference = await c.agentGenerate('reference', { ids: next }, 6);
    return { id, restored, reference: reference.tokenIds };
  }, { bytes, next });
  expect(got.id).toBe('n2b');
  expect(got.restored.restoredFrom).toBe('warm');
  expect(got.restored.cachedPromptTokens).toBe(PROMPT.length + first.tokens.length - 1);
  expect(got.restored.tokenIds).toEqual(got.reference);
});

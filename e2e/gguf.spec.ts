import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { loadCpuModel } from '../src/adapters/cpu/index.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { parseSafetensors } from '../src/adapters/safetensors/index.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';

/**
 * A lone GGUF file in the browser: loaded through HTTP range requests from the app's origin
 * (tokenizer from its metadata, Q4_0 matrices kept as blocks on the GPU), an agent evicted to
 * IndexedDB survives a page reload and resumes with the reply it gives without eviction. Then an
 * MLX 4-bit folder (tools/make-mlx.ts) loads in the same worker from its URL and gives the CPU
 * reference's tokens, its packed weights within 2% of the file's tensor bytes on the GPU.
 */
type Win = { semantic: any; semanticReady?: boolean };
const MODEL = '/models/gguf/tiny-qwen2-q4_0.gguf';
const MLX_MODEL = '/models/mlx/tiny-qwen2-4bit/';
const MLX_DIR = join(import.meta.dirname, '..', 'public', 'models', 'mlx');
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

  // An MLX 4-bit folder URL loads in the same worker like any safetensors folder (its weight
  // pipelines compile; the rest are cached) and gives the CPU reference's greedy tokens.
  const mlx = await page.evaluate(async ({ source, prompt }) => {
    const c = (window as unknown as Win).semantic.client;
    const info = await c.loadModel({ id: 'tiny-qwen2-mlx', source });
    const reply = await c.agentGenerate('mlx', { ids: prompt }, 6);
    return { weights: info.gpuBytes.weights as number, tokens: reply.tokenIds as number[] };
  }, { source: MLX_MODEL, prompt: PROMPT });
  console.log(`[gguf e2e] MLX folder loaded and run: ${Date.now() - t0} ms`);
  const files = new FsModelSource(join(MLX_DIR, 'tiny-qwen2-4bit'));
  const { model } = await loadCpuModel(files, { kvDtype: 'f16' }); // the worker's default KV
  const eos = (await HfTokenizer.fromFiles(files)).eosTokenIds();
  expect(mlx.tokens).toEqual(model.generateGreedy(PROMPT, 6, { eosTokenIds: eos }).tokens);
  const st = parseSafetensors(new Uint8Array(readFileSync(join(MLX_DIR, 'tiny-qwen2-4bit', 'model.safetensors'))));
  const fileBytes = [...st.tensors.values()].reduce((n, t) => n + t.data.byteLength, 0);
  expect(Math.abs(mlx.weights / fileBytes - 1)).toBeLessThan(0.02);
});

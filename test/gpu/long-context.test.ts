import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argmax, GREEDY } from '../../src/domain/sampling.ts';
import { loadCpuModel } from '../../src/adapters/cpu/index.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { maxAbsDiff, randomF32, testGpu } from './harness.ts';

/**
 * 8,192 tokens of context through the paged attention of the whole model, against the CPU
 * reference. Prefilling 8k tokens on SwiftShader (and in the CPU oracle) would take minutes, so
 * the first 8,188 positions get the same random K/V on both sides (the backend through
 * writeBlocks into a scattered block table, the CPU through its dense cache); then 3 prompt
 * tokens and 1 decode step run the full forward pass on both, attending over all 8,192
 * positions. tiny-llama is copied with max_position_embeddings raised to 8,192 (its RoPE is
 * Llama 3 scaled, so long positions also exercise the scaled frequencies).
 */
const CONTEXT = 8192;
const CACHED = CONTEXT - 4;
const TOL = 1e-3;
const FIXTURE = join(import.meta.dirname, '..', '..', 'public', 'models', 'tiny-llama');

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'semantic-long-'));
  cpSync(FIXTURE, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: CONTEXT }));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('long context (tiny-llama, 8,192 positions)', () => {
  it('logits of 3 prompt tokens and 1 decode step after 8,188 cached tokens match the CPU reference', async () => {
    const source = new FsModelSource(dir);
    const { config, model } = await loadCpuModel(source);
    const t = await testGpu();
    const blockTokens = 16;
    const backend = await WebGpuBackend.load(t.gpu, source, { kvBudgetBytes: 8 * 1024 * 1024, blockTokens, kvDtype: 'f32' }); // exact random K/V, as the CPU has them
    try {
      expect(backend.maxContext).toBe(CONTEXT);
      const blocks = CONTEXT / blockTokens;
      expect(backend.totalBlocks).toBeGreaterThanOrEqual(blocks);
      // Scattered: block i of the sequence lives in pool block (i * 193) mod blocks (193 is odd,
      // so this is a permutation), never in order.
      const table = Array.from({ length: blocks }, (_, i) => (i * 193) % blocks);
      const row = config.nKvHeads * config.headDim;
      const keys = Array.from({ length: config.nLayers }, (_, l) => randomF32(CACHED * row, 100 + l, 2));
      const values = Array.from({ length: config.nLayers }, (_, l) => randomF32(CACHED * row, 200 + l));
      await backend.writeBlocks(table, { tokens: CACHED, keys, values });
      const cache = model.createCache(CONTEXT);
      for (let l = 0; l < config.nLayers; l++) cache.write(l, 0, keys[l], values[l]);
      cache.advance(CACHED);

      const promptIds = [17, 301, 42];
      const step = (tokenIds: number[], startPosition: number) => ({ tokenIds, startPosition, blockTable: table, sample: true, sampling: GREEDY, sampleStep: 0 });
      const gpuPrefill = await backend.forward([step(promptIds, CACHED)], { returnLogits: true });
      const cpuPrefill = model.forward(promptIds, cache, { lastOnly: true });
      const next = argmax(cpuPrefill);
      expect(gpuPrefill.nextTokens[0]).toBe(next);
      const gpuDecode = await backend.forward([step([next], CACHED + promptIds.length)], { returnLogits: true });
      const cpuDecode = model.forward([next], cache, { lastOnly: true });
      expect(cache.length).toBe(CONTEXT);
      const errors = [maxAbsDiff(gpuPrefill.logits ?? [], cpuPrefill), maxAbsDiff(gpuDecode.logits ?? [], cpuDecode)];
      console.log(`[long-context] ${CONTEXT} positions: max |logit error| ${Math.max(...errors).toExponential(2)}`);
      expect(Math.max(...errors)).toBeLessThanOrEqual(TOL);
      expect(gpuDecode.nextTokens[0]).toBe(argmax(cpuDecode));
    } finally {
      backend.dispose();
    }
  });
});

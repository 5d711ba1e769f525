import { expect } from 'vitest';
import type { CpuReferenceModel } from '../../src/adapters/cpu/index.ts';
import type { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { maxAbsDiff } from './harness.ts';
import { generateBatch } from './lockstep.ts';

/**
 * Greedy decoding of `prompt` on the GPU, alone and batched with another prompt, gives the CPU
 * reference's tokens (the other prompt's too). Returns the largest logit error of the lone run.
 */
export async function expectGreedyAloneAndBatched(backend: WebGpuBackend, cpu: CpuReferenceModel, prompt: readonly number[], steps: number): Promise<number> {
  const want = cpu.generateGreedy(prompt, steps, { eosTokenIds: [] });
  const pool = new BlockPool(backend.totalBlocks);
  const other = [prompt[0], 300, 301, 302];
  const [alone] = await generateBatch(backend, pool, [{ promptIds: prompt, maxTokens: steps }], { returnLogits: true });
  const [batched, second] = await generateBatch(backend, pool, [{ promptIds: prompt, maxTokens: steps }, { promptIds: other, maxTokens: steps }], { returnLogits: true });
  expect(alone.tokens).toEqual(want.tokens);
  expect(batched.tokens).toEqual(want.tokens);
  expect(second.tokens).toEqual(cpu.generateGreedy(other, steps, { eosTokenIds: [] }).tokens);
  return Math.max(...alone.logits.map((row, i) => maxAbsDiff(row, want.logits[i])));
}

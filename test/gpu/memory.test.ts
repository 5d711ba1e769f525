import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { f16ArrayToF32, f32ArrayToF16 } from '../../src/domain/half.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { randomF32, testGpu } from './harness.ts';

/**
 * Memory on the GPU: weights keep the checkpoint's bytes (16-bit stays 16-bit), q4 is under a
 * third of f16, f16 KV holds twice the tokens of f32 in the same budget, and KV snapshots move
 * between pools of either dtype. Sizes come from the backend's own report (gpu_bytes, counted by
 * the buffer owner per category), never from constants.
 */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
const BUDGET = 1 << 20;

const loaded: WebGpuBackend[] = [];
afterAll(() => {
  for (const b of loaded) b.dispose();
});

async function load(id: string, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const t = await testGpu();
  const backend = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, id)), { kvBudgetBytes: BUDGET, ...options });
  loaded.push(backend);
  return backend;
}

describe('GPU weight bytes', () => {
  it.each([
    ['tiny-qwen3', 'bf16'],
    ['tiny-qwen2', 'f16'],
    ['tiny-llama', 'f32'],
  ])('%s (%s checkpoint): weights on the GPU are the checkpoint tensor bytes within 2%%', async (id, format) => {
    const r = (await load(id)).loadReport();
    const ratio = r.gpu_bytes.weights / r.checkpoint_weight_bytes;
    console.log(`[memory] ${id}: GPU weights ${r.gpu_bytes.weights} B, checkpoint tensors ${r.checkpoint_weight_bytes} B (x${ratio.toFixed(4)}), by format ${JSON.stringify(r.weight_bytes_by_format)}`);
    expect(Object.keys(r.weight_bytes_by_format).sort()).toEqual([format, 'vector'].sort());
    expect(Math.abs(ratio - 1)).toBeLessThanOrEqual(0.02);
  });

  it('q8 and q4 (tiny-qwen2, f16 checkpoint): q4 is at most 0.32x the f16 bytes, embedding and lm_head included', async () => {
    const f16 = (await load('tiny-qwen2')).loadReport();
    const q8 = (await load('tiny-qwen2', { weights: 'q8' })).loadReport();
    const q4 = (await load('tiny-qwen2', { weights: 'q4' })).loadReport();
    const r8 = q8.gpu_bytes.weights / f16.gpu_bytes.weights;
    const r4 = q4.gpu_bytes.weights / f16.gpu_bytes.weights;
    console.log(`[memory] tiny-qwen2 weights: f16 ${f16.gpu_bytes.weights} B, q8 ${q8.gpu_bytes.weights} B (x${r8.toFixed(3)}), q4 ${q4.gpu_bytes.weights} B (x${r4.toFixed(3)})`);
    // Every matrix (embedding and lm_head too) is quantized: no f16 or f32 matrix is left.
    expect(Object.keys(q4.weight_bytes_by_format).sort()).toEqual(['q4', 'vector']);
    expect(Object.keys(q8.weight_bytes_by_format).sort()).toEqual(['q8', 'vector']);
    expect(r4).toBeLessThanOrEqual(0.32);
    expect(r8).toBeLessThanOrEqual(0.55);
  });
});

describe('KV pool dtype', () => {
  it('f16 KV (the default) holds twice the tokens of f32 KV in the same budget', async () => {
    const f16 = (await load('tiny-llama')).loadReport();
    const f32 = (await load('tiny-llama', { kvDtype: 'f32' })).loadReport();
    console.log(`[memory] tiny-llama, ${BUDGET} B KV budget: f16 ${f16.kv_pool_tokens} tokens, f32 ${f32.kv_pool_tokens} tokens`);
    expect(f16.kv_dtype).toBe('f16');
    expect(f16.kv_pool_tokens).toBe(2 * f32.kv_pool_tokens);
    expect(f16.gpu_bytes.kv_pool).toBe(f32.gpu_bytes.kv_pool);
    expect(f16.gpu_bytes.kv_pool).toBeLessThanOrEqual(BUDGET);
  });

  it('a snapshot moves between f32 and f16 pools: f16 -> f32 exactly, f32 -> f16 rounded to nearest', async () => {
    const a = await load('tiny-qwen3', { kvDtype: 'f32' });
    const b = await load('tiny-qwen3');
    // Values of every magnitude a K/V can take, most not representable in f16.
    const tokens = 21;
    const { nLayers, nKvHeads, headDim } = a.config;
    const sides = (seed: number): Float32Array[] => Array.from({ length: nLayers }, (_, l) => randomF32(tokens * nKvHeads * headDim, seed + l, 8));
    const exact = { tokens, keys: sides(1), values: sides(100) };
    await a.writeBlocks([3, 1], exact);
    expect(await a.readBlocks([3, 1], tokens)).toEqual(exact); // f32 pool: bitwise round trip
    await b.writeBlocks([5, 0], exact); // f32 -> f16 pool
    const halved = await b.readBlocks([5, 0], tokens);
    const round = (x: Float32Array): Float32Array => f16ArrayToF32(f32ArrayToF16(x));
    expect(halved.keys[0]).not.toEqual(exact.keys[0]); // the rounding really happened
    halved.keys.forEach((k, l) => expect(k).toEqual(round(exact.keys[l])));
    halved.values.forEach((v, l) => expect(v).toEqual(round(exact.values[l])));
    await a.writeBlocks([7, 2], halved); // f16 values -> f32 pool: exact
    const back = await a.readBlocks([7, 2], tokens);
    expect(back).toEqual(halved);
  });
});

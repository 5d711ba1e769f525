/**
 * GGUF weights on the GPU, kept in their file's block layouts (Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K
 * next to the q8 = Q8_0 and q4 = Q4_0 accessors) and decoded in registers by w_at:
 *   - matmul and embedding per format against the CPU on the values domain/gguf-blocks.ts decodes
 *     (tolerance 1e-4, as test/gpu/matmul.test.ts: only the f32 summation order differs);
 *   - the committed GGUF fixtures end to end: greedy tokens equal to the CPU reference on the
 *     dequantized weights, logits within 1e-3, alone and in a batch; GPU weight bytes within 2%
 *     of the file's tensor bytes (nothing expanded).
 * SwiftShader compiles each (kernel, format) pipeline in ~2 s, so CI runs Q4_K and Q6_K (the
 * Q4_K_M pair) through the vec matmul and the embedding, and tiny-qwen2-q4_0.gguf end to end.
 * SEMANTIC_GGUF_GPU_FULL=1 adds every format through both matmul kernels and the other fixtures
 * end to end, the 11-type llama-k-mix.gguf and qwen2-k-mix.gguf included (~3 min).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddingGather, linear } from '../../src/adapters/cpu/ops.ts';
import { CpuReferenceModel } from '../../src/adapters/cpu/index.ts';
import { dequantizeWeight, MemoryRangeSource, openGgufModel, readGgufWeightsF32 } from '../../src/adapters/gguf/index.ts';
import { encodeEmbedding } from '../../src/adapters/webgpu/ops/basic.ts';
import { encodeMatmul } from '../../src/adapters/webgpu/ops/matmul.ts';
import type { GpuDtype, GpuTensor } from '../../src/adapters/webgpu/gpu-tensor.ts';
import { expectGreedyAloneAndBatched } from './greedy-parity.ts';
import { ggufBackend } from '../../cli/gguf-model.ts';
import { maxAbsDiff, randomF32, testGpu } from './harness.ts';
import { GGUF_WEIGHT_DTYPES, packMatrix } from './weight-packing.ts';

const GGUF_DIR = join(import.meta.dirname, '..', '..', 'public', 'models', 'gguf');
const FULL = process.env['SEMANTIC_GGUF_GPU_FULL'] === '1';
const KERNEL_FORMATS = FULL ? GGUF_WEIGHT_DTYPES : (['q4_k', 'q6_k'] as const);
const MODEL_FIXTURES: Array<[string, number[]]> = [
  ['tiny-qwen2-q4_0.gguf', [513, 72, 101, 108, 108, 111]],
  ...(FULL ? ([['tiny-llama-q8_0.gguf', [512, 72, 101, 108, 108, 111]], ['llama-k-mix.gguf', [512, 84, 104, 101, 32, 113]], ['qwen2-k-mix.gguf', [513, 87, 104, 97, 116]]] as Array<[string, number[]]>) : []),
];

describe('GGUF block formats in the matmul and embedding kernels', () => {
  for (const dtype of KERNEL_FORMATS) {
    it(`${dtype}: matmul and embedding match the CPU on the decoded values`, async () => {
      const t = await testGpu();
      const [N, K] = [24, 512];
      const { ref, packed } = packMatrix(dtype, randomF32(N * K, 91, 1), K);
      const w: GpuTensor = { buffer: t.upload(packed), dtype: dtype as GpuDtype, shape: [N, K] };
      for (const M of FULL ? [1, 20] : [1]) {
        const x = randomF32(M * K, 92 + M);
        const out = t.zeros(M * N * 4);
        await t.run((enc, tr) => encodeMatmul(t, enc, { x: t.upload(x), w, out, M, N, K }, tr));
        expect(maxAbsDiff(await t.readF32(out, M * N), linear(x, ref, N))).toBeLessThanOrEqual(1e-4);
      }
      const ids = [3, 0, 23, 3, 17];
      const out = t.zeros(ids.length * K * 4);
      await t.run((enc, tr) => encodeEmbedding(t, enc, { table: w, tokenIds: t.upload(new Uint32Array(ids)), out, nTokens: ids.length, hidden: K }, tr));
      expect(maxAbsDiff(await t.readF32(out, ids.length * K), embeddingGather(ref, K, ids))).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe.each(MODEL_FIXTURES)('%s on the GPU', (file, prompt) => {
  it('greedy tokens equal the CPU reference on the dequantized weights, logits within 1e-3, alone and batched', { timeout: 300_000 }, async () => {
    const t = await testGpu();
    const model = await openGgufModel(new MemoryRangeSource(new Uint8Array(readFileSync(join(GGUF_DIR, file)))));
    const cpu = new CpuReferenceModel(model.config, await readGgufWeightsF32(model, dequantizeWeight));
    const backend = await ggufBackend(t.gpu, model, { kvDtype: 'f32', kvBudgetBytes: 4 * 1024 * 1024 });
    try {
      const err = await expectGreedyAloneAndBatched(backend, cpu, prompt, 8);
      const report = backend.loadReport();
      console.log(`[gguf gpu] ${file}: max |logit error| ${err.toExponential(2)}, weights ${JSON.stringify(report.weight_bytes_by_format)}, file tensors ${model.weightBytes} B`);
      expect(err).toBeLessThanOrEqual(1e-3);
      // Matrices are byte-for-byte the file's; only rope_freqs (read into the config) is left out.
      expect(Math.abs(backend.weightBytes - model.weightBytes) / model.weightBytes).toBeLessThan(0.02);
      expect(report.checkpoint_weight_bytes).toBe(backend.weightBytes);
    } finally {
      backend.dispose();
    }
  });
});

/**
 * MLX quantized safetensors on the GPU: each linear's packed u32 words with its scales and biases
 * regrouped into one buffer of affine groups (byte for byte the file's tensor bytes), decoded in
 * registers by matmul_weights_mlx.wgsl's w_at.
 *   - the accessor at real shapes, against the CPU on the values domain/mlx-quant.ts decodes
 *     (tolerance 1e-4 for matmul, as test/gpu/gguf.test.ts: only the f32 summation order
 *     differs; 1e-6 for the embedding, a copy): Qwen2.5-0.5B's 151936 x 896 embedding at 4 bits,
 *     its gate_proj [4864, 896] and down_proj [896, 4864] through the vec matmul, in group 32
 *     (the fixture's format, so SwiftShader compiles those pipelines once for the file);
 *   - the committed MLX fixture tiny-qwen2-4bit (tools/make-mlx.ts) end to end from its folder:
 *     greedy tokens equal to the CPU reference on the dequantized weights, logits within 1e-3,
 *     alone and in a batch; GPU weight bytes within 2% of the file's tensor bytes; and the
 *     fingerprint differs from the 8-bit fixture's, so a KV blob made under one is refused under
 *     the other (ModelMismatchError).
 * SEMANTIC_MLX_GPU_FULL=1 adds the 8-bit and bf16/tied/override fixtures end to end, 2/8-bit,
 * bf16 and group 64/128 formats and the tiled matmul in the kernel test, and the real
 * 151936 x 896 lm_head matmul at MLX's default group 64 (seconds on SwiftShader).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddingGather, linear } from '../../src/adapters/cpu/ops.ts';
import { loadCpuModel } from '../../src/adapters/cpu/index.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { decodeAgentBlob, encodeAgentBlob } from '../../src/adapters/safetensors/agent-blob.ts';
import { encodeEmbedding } from '../../src/adapters/webgpu/ops/basic.ts';
import { encodeMatmul, MATMUL_VEC_MAX_ROWS } from '../../src/adapters/webgpu/ops/matmul.ts';
import type { GpuTensor } from '../../src/adapters/webgpu/gpu-tensor.ts';
import { mlxDtype } from '../../src/adapters/webgpu/weight-formats.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { expectGreedyAloneAndBatched } from './greedy-parity.ts';
import { generateBatch } from './lockstep.ts';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { ModelMismatchError } from '../../src/domain/errors.ts';
import { mlxDequantize, mlxGpuBlocks, type MlxBits, type MlxGroupSize, type MlxLinear, type MlxScaleDtype } from '../../src/domain/mlx-quant.ts';
import { f32ToBf16Bits, f32ToF16Bits } from '../../src/domain/half.ts';
import { quantizeFolder } from '../../tools/make-mlx.ts';
import { mulberry32 } from '../../tools/prng.ts';
import { twinSpec } from '../../tools/twin-specs.ts';
import { writeTwin } from '../../tools/twins.ts';
import { maxAbsDiff, randomF32, testGpu } from './harness.ts';

const MLX_DIR = join(import.meta.dirname, '..', '..', 'public', 'models', 'mlx');
const FULL = process.env['SEMANTIC_MLX_GPU_FULL'] === '1';
const TWIN = process.env['SEMANTIC_MLX_TWIN'] === '1';

interface RandomLinear {
  readonly l: MlxLinear;
  readonly packed: Uint8Array;
  readonly scales: Uint8Array;
  readonly biases: Uint8Array;
}

/** A random quantized linear as a file would hold it: random words, scales and biases. */
function randomLinear(rows: number, cols: number, bits: MlxBits, groupSize: MlxGroupSize, scaleDtype: MlxScaleDtype, seed: number): RandomLinear {
  const rand = mulberry32(seed);
  const packed = new Uint32Array((rows * cols * bits) / 32);
  for (let i = 0; i < packed.length; i++) packed[i] = Math.floor(rand() * 2 ** 32);
  const groups = (rows * cols) / groupSize;
  const toBits = scaleDtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
  const scales = new Uint16Array(groups);
  const biases = new Uint16Array(groups);
  const levels = 2 ** bits - 1;
  for (let g = 0; g < groups; g++) {
    const s = (0.02 + 0.05 * rand()) / levels;
    scales[g] = toBits(s);
    biases[g] = toBits(-s * levels * (0.3 + 0.4 * rand()));
  }
  const u8 = (a: Uint32Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer);
  return { l: { name: 'w', scales: 's', biases: 'b', rows, cols, bits, groupSize, scaleDtype }, packed: u8(packed), scales: u8(scales), biases: u8(biases) };
}

function gpuTensor(t: Awaited<ReturnType<typeof testGpu>>, r: RandomLinear): GpuTensor {
  const blocks = mlxGpuBlocks(r.l, r.l.rows, r.packed, r.scales, r.biases);
  return { buffer: t.upload(blocks), dtype: mlxDtype(r.l.bits, r.l.groupSize, r.l.scaleDtype), shape: [r.l.rows, r.l.cols] };
}

/** Rows [from, from + n) of a random linear, decoded on the CPU. */
function decodeRows(r: RandomLinear, from: number, n: number): Float32Array {
  const { cols, bits, groupSize } = r.l;
  const packedRow = (cols * bits) / 8;
  const sideRow = (cols / groupSize) * 2;
  return mlxDequantize({ ...r.l, rows: n }, r.packed.subarray(from * packedRow, (from + n) * packedRow), r.scales.subarray(from * sideRow, (from + n) * sideRow), r.biases.subarray(from * sideRow, (from + n) * sideRow));
}

async function checkMatmul(r: RandomLinear, rowsM: number): Promise<number> {
  const t = await testGpu();
  const [N, K] = [r.l.rows, r.l.cols];
  const w = gpuTensor(t, r);
  const x = randomF32(rowsM * K, 77 + rowsM);
  const out = t.zeros(rowsM * N * 4);
  await t.run((enc, tr) => encodeMatmul(t, enc, { x: t.upload(x), w, out, M: rowsM, N, K }, tr));
  const got = await t.readF32(out, rowsM * N);
  // Reference in slices of rows, so a 151936-row matrix is never expanded whole on the host.
  let err = 0;
  const slice = 4096;
  for (let n0 = 0; n0 < N; n0 += slice) {
    const n = Math.min(slice, N - n0);
    const want = linear(x, decodeRows(r, n0, n), n);
    for (let m = 0; m < rowsM; m++) err = Math.max(err, maxAbsDiff(got.subarray(m * N + n0, m * N + n0 + n), want.subarray(m * n, (m + 1) * n)));
  }
  w.buffer.destroy();
  return err;
}

describe('MLX affine groups in the matmul and embedding kernels, at real shapes', () => {
  // Group 32 with f16 scales is the fixture's format: its pipelines are compiled once for both.
  it('4-bit group 32: the 151936 x 896 embedding of Qwen2.5-0.5B copies the decoded rows exactly', { timeout: 120_000 }, async () => {
    const t = await testGpu();
    const r = randomLinear(151936, 896, 4, 32, 'F16', 5);
    const table = gpuTensor(t, r);
    const ids = [0, 151935, 77_777, 1234, 151_000];
    const out = t.zeros(ids.length * 896 * 4);
    await t.run((enc, tr) => encodeEmbedding(t, enc, { table, tokenIds: t.upload(new Uint32Array(ids)), out, nTokens: ids.length, hidden: 896 }, tr));
    const got = await t.readF32(out, ids.length * 896);
    const want = new Float32Array(ids.length * 896);
    ids.forEach((id, i) => want.set(decodeRows(r, id, 1), i * 896));
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-6);
    table.buffer.destroy();
  });

  it('4-bit group 32: gate_proj [4864, 896] and down_proj [896, 4864] through the vec matmul within 1e-4', { timeout: 120_000 }, async () => {
    expect(await checkMatmul(randomLinear(4864, 896, 4, 32, 'F16', 6), 1)).toBeLessThanOrEqual(1e-4);
    expect(await checkMatmul(randomLinear(896, 4864, 4, 32, 'F16', 7), 1)).toBeLessThanOrEqual(1e-4);
  });

  it.runIf(FULL)('8-bit and bf16 formats, the tiled matmul, and the 151936-row lm_head', { timeout: 600_000 }, async () => {
    for (const [bits, group, dtype] of [[8, 32, 'BF16'], [2, 128, 'F16'], [4, 32, 'BF16'], [8, 64, 'F16']] as const) {
      for (const M of [1, MATMUL_VEC_MAX_ROWS + 4]) {
        expect(await checkMatmul(randomLinear(256, 896, bits, group, dtype, 8 + bits), M), `${bits} bits g${group} ${dtype} M=${M}`).toBeLessThanOrEqual(1e-4);
      }
    }
    expect(await checkMatmul(randomLinear(4864, 896, 4, 64, 'F16', 10), 1)).toBeLessThanOrEqual(1e-4);
    expect(await checkMatmul(randomLinear(151936, 896, 4, 64, 'F16', 9), 1)).toBeLessThanOrEqual(1e-4);
  });
});

const FIXTURES: Array<[string, number[]]> = [
  ['tiny-qwen2-4bit', [513, 72, 101, 108, 108, 111]],
  ...(FULL ? ([['tiny-qwen2-8bit', [513, 72, 101, 108, 108, 111]], ['tiny-qwen3-4bit', [512, 84, 104, 101, 32, 113]]] as Array<[string, number[]]>) : []),
];

describe.each(FIXTURES)('MLX fixture %s on the GPU', (dir, prompt) => {
  it('greedy tokens equal the CPU reference on the dequantized weights, logits within 1e-3, alone and batched', { timeout: 300_000 }, async () => {
    const t = await testGpu();
    const source = new FsModelSource(join(MLX_DIR, dir));
    const { model: cpu } = await loadCpuModel(source);
    const backend = await WebGpuBackend.load(t.gpu, source, { kvDtype: 'f32', kvBudgetBytes: 4 * 1024 * 1024 });
    try {
      const err = await expectGreedyAloneAndBatched(backend, cpu, prompt, 8);
      const report = backend.loadReport();
      console.log(`[mlx gpu] ${dir}: max |logit error| ${err.toExponential(2)}, weights ${JSON.stringify(report.weight_bytes_by_format)}, file tensors ${report.checkpoint_weight_bytes} B`);
      expect(err).toBeLessThanOrEqual(1e-3);
      // Matrices are the file's bytes regrouped; only norms and biases are widened to f32.
      const matrices = Object.entries(report.weight_bytes_by_format).filter(([f]) => f.startsWith('mlx'));
      expect(matrices.length).toBeGreaterThan(0);
      expect(Math.abs(backend.weightBytes - report.checkpoint_weight_bytes) / report.checkpoint_weight_bytes).toBeLessThan(0.02);
    } finally {
      backend.dispose();
    }
  });
});

/**
 * SEMANTIC_MLX_TWIN=1: the random-weight twin of Qwen2.5-0.5B (real hidden 896, vocab 151936, 14/2
 * heads, q/k/v bias, tied; 2 layers) quantized to MLX 4 bits, group 64, from its folder: the
 * greedy tokens and logits (within 1e-3) of the CPU reference on the dequantized weights, over a
 * prefill and one decode step. Minutes on SwiftShader and ~2 GB of host memory.
 */
describe.runIf(TWIN)('MLX 4-bit twin of Qwen2.5-0.5B', () => {
  it('matches the CPU reference on the dequantized weights', { timeout: 1_800_000 }, async () => {
    const t = await testGpu();
    const root = mkdtempSync(join(tmpdir(), 'semantic-mlx-twin-'));
    try {
      const twin = writeTwin(twinSpec('qwen2.5-0.5b'), root);
      const dir = join(root, 'mlx-4bit');
      mkdirSync(dir);
      for (const [name, bytes] of quantizeFolder(twin.dir, { bits: 4, groupSize: 64 })) writeFileSync(join(dir, name), bytes);
      rmSync(twin.dir, { recursive: true });
      const source = new FsModelSource(dir);
      const prompt = [151643, 9707, 11, 1879, 0];
      const { model: cpu } = await loadCpuModel(source);
      const want = cpu.generateGreedy(prompt, 2, { eosTokenIds: [] });
      const backend = await WebGpuBackend.load(t.gpu, source, { kvDtype: 'f32', kvBudgetBytes: 4 * 1024 * 1024 });
      try {
        const [got] = await generateBatch(backend, new BlockPool(backend.totalBlocks), [{ promptIds: prompt, maxTokens: 2 }], { returnLogits: true });
        expect(got.tokens).toEqual(want.tokens);
        const err = Math.max(...got.logits.map((row, i) => maxAbsDiff(row, want.logits[i])));
        console.log(`[mlx twin] qwen2.5-0.5b 4-bit: max |logit error| ${err.toExponential(2)}, ${JSON.stringify(backend.loadReport().weight_bytes_by_format)}`);
        expect(err).toBeLessThanOrEqual(1e-3);
      } finally {
        backend.dispose();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('MLX fingerprint', () => {
  it('a KV blob made under the 4-bit fixture is refused under the 8-bit one', { timeout: 120_000 }, async () => {
    const t = await testGpu();
    const load = (dir: string): Promise<WebGpuBackend> => WebGpuBackend.load(t.gpu, new FsModelSource(join(MLX_DIR, dir)), { kvBudgetBytes: 1 << 20 });
    const four = await load('tiny-qwen2-4bit');
    const four8 = four.extractModelSpec();
    four.dispose();
    const eight = await load('tiny-qwen2-8bit');
    const spec8 = eight.extractModelSpec();
    eight.dispose();
    expect(four8.fingerprint).not.toBe(spec8.fingerprint);
    const { nLayers, nKvHeads, headDim } = four8;
    const layers = (): Float32Array[] => Array.from({ length: nLayers }, () => randomF32(2 * nKvHeads * headDim, 3));
    const blob = encodeAgentBlob({ agentId: 'romeo', spec: four8, tokenIds: [1, 2], snapshot: { tokens: 2, keys: layers(), values: layers() } });
    expect(() => decodeAgentBlob(blob, four8)).not.toThrow();
    expect(() => decodeAgentBlob(blob, spec8)).toThrow(ModelMismatchError);
  });
});

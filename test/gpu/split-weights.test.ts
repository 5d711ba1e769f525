import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { InvalidRequestError } from '../../src/domain/errors.ts';
import { parseModelConfig } from '../../src/domain/model-config.ts';
import { generateBatch, type BatchRequest } from './lockstep.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { readCheckpoint, readJsonFile } from '../../src/adapters/safetensors/index.ts';
import { GpuBuffers } from '../../src/adapters/webgpu/gpu-buffers.ts';
import { rowsPerPart, type GpuDtype, type GpuTensor, type GpuTensorPart } from '../../src/adapters/webgpu/gpu-tensor.ts';
import { encodeEmbedding } from '../../src/adapters/webgpu/ops/basic.ts';
import { encodeMatmulWith, type MatmulArgs, type MatmulKernel } from '../../src/adapters/webgpu/ops/matmul.ts';
import { uploadWeights } from '../../src/adapters/webgpu/weights.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { randomF32, testGpu, type TestGpu } from './harness.ts';
import { ALL_WEIGHT_DTYPES, packMatrix } from './weight-packing.ts';

/**
 * A weight matrix larger than the storage binding limit is split by rows into parts. Matmul
 * (split along N) and embedding (split along vocab) must give results BITWISE equal to the
 * unsplit path, for both weight dtypes, both matmul kernels, and whole models.
 */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Host data of a [rows, cols] matrix in the GPU's packing, and the f32 values it decodes to. */
function matrixData(rows: number, cols: number, dtype: GpuDtype, seed: number): { packed: Float32Array | Uint16Array | Uint8Array; ref: Float32Array; cols: number } {
  return { ...packMatrix(dtype, randomF32(rows * cols, seed, 2), cols), cols };
}

/** Upload `data` whole, and again split into parts of the given row counts. */
function uploadBoth(t: TestGpu, m: ReturnType<typeof matrixData>, rows: number, dtype: GpuDtype, split: readonly number[]): { whole: GpuTensor; parted: GpuTensor } {
  const { packed: data, cols } = m;
  const rowUnits = data.length / rows; // array elements per row (bytes for the block formats)
  const whole: GpuTensor = { buffer: t.upload(data), dtype, shape: [rows, cols] };
  const parts: GpuTensorPart[] = [];
  let rowStart = 0;
  for (const n of split) {
    parts.push({ buffer: t.upload(data.slice(rowStart * rowUnits, (rowStart + n) * rowUnits)), rowStart, rows: n });
    rowStart += n;
  }
  expect(rowStart).toBe(rows);
  return { whole, parted: { buffer: parts[0].buffer, dtype, shape: [rows, cols], parts } };
}

function release(t: TestGpu, ...tensors: GpuTensor[]): void {
  for (const w of tensors) for (const p of w.parts ?? [{ buffer: w.buffer }]) t.buffers.release(p.buffer);
}

async function matmul(t: TestGpu, w: GpuTensor, x: GPUBuffer, bias: GPUBuffer | undefined, M: number, kernel: MatmulKernel): Promise<Float32Array> {
  const [N, K] = w.shape;
  // Poison the output so a column no part writes shows up as a mismatch.
  const out = t.upload(new Float32Array(M * N).fill(Number.NaN));
  const args: MatmulArgs = { x, w, out, M, N, K, ...(bias ? { bias } : {}) };
  await t.run((enc, tr) => encodeMatmulWith(t, enc, args, tr, kernel));
  const got = await t.readF32(out, M * N);
  t.buffers.release(out);
  return got;
}

describe('matmul with W split by rows (output columns)', () => {
  const N = 201; // not a tile multiple
  const splits: readonly (readonly number[])[] = [
    [70, 13, 118], // 3 uneven parts, boundaries off the 64-column tiles
    [1, 64, 100, 36], // 4 parts, one a single row
  ];
  for (const dtype of ['f32', 'f16', 'q4'] as const) {
    it(`${dtype}: every split, kernel and M gives bitwise the unsplit result (with and without bias)`, async () => {
      const t = await testGpu();
      const K = dtype === 'q4' ? 96 : 130; // not a tile multiple; q4: 3 blocks, rows off word boundaries
      const x = t.upload(randomF32(70 * K, 5));
      const bias = t.upload(randomF32(N, 6));
      const data = matrixData(N, K, dtype, 7);
      for (const split of splits) {
        const { whole, parted } = uploadBoth(t, data, N, dtype, split);
        for (const [M, kernel] of [[1, 'vec'], [5, 'vec'], [70, 'tiled'], [5, 'tiled'], [70, 'vec']] as const) {
          for (const b of [bias, undefined]) {
            const want = await matmul(t, whole, x, b, M, kernel);
            const got = await matmul(t, parted, x, b, M, kernel);
            expect(bits(got), `split ${split.join('/')} M=${M} ${kernel}${b ? ' +bias' : ''}`).toEqual(bits(want));
          }
        }
        release(t, whole, parted);
      }
      t.buffers.release(x);
      t.buffers.release(bias);
    });
  }

  it('stays batch invariant when split: row r is the same for M=1, 5 and 70', async () => {
    const t = await testGpu();
    const K = 130;
    const x = t.upload(randomF32(70 * K, 8));
    const { whole, parted } = uploadBoth(t, matrixData(N, K, 'f16', 9), N, 'f16', [70, 13, 118]);
    const full = await matmul(t, parted, x, undefined, 70, 'tiled');
    const one = await matmul(t, parted, x, undefined, 1, 'vec');
    const five = await matmul(t, parted, x, undefined, 5, 'vec');
    expect(bits(one)).toEqual(bits(full.subarray(0, N)));
    expect(bits(five)).toEqual(bits(full.subarray(0, 5 * N)));
    release(t, whole, parted);
    t.buffers.release(x);
  });

  it('rejects parts that do not tile the rows, with InvalidRequestError', async () => {
    const t = await testGpu();
    const K = 130;
    const { whole, parted } = uploadBoth(t, matrixData(N, K, 'f32', 10), N, 'f32', [70, 13, 118]);
    const x = t.zeros(K * 4);
    const out = t.zeros(N * 4);
    const parts = parted.parts ?? [];
    const bad: GpuTensor[] = [
      { ...parted, parts: [parts[0], parts[2]] }, // gap
      { ...parted, parts: [parts[0], parts[1]] }, // short
      { ...parted, parts: [parts[1], parts[0], parts[2]] }, // out of order
      { ...parted, buffer: parts[1].buffer }, // buffer is not the first part's
    ];
    for (const w of bad) {
      const tr: GPUBuffer[] = [];
      const enc = t.device.createCommandEncoder();
      expect(() => encodeMatmulWith(t, enc, { x, w, out, M: 1, N, K }, tr, 'vec')).toThrow(InvalidRequestError);
      expect(tr).toHaveLength(0);
      enc.finish();
    }
    release(t, whole, parted);
    t.buffers.release(x);
    t.buffers.release(out);
  });
});

describe('embedding with the table split by vocab rows', () => {
  const vocab = 50;
  // First and last row of every part, repeats, and an out-of-vocabulary id (zero row).
  const ids = [0, 6, 7, 36, 37, 49, 50, 3, 49, 0, 20, 1000];
  for (const dtype of ALL_WEIGHT_DTYPES) {
    it(`${dtype}: 3 uneven parts give bitwise the unsplit gather, which is the decoded table`, async () => {
      const t = await testGpu();
      // Block formats need whole 32-element blocks per row; 96 = 3 blocks puts q4 rows off words.
      const hidden = dtype === 'q8' || dtype === 'q4' ? 96 : 24;
      const m = matrixData(vocab, hidden, dtype, 11);
      const { whole, parted } = uploadBoth(t, m, vocab, dtype, [7, 30, 13]);
      const tokenIds = t.upload(new Uint32Array(ids));
      const gather = async (table: GpuTensor): Promise<Float32Array> => {
        const out = t.upload(new Float32Array(ids.length * hidden).fill(Number.NaN));
        await t.run((enc, tr) => encodeEmbedding(t, enc, { table, tokenIds, out, nTokens: ids.length, hidden }, tr));
        const got = await t.readF32(out, ids.length * hidden);
        t.buffers.release(out);
        return got;
      };
      const want = await gather(whole);
      const got = await gather(parted);
      expect(bits(got)).toEqual(bits(want));
      expect([...got.subarray(6 * hidden, 7 * hidden)]).toEqual(new Array(hidden).fill(0));
      ids.forEach((id, i) => {
        if (id < vocab) expect(bits(got.subarray(i * hidden, (i + 1) * hidden))).toEqual(bits(m.ref.subarray(id * hidden, (id + 1) * hidden)));
      });
      release(t, whole, parted);
      t.buffers.release(tokenIds);
    });
  }
});

describe('uploadWeights splits a matrix that exceeds maxBindingBytes', () => {
  it('rowsPerPart fits the limit, prefers 64-row blocks, and refuses a row that cannot fit', () => {
    expect(rowsPerPart(515, 96, 'f16', 1 << 20)).toBe(515);
    expect(rowsPerPart(515, 96, 'f16', 40_000)).toBe(192); // 208 fit, rounded to 3 x 64
    expect(rowsPerPart(515, 96, 'f16', 12_000)).toBe(62); // fewer than 64 fit
    expect(() => rowsPerPart(10, 96, 'f32', 100)).toThrow(InvalidRequestError);
  });

  it('tiny-llama (tied embedding): embed and lm_head are one split tensor whose parts fit', async () => {
    const t = await testGpu();
    const source = new FsModelSource(join(MODELS, 'tiny-llama'));
    const config = parseModelConfig(await readJsonFile(source, 'config.json'));
    const checkpoint = await readCheckpoint(source, new TextDecoder().decode(await source.read('config.json')));
    const buffers = new GpuBuffers(t.device);
    const limit = 40_000;
    const w = await uploadWeights(buffers, t.gpu.caps.maxStorageBufferBindingSize, config, checkpoint.tensors, { maxBindingBytes: limit });
    expect(w.lmHead).toBe(w.embed);
    const parts = w.embed.parts ?? [];
    expect(parts.map((p) => p.rows)).toEqual([128, 128, 128, 128, 5]); // 517 rows of 256 bytes
    expect(w.embed.buffer).toBe(parts[0].buffer);
    for (const p of parts) expect(p.buffer.size).toBeLessThanOrEqual(limit);
    expect(w.layers[0].q.parts).toBeUndefined(); // 16 KiB fits
    const unsplit = await uploadWeights(buffers, t.gpu.caps.maxStorageBufferBindingSize, config, checkpoint.tensors);
    expect(w.bytes).toBe(unsplit.bytes);
    buffers.destroyAll();
  });
});

describe.each([
  ['tiny-qwen2', {}], // f16 checkpoint: packed f16 weights, untied lm_head
  ['tiny-llama', {}], // f32 weights, tied embedding
  ['tiny-llama', { matrixDtype: 'f16' }],
  ['tiny-qwen2', { weights: 'q4' }], // q4 blocks quantized at load, split inside the byte stream
] as const)('%s %j: a backend with split weights equals the unsplit backend bitwise', (id, extra: WebGpuBackendOptions) => {
  const loaded: WebGpuBackend[] = [];
  const liveBuffers: number[] = [];
  afterAll(() => {
    for (const b of loaded) b.dispose();
  });

  async function run(options: WebGpuBackendOptions, reqs: BatchRequest[]): Promise<{ tokens: number[]; logits: Float32Array[] }[]> {
    const t = await testGpu();
    const backend = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, id)), { kvBudgetBytes: 4 * 1024 * 1024, ...extra, ...options });
    loaded.push(backend);
    liveBuffers.push(backend.bufferStats().liveBuffers);
    return generateBatch(backend, new BlockPool(backend.totalBlocks), reqs, { returnLogits: true });
  }

  it('greedy tokens and every logit, for a batch of 3 prompts (prefill, then batched decode)', async () => {
    const reqs = [0, 1, 2].map((s) => ({ promptIds: Array.from({ length: 9 + 5 * s }, (_, i) => (s * 97 + i * 31) % 500), maxTokens: 8 }));
    const whole = await run({}, reqs);
    // 12 000 bytes splits lm_head / the embedding (9-12 parts) and q, o, gate, up, down (2-4 parts).
    // q4 matrices are ~3.6x smaller than f16, so a smaller limit splits them as often.
    const split = await run({ maxBindingBytes: extra.weights === 'q4' ? 3_000 : 12_000 }, reqs);
    expect(liveBuffers[1] - liveBuffers[0]).toBeGreaterThanOrEqual(8); // the parts really exist
    expect(split.map((r) => r.tokens)).toEqual(whole.map((r) => r.tokens));
    split.forEach((r, i) => {
      expect(r.logits).toHaveLength(whole[i].logits.length);
      r.logits.forEach((row, j) => expect(bits(row)).toEqual(bits(whole[i].logits[j])));
    });
  });
});

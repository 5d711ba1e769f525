import { describe, expect, it } from 'vitest';
import { linear } from '../../src/adapters/cpu/ops.ts';
import { InvalidRequestError } from '../../src/domain/errors.ts';
import type { GpuDtype, GpuTensor } from '../../src/adapters/webgpu/gpu-tensor.ts';
import {
  chooseMatmulKernel,
  MATMUL_VEC_MAX_ROWS,
  encodeMatmul,
  encodeMatmulWith,
  type MatmulArgs,
  type MatmulKernel,
} from '../../src/adapters/webgpu/ops/matmul.ts';
import { maxAbsDiff, randomF32, testGpu, type TestGpu } from './harness.ts';
import { ALL_WEIGHT_DTYPES, packMatrix } from './weight-packing.ts';

// Tolerance vs the CPU reference (which accumulates in f64): inputs are uniform in [-1, 1), so
// outputs here reach |y| ~ 12; sequential f32 accumulation over K <= 96 terms was measured at
// max abs err <= 6e-6 (1.4e-5 at K = 512), so 1e-4 leaves a wide margin. f16 weights are
// compared against the CPU run on the same f16-rounded weights, so the only difference is again
// f32 accumulation (against the unrounded f32 weights the error is ~2e-3: the f16 rounding).
// bf16, q8 and q4 likewise: the CPU runs on the bf16-rounded / dequantized values the kernel
// decodes (the quantized formats are never expanded on the GPU; w_at decodes in registers).
const TOL = 1e-4;

interface Problem {
  readonly x: Float32Array;
  readonly wRef: Float32Array; // the weights the GPU actually sees, as f32 (rounded / dequantized)
  readonly wPacked: Float32Array | Uint16Array | Uint8Array;
  readonly bias?: Float32Array;
}

function problem(M: number, N: number, K: number, dtype: GpuDtype, withBias: boolean, seed: number): Problem {
  const x = randomF32(M * K, seed);
  const w32 = randomF32(N * K, seed + 1);
  const bias = withBias ? randomF32(N, seed + 2) : undefined;
  const { ref, packed } = packMatrix(dtype, w32, K);
  return { x, wRef: ref, wPacked: packed, bias };
}

async function gpuMatmul(
  t: TestGpu,
  p: Problem,
  M: number,
  N: number,
  K: number,
  dtype: GpuDtype,
  kernel?: MatmulKernel,
): Promise<Float32Array> {
  const w: GpuTensor = { buffer: t.upload(p.wPacked), dtype, shape: [N, K] };
  const args: MatmulArgs = {
    x: t.upload(p.x),
    w,
    out: t.zeros(M * N * 4),
    M,
    N,
    K,
    ...(p.bias ? { bias: t.upload(p.bias) } : {}),
  };
  await t.run((enc, tr) => (kernel ? encodeMatmulWith(t, enc, args, tr, kernel) : encodeMatmul(t, enc, args, tr)));
  const got = await t.readF32(args.out, M * N);
  for (const b of [args.x, args.out, w.buffer, args.bias]) if (b) t.buffers.release(b);
  return got;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

describe('WebGPU matmul (y = x Wᵀ + b, HF [N, K] weights)', () => {
  const shapes: [number, number, number][] = [
    [1, 64, 64],
    [3, 192, 96],
    [33, 128, 96],
    [70, 517, 64],
  ];
  for (const dtype of ALL_WEIGHT_DTYPES) {
    for (const [M, N, K] of shapes) {
      for (const withBias of [false, true]) {
        it(`${dtype} weights, M=${M} N=${N} K=${K}${withBias ? ' + bias' : ''} (${chooseMatmulKernel(M)}) matches the CPU`, async () => {
          const t = await testGpu();
          const p = problem(M, N, K, dtype, withBias, M * 1000 + N + K);
          // The kernel a GPU picks, explicitly: on SwiftShader encodeMatmul would pick vec everywhere.
          const got = await gpuMatmul(t, p, M, N, K, dtype, chooseMatmulKernel(M));
          const want = linear(p.x, p.wRef, N, p.bias);
          expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(TOL);
        });
      }
    }
  }

  it('uses the vec kernel for decode-sized M and the tiled kernel for prefill', () => {
    // 16 rows: a batch of 16 decoding agents still reads each weight once per workgroup, instead
    // of filling a quarter of a 64-row tile (measured: 16-agent decode step 333 -> 223 ms on SwiftShader).
    expect(MATMUL_VEC_MAX_ROWS).toBe(16);
    expect(chooseMatmulKernel(1)).toBe('vec');
    expect(chooseMatmulKernel(16)).toBe('vec');
    expect(chooseMatmulKernel(17)).toBe('tiled');
    expect(chooseMatmulKernel(70)).toBe('tiled');
    // A CPU adapter runs the barrier-free vec kernel at every M (same bits, faster there).
    expect(chooseMatmulKernel(70, true)).toBe('vec');
  });

  for (const dtype of ALL_WEIGHT_DTYPES) {
    it(`is batch invariant (${dtype}): row r is bitwise equal for M=1, 5, 70 and either kernel`, async () => {
      const t = await testGpu();
      const N = 67; // not a tile multiple
      // Not a multiple of either kernel's K stage; for the 32-element block formats 96 = 3 blocks,
      // so q4 rows (54 bytes) start off word boundaries.
      const K = dtype === 'q8' || dtype === 'q4' ? 96 : 130;
      const big = problem(70, N, K, dtype, true, 7);
      const full = await gpuMatmul(t, big, 70, N, K, dtype); // tiled
      const fullVec = await gpuMatmul(t, big, 70, N, K, dtype, 'vec');
      expect(bits(fullVec)).toEqual(bits(full));
      const sub = (rows: number): Problem => ({ ...big, x: big.x.slice(0, rows * K) });
      const one = await gpuMatmul(t, sub(1), 1, N, K, dtype); // vec, 1 row per workgroup
      const five = await gpuMatmul(t, sub(5), 5, N, K, dtype); // vec, 8 rows per workgroup
      const fiveTiled = await gpuMatmul(t, sub(5), 5, N, K, dtype, 'tiled');
      expect(bits(one)).toEqual(bits(full.subarray(0, N)));
      expect(bits(five)).toEqual(bits(full.subarray(0, 5 * N)));
      expect(bits(fiveTiled)).toEqual(bits(five));
      expect(maxAbsDiff(full, linear(big.x, big.wRef, N, big.bias))).toBeLessThanOrEqual(TOL);
    });
  }

  it('reads a chunk of x from xOffsetRows, bitwise equal to the full run', async () => {
    const t = await testGpu();
    const [M, N, K] = [20, 40, 48];
    const p = problem(M, N, K, 'f32', true, 11);
    const full = await gpuMatmul(t, p, M, N, K, 'f32');
    const x = t.upload(p.x);
    const w: GpuTensor = { buffer: t.upload(p.wPacked), dtype: 'f32', shape: [N, K] };
    const bias = t.upload(p.bias ?? new Float32Array(N));
    // A decode-sized chunk (vec kernel) and a prefill-sized one (tiled kernel).
    for (const [row0, rows] of [[12, 3], [10, 10]]) {
      const out = t.zeros(rows * N * 4);
      await t.run((enc, tr) => encodeMatmul(t, enc, { x, w, bias, out, M: rows, N, K, xOffsetRows: row0 }, tr));
      expect(bits(await t.readF32(out, rows * N))).toEqual(bits(full.subarray(row0 * N, (row0 + rows) * N)));
      t.buffers.release(out);
    }
    for (const b of [x, w.buffer, bias]) t.buffers.release(b);
  });

  it('accumulates into out (the fused residual add), bitwise equal to matmul then add, with both kernels', async () => {
    const t = await testGpu();
    const [M, N, K] = [5, 70, 130];
    const p = problem(M, N, K, 'f16', true, 13);
    const residual = randomF32(M * N, 14, 3);
    for (const kernel of ['vec', 'tiled'] as const) {
      const y = await gpuMatmul(t, p, M, N, K, 'f16', kernel);
      const want = residual.map((r, i) => Math.fround(r + y[i]));
      const x = t.upload(p.x);
      const w: GpuTensor = { buffer: t.upload(p.wPacked), dtype: 'f16', shape: [N, K] };
      const bias = t.upload(p.bias ?? new Float32Array(N));
      const out = t.upload(residual);
      await t.run((enc, tr) => encodeMatmulWith(t, enc, { x, w, bias, out, M, N, K, accumulate: true }, tr, kernel));
      expect(bits(await t.readF32(out, M * N))).toEqual(bits(want));
      for (const b of [x, w.buffer, bias, out]) t.buffers.release(b);
    }
  });

  it('spreads a grid wider than maxComputeWorkgroupsPerDimension over y', async () => {
    const t = await testGpu();
    // A device limit is fixed; fake a small one on a view of the context to force the y spill.
    // (Only the limits matmul reads; Dawn's methods need the real device as `this`.)
    const limits = { maxComputeWorkgroupsPerDimension: 8, maxStorageBufferBindingSize: t.device.limits.maxStorageBufferBindingSize };
    const device = new Proxy(t.device, {
      get: (target, prop) => {
        if (prop === 'limits') return limits;
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const ctx = { device, buffers: t.buffers, pipelines: t.pipelines };
    const [M, N, K] = [70, 300, 32]; // tiled: 10 tiles -> 8 x 2 grid; vec: 45 blocks -> 8 x 6 grid
    const p = problem(M, N, K, 'f32', false, 21);
    const want = await gpuMatmul(t, p, M, N, K, 'f32');
    for (const kernel of ['tiled', 'vec'] as const) {
      const x = t.upload(p.x);
      const w: GpuTensor = { buffer: t.upload(p.wPacked), dtype: 'f32', shape: [N, K] };
      const out = t.zeros(M * N * 4);
      await t.run((enc, tr) => encodeMatmulWith(ctx, enc, { x, w, out, M, N, K }, tr, kernel));
      expect(bits(await t.readF32(out, M * N))).toEqual(bits(want));
      for (const b of [x, w.buffer, out]) t.buffers.release(b);
    }
  });

  it('rejects invalid shapes with InvalidRequestError before any GPU work', async () => {
    const t = await testGpu();
    const x = t.zeros(4 * 8 * 4);
    const out = t.zeros(4 * 6 * 4);
    const wf32: GpuTensor = { buffer: t.zeros(6 * 8 * 4), dtype: 'f32', shape: [6, 8] };
    const wf16odd: GpuTensor = { buffer: t.zeros(6 * 8 * 2), dtype: 'f16', shape: [6, 7] };
    const wq4: GpuTensor = { buffer: t.zeros(6 * 18), dtype: 'q4', shape: [6, 8] };
    const ok: MatmulArgs = { x, w: wf32, out, M: 4, N: 6, K: 8 };
    const bad: MatmulArgs[] = [
      { ...ok, M: 0 },
      { ...ok, K: 2.5 },
      { ...ok, N: 5 }, // weight shape disagrees
      { ...ok, M: 5 }, // x and out too small
      { ...ok, xOffsetRows: 1 }, // x too small for the offset
      { ...ok, xOffsetRows: -1 },
      { ...ok, w: wf16odd, K: 7 }, // f16 needs even K
      { ...ok, w: wq4 }, // q4 needs K to be whole 32-element blocks
      { ...ok, bias: t.zeros(4) }, // bias shorter than N
      { ...ok, out: x }, // aliasing
    ];
    const encoder = t.device.createCommandEncoder({ label: 'matmul-invalid' });
    const compiled = t.pipelines.compileCount;
    for (const args of bad) {
      const transients: GPUBuffer[] = [];
      expect(() => encodeMatmul(t, encoder, args, transients)).toThrow(InvalidRequestError);
      expect(transients).toHaveLength(0);
    }
    expect(t.pipelines.compileCount).toBe(compiled);
    encoder.finish();
  });

  it('caches one pipeline per kernel variant, not per shape', async () => {
    const t = await testGpu();
    const run = (M: number, N: number, K: number): Promise<Float32Array> => gpuMatmul(t, problem(M, N, K, 'f32', false, 3), M, N, K, 'f32');
    await run(2, 16, 16); // vec, ROWS=4
    await run(12, 16, 16); // tiled
    const before = t.pipelines.compileCount;
    await run(3, 40, 24);
    await run(40, 24, 40);
    expect(t.pipelines.compileCount).toBe(before);
  });
});

import { describe, expect, it } from 'vitest';
import { applyRope, embeddingGather, rmsNorm, swiglu } from '../../src/adapters/cpu/ops.ts';
import {
  encodeBiasAdd,
  encodeEmbedding,
  encodeGatherRows,
  encodeRmsNorm,
  encodeRope,
  encodeSwiglu,
} from '../../src/adapters/webgpu/ops/basic.ts';
import { InvalidRequestError } from '../../src/domain/errors.ts';
import { f16ArrayToF32, f32ArrayToF16 } from '../../src/domain/half.ts';
import { ropeInvFreq } from '../../src/domain/rope.ts';
import { maxAbsDiff, randomF32, testGpu } from './harness.ts';

/** Bit patterns, so equality is bitwise (distinguishes -0 and +0, compares NaN payloads). */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe('embedding gather', () => {
  const vocab = 50;
  const hidden = 24;
  const ids = [3, 0, 49, 3, 17, 17, 8];

  it('f32 table: exact copy of the CPU gather', async () => {
    const t = await testGpu();
    const table = randomF32(vocab * hidden, 11, 2);
    const out = t.zeros(ids.length * hidden * 4);
    const tensor = { buffer: t.upload(table), dtype: 'f32' as const, shape: [vocab, hidden] };
    await t.run((enc, tr) => encodeEmbedding(t, enc, { table: tensor, tokenIds: t.upload(new Uint32Array(ids)), out, nTokens: ids.length, hidden }, tr));
    const got = await t.readF32(out, ids.length * hidden);
    expect(bits(got)).toEqual(bits(embeddingGather(table, hidden, ids)));
  });

  it('packed f16 table: exact copy of the CPU gather of the f16-rounded values', async () => {
    const t = await testGpu();
    const halves = f32ArrayToF16(randomF32(vocab * hidden, 12, 3));
    const out = t.zeros(ids.length * hidden * 4);
    const tensor = { buffer: t.upload(halves), dtype: 'f16' as const, shape: [vocab, hidden] };
    await t.run((enc, tr) => encodeEmbedding(t, enc, { table: tensor, tokenIds: t.upload(new Uint32Array(ids)), out, nTokens: ids.length, hidden }, tr));
    const got = await t.readF32(out, ids.length * hidden);
    expect(bits(got)).toEqual(bits(embeddingGather(f16ArrayToF32(halves), hidden, ids)));
  });

  it('an id outside the vocabulary gives a zero row, not an out-of-bounds read', async () => {
    const t = await testGpu();
    const table = randomF32(vocab * hidden, 13);
    const out = t.upload(new Float32Array(2 * hidden).fill(7));
    const tensor = { buffer: t.upload(table), dtype: 'f32' as const, shape: [vocab, hidden] };
    await t.run((enc, tr) => encodeEmbedding(t, enc, { table: tensor, tokenIds: t.upload(new Uint32Array([1, vocab])), out, nTokens: 2, hidden }, tr));
    const got = await t.readF32(out, 2 * hidden);
    expect(bits(got.subarray(0, hidden))).toEqual(bits(table.slice(hidden, 2 * hidden)));
    expect([...got.subarray(hidden)]).toEqual(new Array(hidden).fill(0));
  });
});

describe('rmsnorm', () => {
  async function gpuRmsNorm(x: Float32Array, w: Float32Array, eps: number): Promise<Float32Array> {
    const t = await testGpu();
    const width = w.length;
    const rows = x.length / width;
    const output = t.zeros(x.length * 4);
    await t.run((enc, tr) => encodeRmsNorm(t, enc, { input: t.upload(x), weight: t.upload(w), output, rows, width, eps }, tr));
    return t.readF32(output, x.length);
  }

  it('matches the CPU within 1e-5 (width below and above the workgroup size)', async () => {
    for (const [rows, width] of [[5, 64], [3, 300], [2, 1000]] as const) {
      const x = randomF32(rows * width, 21 + width, 3);
      const w = randomF32(width, 22 + width, 0.5).map((v) => 1 + v);
      const got = await gpuRmsNorm(x, w, 1e-6);
      expect(maxAbsDiff(got, rmsNorm(x, w, 1e-6))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('puts eps inside the square root (HF), not added to the root', async () => {
    // x = 1e-3 everywhere, eps = 1e-5: inside gives 1e-3 / sqrt(1e-6 + 1e-5) = 0.30151;
    // outside would give 1e-3 / (1e-3 + 1e-5) = 0.990.
    const width = 32;
    const got = await gpuRmsNorm(new Float32Array(width).fill(1e-3), new Float32Array(width).fill(1), 1e-5);
    const inside = 1e-3 / Math.sqrt(1e-6 + 1e-5);
    for (const v of got) expect(Math.abs(v - inside)).toBeLessThanOrEqual(1e-5);
  });

  it('is batch invariant: a row is bitwise identical whether rows = 1 or 50', async () => {
    const width = 300;
    const rows = 50;
    const x = randomF32(rows * width, 23, 4);
    const w = randomF32(width, 24).map((v) => 1 + v);
    const batched = await gpuRmsNorm(x, w, 1e-5);
    for (const r of [0, 17, 49]) {
      const alone = await gpuRmsNorm(x.slice(r * width, (r + 1) * width), w, 1e-5);
      expect(bits(alone)).toEqual(bits(batched.slice(r * width, (r + 1) * width)));
    }
  });

  it('runs in place (output === input), bitwise equal to the out-of-place result', async () => {
    const t = await testGpu();
    const rows = 6;
    const width = 300;
    const x = randomF32(rows * width, 25, 2);
    const w = randomF32(width, 26).map((v) => 1 + v);
    const data = t.upload(x);
    await t.run((enc, tr) => encodeRmsNorm(t, enc, { input: data, weight: t.upload(w), output: data, rows, width, eps: 1e-6 }, tr));
    const got = await t.readF32(data, x.length);
    expect(maxAbsDiff(got, rmsNorm(x, w, 1e-6))).toBeLessThanOrEqual(1e-5);
    expect(bits(got)).toEqual(bits(await gpuRmsNorm(x, w, 1e-6)));
  });
});

describe('rope', () => {
  // Measured max |GPU - CPU| on SwiftShader: ~2.4e-7 (the kernel's own sin/cos are ~1e-7
  // absolute); the tolerance leaves room for other drivers.
  const TOL = 2e-6;

  it.each([16, 32])('matches the CPU applyRope within 2e-6 for positions 0..2000, headDim %i', async (headDim) => {
    const t = await testGpu();
    const nHeads = 2;
    const positions = Array.from({ length: 2001 }, (_, p) => p);
    const nTokens = positions.length;
    const invFreq = ropeInvFreq(headDim, 10000, { type: 'default' });
    const x = randomF32(nTokens * nHeads * headDim, 30 + headDim);
    const gx = t.upload(x);
    await t.run((enc, tr) =>
      encodeRope(t, enc, { x: gx, positions: t.upload(new Uint32Array(positions)), invFreq: t.upload(invFreq), nTokens, nHeads, headDim }, tr),
    );
    const got = await t.readF32(gx, x.length);
    const want = Float32Array.from(x);
    applyRope(want, { nTokens, nHeads, headDim }, positions, invFreq);
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(TOL);
  });

  it('handles scattered positions and llama3-scaled frequencies', async () => {
    const t = await testGpu();
    const headDim = 32;
    const nHeads = 3;
    const positions = [0, 1999, 7, 1500, 2000, 1];
    const nTokens = positions.length;
    const invFreq = ropeInvFreq(headDim, 500000, {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    const x = randomF32(nTokens * nHeads * headDim, 33, 2);
    const gx = t.upload(x);
    await t.run((enc, tr) =>
      encodeRope(t, enc, { x: gx, positions: t.upload(new Uint32Array(positions)), invFreq: t.upload(invFreq), nTokens, nHeads, headDim }, tr),
    );
    const want = Float32Array.from(x);
    applyRope(want, { nTokens, nHeads, headDim }, positions, invFreq);
    expect(maxAbsDiff(await t.readF32(gx, x.length), want)).toBeLessThanOrEqual(2 * TOL);
  });
});

describe('bias add, swiglu, gather rows', () => {
  it('bias add is exact (one f32 add per element)', async () => {
    const t = await testGpu();
    const rows = 5;
    const width = 37;
    const x = randomF32(rows * width, 40, 3);
    const b = randomF32(width, 41);
    const gx = t.upload(x);
    await t.run((enc, tr) => encodeBiasAdd(t, enc, { x: gx, bias: t.upload(b), rows, width }, tr));
    const want = x.map((v, i) => Math.fround(v + b[i % width]));
    expect(bits(await t.readF32(gx, x.length))).toEqual(bits(want));
  });

  it('swiglu matches the CPU within 1e-6 relative for |gate| <= 10, and stays finite at extremes', async () => {
    const t = await testGpu();
    const n = 4096;
    const gate = randomF32(n, 42, 10);
    const up = randomF32(n, 43, 2);
    const out = t.zeros(n * 4);
    await t.run((enc, tr) => encodeSwiglu(t, enc, { gate: t.upload(gate), up: t.upload(up), out, n }, tr));
    const got = await t.readF32(out, n);
    const want = swiglu(gate, up);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-30));
    expect(worst).toBeLessThanOrEqual(1e-6);

    // exp of large arguments is only loosely specified in WGSL: check finiteness, sign and 1e-4.
    const edge = new Float32Array([80, -80, 1e4, -1e4, 3e38, -3e38, 0, -0.5]);
    const ones = new Float32Array(edge.length).fill(1);
    const out2 = t.zeros(edge.length * 4);
    await t.run((enc, tr) => encodeSwiglu(t, enc, { gate: t.upload(edge), up: t.upload(ones), out: out2, n: edge.length }, tr));
    const got2 = await t.readF32(out2, edge.length);
    const want2 = swiglu(edge, ones);
    for (let i = 0; i < edge.length; i++) {
      expect(Number.isFinite(got2[i])).toBe(true);
      expect(Math.abs(got2[i] - want2[i])).toBeLessThanOrEqual(1e-4 * Math.abs(want2[i]));
    }
  });

  it('gather rows copies the named rows exactly; an index past the input gives zeros', async () => {
    const t = await testGpu();
    const width = 40;
    const nIn = 9;
    const input = randomF32(nIn * width, 44);
    const rows = [8, 0, 3, 8];
    const output = t.zeros(rows.length * width * 4);
    await t.run((enc, tr) =>
      encodeGatherRows(t, enc, { input: t.upload(input), rows: t.upload(new Uint32Array(rows)), output, nOut: rows.length, width }, tr),
    );
    const want = new Float32Array(rows.length * width);
    rows.forEach((r, o) => want.set(input.subarray(r * width, (r + 1) * width), o * width));
    expect(bits(await t.readF32(output, want.length))).toEqual(bits(want));

    const out2 = t.zeros(width * 4);
    await t.run((enc, tr) =>
      encodeGatherRows(t, enc, { input: t.upload(input), rows: t.upload(new Uint32Array([1 << 20])), output: out2, nOut: 1, width }, tr),
    );
    expect([...(await t.readF32(out2, width))]).toEqual(new Array(width).fill(0));
  });
});

describe('shape validation', () => {
  it('rejects bad shapes with InvalidRequestError before recording any work', async () => {
    const t = await testGpu();
    const small = t.zeros(64);
    const enc = t.device.createCommandEncoder();
    const tr: GPUBuffer[] = [];
    const table = { buffer: t.zeros(10 * 8 * 4), dtype: 'f32' as const, shape: [10, 8] };
    expect(() => encodeEmbedding(t, enc, { table, tokenIds: small, out: small, nTokens: 2, hidden: 6 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeEmbedding(t, enc, { table, tokenIds: small, out: small, nTokens: 4, hidden: 8 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeRmsNorm(t, enc, { input: small, weight: small, output: t.zeros(64), rows: 2, width: 16, eps: 1e-5 }, tr)).toThrow(
      InvalidRequestError,
    );
    expect(() => encodeRmsNorm(t, enc, { input: small, weight: small, output: small, rows: 1, width: 4, eps: -1 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeRope(t, enc, { x: small, positions: small, invFreq: small, nTokens: 1, nHeads: 1, headDim: 7 }, tr)).toThrow(
      InvalidRequestError,
    );
    expect(() => encodeBiasAdd(t, enc, { x: small, bias: small, rows: 0, width: 4 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeSwiglu(t, enc, { gate: small, up: t.zeros(64), out: small, n: 4 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeGatherRows(t, enc, { input: small, rows: small, output: t.zeros(64), nOut: 2, width: 1.5 }, tr)).toThrow(
      InvalidRequestError,
    );
    expect(tr).toHaveLength(0);
  });
});

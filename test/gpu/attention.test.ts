import { describe, expect, it } from 'vitest';
import { attention } from '../../src/adapters/cpu/ops.ts';
import { InvalidRequestError } from '../../src/domain/errors.ts';
import {
  encodeKvWrite,
  encodePagedAttention,
  type AttentionKernel,
  type KvWriteArgs,
  type PagedAttentionArgs,
} from '../../src/adapters/webgpu/ops/attention.ts';
import { f16ArrayToF32, f32ArrayToF16 } from '../../src/domain/half.ts';
import type { KvDtype } from '../../src/domain/model-cache-spec.ts';
import { maxAbsDiff, randomF32, testGpu, type TestGpu } from './harness.ts';

// Against the CPU reference (f64 accumulation): outputs are O(1) averages of values in [-1, 1],
// the kernel accumulates in f32, so 1e-5 is a comfortable bound (measured errors are printed).
const TOLERANCE = 1e-5;
const N_HEADS = 4;
const N_KV = 2;

/** One sequence: its dense K/V for positions 0..length-1, its block table, its query positions. */
interface Seq {
  readonly length: number;
  readonly table: readonly number[];
  readonly queries: readonly number[];
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** [queries.length, nHeads, headDim] */
  readonly q: Float32Array;
}

interface Layout {
  readonly headDim: number;
  /** The entry point; default: the device's own choice. */
  readonly kernel?: AttentionKernel;
  readonly blockTokens: number;
  readonly poolBlocks: number;
  /** Pool storage (default f32). */
  readonly kvDtype?: KvDtype;
}

/** K/V as an f16 pool holds them: rounded to nearest f16, widened back exactly. */
function roundedKv(s: Seq): Seq {
  return { ...s, k: f16ArrayToF32(f32ArrayToF16(s.k)), v: f16ArrayToF32(f32ArrayToF16(s.v)) };
}

function makeSeq(length: number, table: readonly number[], queries: readonly number[], headDim: number, seed: number): Seq {
  return {
    length,
    table,
    queries,
    k: randomF32(length * N_KV * headDim, seed),
    v: randomF32(length * N_KV * headDim, seed + 1),
    q: randomF32(queries.length * N_HEADS * headDim, seed + 2),
  };
}

/** A copy of `s` read through another block table (same data, other placement). */
function placed(s: Seq, table: readonly number[]): Seq {
  return { ...s, table };
}

function slotOf(s: Seq, pos: number, bt: number): number {
  return s.table[Math.floor(pos / bt)] * bt + (pos % bt);
}

/** The query rows of `s` whose positions are `positions` (a subset of s.queries). */
function querySubset(s: Seq, positions: readonly number[], headDim: number): Seq {
  const row = N_HEADS * headDim;
  const q = new Float32Array(positions.length * row);
  positions.forEach((p, i) => q.set(s.q.subarray(s.queries.indexOf(p) * row, (s.queries.indexOf(p) + 1) * row), i * row));
  return { ...s, queries: positions, q };
}

/**
 * Write every sequence's K/V into freshly garbage-filled pools with the kv-write kernel, then run
 * paged attention over `order` (pairs [sequence index, query index]; default: all, in order).
 * Returns the output rows in `order`.
 */
async function runPaged(t: TestGpu, seqs: readonly Seq[], layout: Layout, order?: readonly (readonly [number, number])[]): Promise<Float32Array> {
  const { headDim: hd, blockTokens: bt } = layout;
  const poolFloats = layout.poolBlocks * bt * N_KV * hd;
  // Stale data in unused slots must never leak into a result.
  const kvDtype = layout.kvDtype ?? 'f32';
  const garbage = (seed: number): Float32Array | Uint16Array => (kvDtype === 'f16' ? f32ArrayToF16(randomF32(poolFloats, seed, 50)) : randomF32(poolFloats, seed, 50));
  const kPool = t.upload(garbage(901));
  const vPool = t.upload(garbage(902));
  const tokens = order ?? seqs.flatMap((s, si) => s.queries.map((_, qi) => [si, qi] as const));
  const row = N_HEADS * hd;
  const q = new Float32Array(tokens.length * row);
  tokens.forEach(([si, qi], i) => q.set(seqs[si].q.subarray(qi * row, (qi + 1) * row), i * row));
  const tables = seqs.flatMap((s) => s.table);
  const offsets: number[] = [];
  seqs.reduce((o, s) => (offsets.push(o), o + s.table.length), 0);
  const writes = seqs.map((s) => ({ k: t.upload(s.k), v: t.upload(s.v), slots: t.upload(new Uint32Array(Array.from({ length: s.length }, (_, p) => slotOf(s, p, bt)))), n: s.length }));
  const args: PagedAttentionArgs = {
    q: t.upload(q),
    kPool,
    vPool,
    kvDtype,
    out: t.zeros(q.byteLength),
    tokenSeq: t.upload(new Uint32Array(tokens.map(([si]) => si))),
    tokenPos: t.upload(new Uint32Array(tokens.map(([si, qi]) => seqs[si].queries[qi]))),
    blockTables: t.upload(new Uint32Array(tables)),
    tableOffsets: t.upload(new Uint32Array(offsets)),
    nTokens: tokens.length,
    nSeqs: seqs.length,
    nHeads: N_HEADS,
    nKvHeads: N_KV,
    headDim: hd,
    blockTokens: bt,
    scale: 1 / Math.sqrt(hd),
    ...(layout.kernel ? { kernel: layout.kernel } : {}),
  };
  await t.run((enc, tr) => {
    for (const w of writes) encodeKvWrite(t, enc, { k: w.k, v: w.v, kPool, vPool, kvDtype, slots: w.slots, nTokens: w.n, nKvHeads: N_KV, headDim: hd }, tr);
    encodePagedAttention(t, enc, args, tr);
  });
  return t.readF32(args.out, q.length);
}

/** CPU reference rows for every query of every sequence, in order. */
function reference(seqs: readonly Seq[], headDim: number): Float32Array {
  const parts = seqs.map((s) =>
    attention({ q: s.q, positions: s.queries, k: s.k, v: s.v, kvLength: s.length, nHeads: N_HEADS, nKvHeads: N_KV, headDim }),
  );
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

function bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
}

function rows(x: Float32Array, from: number, count: number, headDim: number): Float32Array {
  const row = N_HEADS * headDim;
  return x.slice(from * row, (from + count) * row);
}

describe('KV write', () => {
  it('puts every token in its slot and leaves the other slots untouched', async () => {
    const t = await testGpu();
    const hd = 16;
    const row = N_KV * hd;
    const poolSlots = 4 * 16;
    const kInit = randomF32(poolSlots * row, 11);
    const vInit = randomF32(poolSlots * row, 12);
    const kPool = t.upload(kInit);
    const vPool = t.upload(vInit);
    const slots = [37, 3, 16, 63, 0, 1000]; // the last is past the pool: skipped, not clamped
    const k = randomF32(slots.length * row, 13);
    const v = randomF32(slots.length * row, 14);
    const args: KvWriteArgs = { k: t.upload(k), v: t.upload(v), kPool, vPool, slots: t.upload(new Uint32Array(slots)), nTokens: slots.length, nKvHeads: N_KV, headDim: hd };
    await t.run((enc, tr) => encodeKvWrite(t, enc, args, tr));
    const kWant = kInit.slice();
    const vWant = vInit.slice();
    slots.forEach((s, i) => {
      if (s >= poolSlots) return;
      kWant.set(k.subarray(i * row, (i + 1) * row), s * row);
      vWant.set(v.subarray(i * row, (i + 1) * row), s * row);
    });
    expect(bits(await t.readF32(kPool, kInit.length))).toEqual(bits(kWant));
    expect(bits(await t.readF32(vPool, vInit.length))).toEqual(bits(vWant));
  });
});

describe('KV write into an f16 pool', () => {
  it('stores each value rounded to nearest f16 (bitwise the host rounding) and touches no other slot', async () => {
    const t = await testGpu();
    const hd = 16;
    const row = N_KV * hd;
    const poolSlots = 4 * 16;
    const kInit = f32ArrayToF16(randomF32(poolSlots * row, 21));
    const vInit = f32ArrayToF16(randomF32(poolSlots * row, 22));
    const kPool = t.upload(kInit);
    const vPool = t.upload(vInit);
    const slots = [37, 3, 16, 63, 0, 1000]; // the last is past the pool: skipped, not clamped
    // Magnitudes from 1e-6 (f16 subnormals) to 3e4, so rounding is exercised across exponents.
    const spread = (seed: number): Float32Array => randomF32(slots.length * row, seed).map((x, i) => x * 10 ** ((i % 11) - 6) * 3);
    const k = spread(23);
    const v = spread(24);
    const args: KvWriteArgs = { k: t.upload(k), v: t.upload(v), kPool, vPool, kvDtype: 'f16', slots: t.upload(new Uint32Array(slots)), nTokens: slots.length, nKvHeads: N_KV, headDim: hd };
    await t.run((enc, tr) => encodeKvWrite(t, enc, args, tr));
    const kWant = kInit.slice();
    const vWant = vInit.slice();
    slots.forEach((s, i) => {
      if (s >= poolSlots) return;
      kWant.set(f32ArrayToF16(k.subarray(i * row, (i + 1) * row)), s * row);
      vWant.set(f32ArrayToF16(v.subarray(i * row, (i + 1) * row)), s * row);
    });
    const read = async (b: GPUBuffer): Promise<Uint16Array> => new Uint16Array(await t.buffers.read(b, kInit.byteLength));
    const [kGot, vGot] = [await read(kPool), await read(vPool)];
    const mismatches = kGot.reduce((n, h, i) => n + (h !== kWant[i] ? 1 : 0), 0) + vGot.reduce((n, h, i) => n + (h !== vWant[i] ? 1 : 0), 0);
    console.log(`f16 KV write: ${mismatches} of ${2 * kGot.length} halves differ from round-to-nearest-even`);
    expect(mismatches).toBe(0);
  });
});

// Both entry points: 'tiled' (GPUs) and 'serial' (CPU adapters), whatever this device picks.
for (const kernel of ['tiled', 'serial'] as const) {
describe(`paged attention vs the CPU reference (${kernel} entry point)`, () => {
  it('f16 pool: decode and a prefill chunk match the reference on f16-rounded K/V (same 1e-5)', async () => {
    const t = await testGpu();
    const hd = 32;
    const seqs = [makeSeq(27, [5, 1], [20, 21, 22, 23, 24, 25, 26], hd, 800), makeSeq(40, [4, 9, 0], [39], hd, 900)];
    const got = await runPaged(t, seqs, { headDim: hd, blockTokens: 16, poolBlocks: 10, kernel, kvDtype: 'f16' });
    const err = maxAbsDiff(got, reference(seqs.map(roundedKv), hd));
    const vsExact = maxAbsDiff(got, reference(seqs, hd));
    console.log(`paged attention f16 KV: max abs err ${err.toExponential(2)} vs the f16-rounded reference, ${vsExact.toExponential(2)} vs exact K/V`);
    expect(err).toBeLessThanOrEqual(TOLERANCE);
  }, 180_000); // compiles the f16 variants of both kernels (tens of seconds on a loaded SwiftShader)

  for (const hd of [16, 32]) {
    it(`decode: 3 sequences (lengths 1, 17, 40), scattered blocks, GQA 4/2, headDim ${hd}`, async () => {
      const t = await testGpu();
      const seqs = [
        makeSeq(1, [7], [0], hd, 100),
        makeSeq(17, [9, 2], [16], hd, 200),
        makeSeq(40, [4, 11, 0], [39], hd, 300),
      ];
      const got = await runPaged(t, seqs, { headDim: hd, blockTokens: 16, poolBlocks: 12, kernel });
      const err = maxAbsDiff(got, reference(seqs, hd));
      console.log(`paged attention decode headDim ${hd}: max abs err ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(TOLERANCE);
    });
  }

  it('chunked prefill: 7 new tokens after a cached prefix of 20, with other sequences in the batch', async () => {
    const t = await testGpu();
    const hd = 32;
    const seqs = [
      makeSeq(27, [5, 1], [20, 21, 22, 23, 24, 25, 26], hd, 400),
      makeSeq(5, [3], [0, 1, 2, 3, 4], hd, 500), // a prompt's first chunk
      makeSeq(33, [8, 6, 2], [32], hd, 600), // a decode token
    ];
    const got = await runPaged(t, seqs, { headDim: hd, blockTokens: 16, poolBlocks: 10, kernel });
    const err = maxAbsDiff(got, reference(seqs, hd));
    console.log(`paged attention chunked prefill: max abs err ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(TOLERANCE);
  });

  it('long context across many tiles and blocks (200 positions, chunk at the end)', async () => {
    const t = await testGpu();
    const hd = 16;
    const table = [12, 3, 7, 0, 9, 1, 14, 5, 2, 11, 6, 13, 4];
    const seqs = [makeSeq(200, table, [196, 197, 198, 199], hd, 700)];
    const got = await runPaged(t, seqs, { headDim: hd, blockTokens: 16, poolBlocks: 15, kernel });
    const err = maxAbsDiff(got, reference(seqs, hd));
    console.log(`paged attention 200-token context: max abs err ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe(`paged attention is bitwise invariant (${kernel} entry point)`, () => {
  const hd = 16;

  it('to the rest of the batch (alone vs with other sequences, in any order)', async () => {
    const t = await testGpu();
    const target = makeSeq(40, [4, 11, 0], [39], hd, 800);
    const others = [makeSeq(17, [9, 2], [16], hd, 810), makeSeq(27, [5, 1], [20, 21, 22, 23, 24, 25, 26], hd, 820)];
    const alone = await runPaged(t, [target], { headDim: hd, blockTokens: 16, poolBlocks: 12, kernel });
    const seqs = [others[0], target, others[1]];
    const order = [[2, 0], [2, 1], [1, 0], [0, 0], [2, 2], [2, 3], [2, 4], [2, 5], [2, 6]] as const;
    const batched = await runPaged(t, seqs, { headDim: hd, blockTokens: 16, poolBlocks: 12, kernel }, order);
    expect(bits(rows(batched, 2, 1, hd))).toEqual(bits(alone));
  });

  it('to the block size (16 vs one block of 256) and to block placement (scattered vs contiguous)', async () => {
    const t = await testGpu();
    const base = makeSeq(200, [12, 3, 7, 0, 9, 1, 14, 5, 2, 11, 6, 13, 4], [190, 195, 199], hd, 900);
    const scattered = await runPaged(t, [base], { headDim: hd, blockTokens: 16, poolBlocks: 15, kernel });
    const contiguous = await runPaged(t, [placed(base, Array.from({ length: 13 }, (_, i) => i))], { headDim: hd, blockTokens: 16, poolBlocks: 15, kernel });
    const oneBlock = await runPaged(t, [placed(base, [1])], { headDim: hd, blockTokens: 256, poolBlocks: 2, kernel });
    expect(bits(contiguous)).toEqual(bits(scattered));
    expect(bits(oneBlock)).toEqual(bits(scattered));
  });

  it('to how the token is processed (decode token vs last token of a prefill chunk)', async () => {
    const t = await testGpu();
    const chunk = makeSeq(27, [5, 1], [20, 21, 22, 23, 24, 25, 26], hd, 1000);
    const inChunk = await runPaged(t, [chunk, makeSeq(9, [7], [4, 5, 6, 7, 8], hd, 1010)], { headDim: hd, blockTokens: 16, poolBlocks: 8, kernel });
    const decode = await runPaged(t, [querySubset(placed(chunk, [2, 6]), [26], hd)], { headDim: hd, blockTokens: 16, poolBlocks: 8, kernel });
    expect(bits(decode)).toEqual(bits(rows(inChunk, 6, 1, hd)));
  });
});
}

describe('shape validation', () => {
  it('refuses bad shapes with InvalidRequestError before any GPU work', async () => {
    const t = await testGpu();
    const hd = 16;
    const buf = (bytes: number): GPUBuffer => t.zeros(bytes);
    const kPool = buf(4 * 16 * N_KV * hd * 4);
    const vPool = buf(4 * 16 * N_KV * hd * 4);
    const good: PagedAttentionArgs = {
      q: buf(2 * N_HEADS * hd * 4),
      kPool,
      vPool,
      out: buf(2 * N_HEADS * hd * 4),
      tokenSeq: buf(8),
      tokenPos: buf(8),
      blockTables: buf(16),
      tableOffsets: buf(8),
      nTokens: 2,
      nSeqs: 2,
      nHeads: N_HEADS,
      nKvHeads: N_KV,
      headDim: hd,
      blockTokens: 16,
      scale: 0.25,
    };
    const kv: KvWriteArgs = { k: buf(2 * N_KV * hd * 4), v: buf(2 * N_KV * hd * 4), kPool, vPool, slots: buf(8), nTokens: 2, nKvHeads: N_KV, headDim: hd };
    const badAttention: Partial<PagedAttentionArgs>[] = [
      { nKvHeads: 3 },
      { headDim: 256 },
      { blockTokens: 12 },
      { nTokens: 1.5 },
      { nTokens: 3 }, // q holds two tokens
      { scale: Number.NaN },
      { out: good.q },
      { kPool: buf(16) },
      { tableOffsets: buf(4) },
    ];
    const badKv: Partial<KvWriteArgs>[] = [{ vPool: kPool }, { nTokens: 3 }, { headDim: 0 }, { slots: buf(4) }, { kPool: kv.k }];
    const live = t.buffers.stats().liveBuffers;
    const compiled = t.pipelines.compileCount;
    const encoder = t.device.createCommandEncoder({ label: 'validation' });
    for (const bad of badAttention) {
      expect(() => encodePagedAttention(t, encoder, { ...good, ...bad }, []), JSON.stringify(Object.keys(bad))).toThrow(InvalidRequestError);
    }
    for (const bad of badKv) {
      expect(() => encodeKvWrite(t, encoder, { ...kv, ...bad }, []), JSON.stringify(Object.keys(bad))).toThrow(InvalidRequestError);
    }
    // Nothing was recorded, compiled or allocated (buffers made by the cases above aside).
    expect(t.pipelines.compileCount).toBe(compiled);
    expect(t.buffers.stats().liveBuffers).toBe(live);
    encoder.finish();
  });
});

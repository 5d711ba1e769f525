import { describe, expect, it } from 'vitest';
import { argmax } from '../../src/adapters/cpu/ops.ts';
import { encodeSample, packSampleParams, sampleCpu, type SampleRequest } from '../../src/adapters/webgpu/ops/sampling.ts';
import { InvalidRequestError } from '../../src/domain/errors.ts';
import { randomF32, testGpu } from './harness.ts';

/** Sample every row of `logits` ([reqs.length, vocab]) on the GPU; returns the token ids. */
async function gpuSample(logits: Float32Array, vocab: number, reqs: readonly SampleRequest[]): Promise<Uint32Array> {
  const t = await testGpu();
  const nSeqs = reqs.length;
  const out = t.zeros(nSeqs * 4);
  const params = t.upload(new Uint32Array(packSampleParams(reqs)));
  await t.run((enc, tr) => encodeSample(t, enc, { logits: t.upload(logits), params, out, nSeqs, vocab }, tr));
  return t.readU32(out, nSeqs);
}

function row(logits: Float32Array, vocab: number, s: number): Float32Array {
  return logits.subarray(s * vocab, (s + 1) * vocab);
}

const req = (over: Partial<SampleRequest>): SampleRequest => ({ temperature: 1, topK: 0, topP: 1, seed: 0, step: 0, ...over });

describe('GPU sampling: greedy', () => {
  it('equals the CPU argmax exactly, ties to the lowest index', async () => {
    const vocab = 3000;
    const nSeqs = 6;
    const logits = randomF32(nSeqs * vocab, 50, 4);
    // Rows 0-2: values on a coarse grid, so the maximum is tied at many indices across threads.
    for (let i = 0; i < 3 * vocab; i++) logits[i] = Math.round(logits[i]);
    row(logits, vocab, 3).fill(2.5); // all equal -> 0
    row(logits, vocab, 4).fill(-Infinity);
    const r5 = row(logits, vocab, 5);
    r5[2999] = 10;
    r5[257] = 10; // tie across two threads' strides
    const got = await gpuSample(logits, vocab, Array.from({ length: nSeqs }, () => req({ temperature: 0 })));
    const want = Array.from({ length: nSeqs }, (_, s) => argmax(row(logits, vocab, s)));
    expect([...got]).toEqual(want);
    expect(want.slice(3)).toEqual([0, 0, 257]);
  });

  it('top-k = 1 at any temperature equals greedy', async () => {
    const vocab = 700;
    const nSeqs = 8;
    const logits = randomF32(nSeqs * vocab, 51, 3);
    const reqs = Array.from({ length: nSeqs }, (_, s) => req({ temperature: 0.3 + s * 0.2, topK: 1, topP: 0.9, seed: s }));
    const got = await gpuSample(logits, vocab, reqs);
    expect([...got]).toEqual(Array.from({ length: nSeqs }, (_, s) => argmax(row(logits, vocab, s))));
  });
});

describe('GPU sampling: temperature > 0', () => {
  it('equals sampleCpu for many seeds and settings (mismatch rate <= 1%)', async () => {
    // The CPU mirror repeats every f32 rounding and summation order; only the GPU exp can differ
    // (a few ulp), which can flip a draw landing within ~1e-6 of a boundary: rare, not impossible.
    const vocab = 1000;
    const configs: Array<Partial<SampleRequest>> = [
      { temperature: 1 },
      { temperature: 0.7, topK: 40 },
      { temperature: 1.3, topP: 0.9 },
      { temperature: 0.8, topK: 50, topP: 0.8 },
      { temperature: 2, topK: 5 },
      { temperature: 0.5, topP: 0.3 },
    ];
    let total = 0;
    let mismatches = 0;
    for (let c = 0; c < configs.length; c++) {
      const nSeqs = 48;
      const logits = randomF32(nSeqs * vocab, 60 + c, 6);
      const reqs = Array.from({ length: nSeqs }, (_, s) => req({ ...configs[c], seed: 1000 * c + s * 7919, step: s }));
      const got = await gpuSample(logits, vocab, reqs);
      for (let s = 0; s < nSeqs; s++) {
        total++;
        if (got[s] !== sampleCpu(row(logits, vocab, s), reqs[s])) mismatches++;
      }
    }
    expect(total).toBe(288);
    expect(mismatches / total).toBeLessThanOrEqual(0.01);
  });

  it('same (seed, step) gives the same token across runs and batch compositions', async () => {
    const vocab = 512;
    const target = randomF32(vocab, 70, 2);
    const mine = req({ temperature: 1.1, topK: 100, topP: 0.95, seed: 12345, step: 9 });
    const others = randomF32(5 * vocab, 71, 2);
    const results: number[] = [];
    for (const [position, batch] of [[0, 1], [0, 4], [3, 4], [5, 6]] as const) {
      const logits = new Float32Array(batch * vocab);
      const reqs: SampleRequest[] = [];
      for (let s = 0, o = 0; s < batch; s++) {
        if (s === position) {
          logits.set(target, s * vocab);
          reqs.push(mine);
        } else {
          logits.set(row(others, vocab, o++), s * vocab);
          reqs.push(req({ temperature: 0.5 + s, topK: s, seed: 77 + s, step: s }));
        }
      }
      for (let run = 0; run < 2; run++) results.push((await gpuSample(logits, vocab, reqs))[position]);
    }
    expect(new Set(results).size).toBe(1);
    expect(results[0]).toBe(sampleCpu(target, mine));
    // A different step draws anew (not a fixed token per seed).
    const steps = await gpuSample(
      new Float32Array(vocab * 16).map((_, i) => target[i % vocab]),
      vocab,
      Array.from({ length: 16 }, (_, s) => ({ ...mine, step: s })),
    );
    expect(new Set(steps).size).toBeGreaterThan(1);
  });

  it('2000 draws over different seeds match the softmax within 4.5 sigma per token (and 1000 with top-k)', async () => {
    // Bound: |freq - p| <= 4.5 * sqrt(p (1 - p) / n) for each token; the seeds are fixed, so the
    // test is deterministic, and 4.5 sigma leaves a wide margin for an honest RNG.
    const base = new Float32Array([1.2, 0.3, -0.5, 2.0, 0.0, -1.5, 0.8, 1.6]);
    const vocab = base.length;
    for (const [temperature, topK, n] of [[1, 0, 2000], [0.8, 3, 1000]] as const) {
      const logits = new Float32Array(n * vocab).map((_, i) => base[i % vocab]);
      const reqs = Array.from({ length: n }, (_, s) => req({ temperature, topK, seed: s * 2654435761 >>> 0, step: 3 }));
      const got = await gpuSample(logits, vocab, reqs);
      const counts = new Array<number>(vocab).fill(0);
      for (const id of got) counts[id]++;
      const kept = [...base].map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v).slice(0, topK || vocab).map((e) => e.i);
      const weights = [...base].map((v, i) => (kept.includes(i) ? Math.exp(v / temperature) : 0));
      const sum = weights.reduce((a, b) => a + b, 0);
      for (let i = 0; i < vocab; i++) {
        const p = weights[i] / sum;
        expect(Math.abs(counts[i] / n - p)).toBeLessThanOrEqual(4.5 * Math.sqrt((p * (1 - p)) / n));
      }
    }
  });

  it('top-k and top-p never emit an excluded token', async () => {
    const vocab = 400;
    const nSeqs = 64;
    const logits = randomF32(nSeqs * vocab, 80, 5);
    for (const cfg of [{ topK: 5, topP: 1 }, { topK: 0, topP: 0.5 }, { topK: 12, topP: 0.7 }]) {
      const temperature = 0.9;
      const reqs = Array.from({ length: nSeqs }, (_, s) => req({ ...cfg, temperature, seed: s + 1, step: 2 * s }));
      const got = await gpuSample(logits, vocab, reqs);
      for (let s = 0; s < nSeqs; s++) {
        // Independent definition, in f64: sort descending, keep top-k, softmax, keep the
        // smallest prefix whose cumulative probability reaches top-p.
        const r = row(logits, vocab, s);
        const order = [...r.keys()].sort((a, b) => r[b] - r[a]).slice(0, cfg.topK || vocab);
        const w = order.map((i) => Math.exp((r[i] - r[order[0]]) / temperature));
        const sum = w.reduce((a, b) => a + b, 0);
        let cum = 0;
        let n = 0;
        while (n < order.length && cum < cfg.topP) cum += w[n++] / sum;
        // Where the cumulative mass lands within float noise of top-p, f32 may also keep the
        // next token; it can never drop one, since the mass before the last kept token is far
        // below top-p.
        const nearBoundary = cfg.topP < 1 && Math.abs(cum - cfg.topP) < 1e-4;
        expect(order.slice(0, n + (nearBoundary ? 1 : 0))).toContain(got[s]);
      }
    }
  });

  it('handles a 200k vocabulary (greedy, top-k + top-p, and top-p over the whole vocabulary)', async () => {
    const vocab = 200_000;
    const logits = randomF32(3 * vocab, 90, 8);
    const reqs = [req({ temperature: 0 }), req({ temperature: 0.8, topK: 50, topP: 0.9, seed: 5 }), req({ temperature: 1, topP: 0.95, seed: 6 })];
    const got = await gpuSample(logits, vocab, reqs);
    expect(got[0]).toBe(argmax(row(logits, vocab, 0)));
    expect(got[1]).toBe(sampleCpu(row(logits, vocab, 1), reqs[1]));
    expect(got[2]).toBe(sampleCpu(row(logits, vocab, 2), reqs[2]));
  });
});

describe('GPU sampling: validation', () => {
  it('rejects invalid arguments with InvalidRequestError', async () => {
    const bad: Array<Partial<SampleRequest>> = [
      { temperature: -1 },
      { temperature: Number.NaN },
      { temperature: Infinity },
      { temperature: 1e39 },
      { topK: 1.5 },
      { topK: -1 },
      { topP: 0 },
      { topP: 1.01 },
      { seed: -1 },
      { seed: 2 ** 32 },
      { step: 0.5 },
    ];
    for (const b of bad) {
      expect(() => packSampleParams([req(b)])).toThrow(InvalidRequestError);
      expect(() => sampleCpu(new Float32Array(4), req(b))).toThrow(InvalidRequestError);
    }
    expect(() => sampleCpu(new Float32Array(0), req({}))).toThrow(InvalidRequestError);

    const t = await testGpu();
    const enc = t.device.createCommandEncoder();
    const tr: GPUBuffer[] = [];
    const small = t.zeros(64);
    expect(() => encodeSample(t, enc, { logits: small, params: small, out: small, nSeqs: 0, vocab: 4 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeSample(t, enc, { logits: small, params: small, out: small, nSeqs: 1, vocab: 0 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeSample(t, enc, { logits: small, params: small, out: small, nSeqs: 1, vocab: 100 }, tr)).toThrow(InvalidRequestError);
    expect(() => encodeSample(t, enc, { logits: small, params: small, out: small, nSeqs: 3, vocab: 4 }, tr)).toThrow(InvalidRequestError);
    expect(tr).toHaveLength(0);
  });
});

import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { argmax, generationDefaults, penaltyEntries, validateSampling, type SamplingParams, type TokenHistory } from '../../src/domain/sampling.ts';
import { generateBatch } from './lockstep.ts';
import { loadCpuModel } from '../../src/adapters/cpu/index.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { encodePenalties, packPenaltyEntries, penalizeCpu } from '../../src/adapters/webgpu/ops/penalties.ts';
import { encodeSample, packSampleParams, sampleCpu, type SampleRequest } from '../../src/adapters/webgpu/ops/sampling.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { maxAbsDiff, randomF32, testGpu } from './harness.ts';

/**
 * repetition_penalty, presence/frequency penalties and min_p: the domain's validation and
 * generation_config defaults, the GPU kernels against their CPU mirrors (ops/penalties.ts,
 * sampleCpu), the mirror against a plain f64 transcription of HF's / OpenAI's formulas, and
 * greedy decoding with a repetition penalty through the whole tiny-llama model against the CPU
 * reference model plus the CPU penalty.
 */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
const base: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0 };
const vocab = 600;

/** HF RepetitionPenaltyLogitsProcessor then OpenAI presence/frequency, in f64, written plainly. */
function referencePenalty(logits: Float32Array, p: SamplingParams, h: TokenHistory): Float64Array {
  const out = Float64Array.from(logits);
  const seen = new Set([...h.promptIds, ...h.generated]);
  for (const t of seen) {
    const r = p.repetitionPenalty ?? 1;
    out[t] = out[t] > 0 ? out[t] / r : out[t] * r;
    const c = h.generated.filter((g) => g === t).length;
    out[t] -= (p.frequencyPenalty ?? 0) * c + (c > 0 ? (p.presencePenalty ?? 0) : 0);
  }
  return out;
}

function history(seed: number): TokenHistory {
  const ids = (n: number, s: number): number[] => Array.from({ length: n }, (_, i) => (s * 37 + i * i * 13 + i * 7) % 97);
  return { promptIds: ids(40, seed), generated: ids(25, seed + 5) };
}

describe('sampling processors: domain', () => {
  it('validates ranges with InvalidRequestError and keeps only what is given', () => {
    // An unset seed is drawn at random.
    expect(validateSampling({ repetitionPenalty: 1.1, minP: 0.05 })).toEqual({ ...base, seed: expect.any(Number), repetitionPenalty: 1.1, minP: 0.05 });
    for (const bad of [{ repetitionPenalty: 0 }, { repetitionPenalty: Number.NaN }, { presencePenalty: 2.5 }, { frequencyPenalty: -3 }, { minP: 1.5 }, { minP: -0.1 }]) {
      expect(() => validateSampling(bad)).toThrow(expect.objectContaining({ name: 'InvalidRequestError' }));
    }
  });

  it('counts prompt and output occurrences per distinct token, only when a penalty is on', () => {
    const h = { promptIds: [5, 3, 5], generated: [3, 9, 3] };
    expect(penaltyEntries(base, h)).toEqual([]);
    expect(penaltyEntries({ ...base, presencePenalty: 0.5 }, h)).toEqual([
      { token: 3, promptCount: 1, outputCount: 2 },
      { token: 5, promptCount: 2, outputCount: 0 },
      { token: 9, promptCount: 0, outputCount: 1 },
    ]);
  });

  it('generation_config defaults: sampling fields only with do_sample, repetition_penalty always', () => {
    const qwen = { do_sample: true, temperature: 0.7, top_p: 0.8, top_k: 20, repetition_penalty: 1.1 };
    expect(generationDefaults(qwen)).toEqual({ temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.1 });
    expect(generationDefaults({ ...qwen, do_sample: false })).toEqual({ repetitionPenalty: 1.1 });
    expect(generationDefaults({ bos_token_id: 1 })).toEqual({});
    expect(generationDefaults(null)).toEqual({});
    // A request overrides a default field by field.
    expect(validateSampling({ ...generationDefaults(qwen), temperature: 0 })).toMatchObject({ temperature: 0, topK: 20, repetitionPenalty: 1.1 });
  });
});

describe('sampling processors: GPU kernels vs CPU', () => {
  const settings: SamplingParams[] = [
    { ...base, repetitionPenalty: 1.3 },
    { ...base, repetitionPenalty: 0.8, presencePenalty: 0.5 },
    { ...base, frequencyPenalty: 0.7 },
    { ...base, repetitionPenalty: 1.1, presencePenalty: -0.4, frequencyPenalty: 1.5 },
    base,
  ];

  it('penalize: GPU equals the CPU mirror bitwise, and the mirror equals the formulas (1e-6)', async () => {
    const t = await testGpu();
    const rows = settings.map((s, i) => ({ sampling: s, history: history(i) }));
    const logits = randomF32(rows.length * vocab, 77, 6);
    const buf = t.upload(logits);
    const params = t.upload(new Uint32Array(packSampleParams(settings.map((s) => ({ ...s, step: 0 })))));
    const entries = packPenaltyEntries(rows, vocab);
    await t.run((enc, tr) => encodePenalties(t, enc, { logits: buf, params, entries, rows: rows.length, vocab }, tr));
    const got = await t.readF32(buf, logits.length);
    rows.forEach((r, i) => {
      const row = logits.subarray(i * vocab, (i + 1) * vocab);
      const cpu = penalizeCpu(row, r);
      expect([...got.subarray(i * vocab, (i + 1) * vocab)]).toEqual([...cpu]);
      expect(maxAbsDiff(cpu, referencePenalty(row, r.sampling, r.history))).toBeLessThanOrEqual(1e-6);
    });
    // The last row has no penalty: untouched.
    expect([...got.subarray(4 * vocab)]).toEqual([...logits.subarray(4 * vocab)]);
  });

  it('min_p: GPU draws equal sampleCpu, and every draw has p >= min_p * p_max', async () => {
    const t = await testGpu();
    const reqs: SampleRequest[] = [];
    for (let s = 0; s < 48; s++) reqs.push({ temperature: 0.6 + (s % 4) * 0.3, topK: s % 3 === 0 ? 50 : 0, topP: s % 5 === 0 ? 0.9 : 1, minP: [0.05, 0.2, 0.5][s % 3], seed: s, step: s });
    const logits = randomF32(reqs.length * vocab, 91, 5);
    const out = t.zeros(reqs.length * 4);
    const params = t.upload(new Uint32Array(packSampleParams(reqs)));
    await t.run((enc, tr) => encodeSample(t, enc, { logits: t.upload(logits), params, out, nSeqs: reqs.length, vocab }, tr));
    const got = [...(await t.readU32(out, reqs.length))];
    const want = reqs.map((r, s) => sampleCpu(logits.subarray(s * vocab, (s + 1) * vocab), r));
    const mismatches = got.filter((g, i) => g !== want[i]).length;
    expect(mismatches).toBeLessThanOrEqual(1); // the GPU exp may differ by ulps (see sampling.test.ts)
    got.forEach((token, s) => {
      const row = logits.subarray(s * vocab, (s + 1) * vocab);
      const z = (i: number): number => row[i] / reqs[s].temperature;
      const zmax = z(argmax(row));
      expect(Math.exp(z(token) - zmax)).toBeGreaterThanOrEqual((reqs[s].minP ?? 0) * (1 - 1e-5));
    });
  });

  it('min_p = 1 keeps only the most likely token', async () => {
    const logits = randomF32(vocab, 92, 5);
    for (let seed = 0; seed < 5; seed++) expect(sampleCpu(logits, { temperature: 1, topK: 0, topP: 1, minP: 1, seed, step: 0 })).toBe(argmax(logits));
  });
});

describe('sampling processors: whole model (tiny-llama)', () => {
  it('greedy with repetition and frequency penalties: same tokens and logits (1e-3) as the CPU reference + CPU penalty', async () => {
    const source = new FsModelSource(join(MODELS, 'tiny-llama'));
    const { model } = await loadCpuModel(source);
    const sampling: SamplingParams = { ...base, repetitionPenalty: 1.5, frequencyPenalty: 0.5 };
    const promptIds = [7, 7, 19, 301, 19, 44, 7, 120];
    const steps = 16;
    const cache = model.createCache(promptIds.length + steps);
    const generated: number[] = [];
    const cpuLogits: Float32Array[] = [];
    let logits = model.forward(promptIds, cache, { lastOnly: true });
    for (let i = 0; i < steps; i++) {
      const penalized = penalizeCpu(logits, { sampling, history: { promptIds, generated } });
      cpuLogits.push(penalized);
      generated.push(argmax(penalized));
      if (i + 1 < steps) logits = model.forward([generated[i]], cache, { lastOnly: true });
    }
    const plain = model.generateGreedy(promptIds, steps, { eosTokenIds: [] });
    // The penalty must change the output, or this test could not fail.
    expect(generated).not.toEqual(plain.tokens);

    const t = await testGpu();
    const backend = await WebGpuBackend.load(t.gpu, source, { kvBudgetBytes: 2 * 1024 * 1024, kvDtype: 'f32' }); // as the CPU reference
    try {
      const [gpu] = await generateBatch(backend, new BlockPool(backend.totalBlocks), [{ promptIds, maxTokens: steps, sampling }], { returnLogits: true });
      expect(gpu.tokens).toEqual(generated);
      expect(Math.max(...gpu.logits.map((row, i) => maxAbsDiff(row, cpuLogits[i])))).toBeLessThanOrEqual(1e-3);
    } finally {
      backend.dispose();
    }
  });
});

describe('logit bias (OpenAI logit_bias)', () => {
  it('adds each bias after the penalties: GPU equals the CPU mirror bitwise; repetition skips tokens that never occurred', async () => {
    const t = await testGpu();
    const logitBias = [[3, 2.5], [vocab - 1, -100], [40, 0.75]] as const;
    const s: SamplingParams = { ...base, repetitionPenalty: 1.3, logitBias };
    const h = { promptIds: [3, 9], generated: [9] };
    const logits = randomF32(vocab, 93, 6);
    const buf = t.upload(logits);
    const params = t.upload(new Uint32Array(packSampleParams([{ ...s, step: 0 }])));
    const entries = packPenaltyEntries([{ sampling: s, history: h }], vocab);
    await t.run((enc, tr) => encodePenalties(t, enc, { logits: buf, params, entries, rows: 1, vocab }, tr));
    const got = await t.readF32(buf, vocab);
    const cpu = penalizeCpu(logits, { sampling: s, history: h });
    expect([...got]).toEqual([...cpu]);
    const rep = (l: number): number => (l > 0 ? l / 1.3 : l * 1.3);
    expect(got[3]).toBeCloseTo(rep(logits[3]) + 2.5, 5); // occurs and biased
    expect(got[9]).toBeCloseTo(rep(logits[9]), 5); // occurs only
    expect(got[40]).toBeCloseTo(logits[40] + 0.75, 5); // biased only: no repetition penalty
    expect(got[vocab - 1]).toBeCloseTo(logits[vocab - 1] - 100, 4);
    expect(got[5]).toBe(logits[5]);
    expect(() => validateSampling({ logitBias: [[1, 101]] })).toThrow(expect.objectContaining({ name: 'InvalidRequestError' }));
    expect(() => validateSampling({ logitBias: [[1, 1], [1, 2]] })).toThrow(expect.objectContaining({ name: 'InvalidRequestError' }));
  });
});

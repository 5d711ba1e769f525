/**
 * llama.cpp as the oracle of the GGUF path. Each committed GGUF fixture runs through llama.cpp
 * (npm node-llama-cpp 3.21.1, its prebuilt linux-x64 CPU binary) and through our CPU reference on
 * the weights our GGUF loader dequantizes (names mapped, llama Q/K unpermuted, rope_freqs read).
 *
 * llama.cpp decodes greedily from a fixed prompt; we score the same token path. Tokens must agree
 * wherever llama.cpp's top-2 logit gap exceeds 1% of its logit range: its CPU matmuls quantize
 * activations (to Q8_0/Q8_K, F16, BF16 per weight type), so closer calls may flip. Logits are
 * compared as log-softmax (node-llama-cpp hands out probabilities, i.e. logits up to a constant);
 * the max-abs error is printed, and bounded so that a wrong block layout or permutation fails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, LlamaLogLevel, type Llama, type Token } from 'node-llama-cpp';
import { CpuReferenceModel } from '../src/adapters/cpu/index.ts';
import { dequantizeWeight, MemoryRangeSource, openGgufModel, readGgufWeightsF32 } from '../src/adapters/gguf/index.ts';

const GGUF_DIR = join(import.meta.dirname, '..', 'public', 'models', 'gguf');
const STEPS = 16;

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - lse);
}

interface OracleStep {
  readonly token: number;
  /** log p for every vocab id. */
  readonly logProbs: Float64Array;
}

let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
});

async function llamaCppGreedy(file: string, promptIds: readonly number[], vocab: number): Promise<OracleStep[]> {
  // node-llama-cpp brands token ids; ours are plain vocab indices of the same file.
  const prompt = promptIds as readonly Token[];
  const model = await llama.loadModel({ modelPath: join(GGUF_DIR, file), gpuLayers: 0 });
  try {
    const ctx = await model.createContext({ contextSize: 128, batchSize: 128, threads: 1, sequences: 1 });
    const seq = ctx.getSequence();
    const steps: OracleStep[] = [];
    const next = { generateNext: { probabilities: true, token: true, options: { temperature: 0 } } } as const;
    let input: Parameters<typeof seq.controlledEvaluate>[0] = [...prompt.slice(0, -1), [prompt[prompt.length - 1], next]];
    for (let s = 0; s < STEPS; s++) {
      const out = await seq.controlledEvaluate(input);
      const result = out[out.length - 1]?.next;
      if (result?.token == null || result.probabilities === undefined) throw new TypeError('llama.cpp returned no token');
      const logProbs = new Float64Array(vocab).fill(-Infinity);
      for (const [id, p] of result.probabilities) logProbs[id] = Math.log(p);
      steps.push({ token: result.token, logProbs });
      input = [[result.token, next]];
    }
    await ctx.dispose();
    return steps;
  } finally {
    await model.dispose();
  }
}

describe('GGUF fixtures: our CPU reference on the dequantized weights vs llama.cpp', () => {
  it.each([
    ['tiny-llama-q8_0.gguf', [512, 72, 101, 108, 108, 111, 44, 32]],
    ['tiny-qwen2-q4_0.gguf', [513, 72, 101, 108, 108, 111]],
    ['tiny-qwen3-q8_0.gguf', [513, 87, 104, 97, 116]],
    ['llama-k-mix.gguf', [512, 84, 104, 101, 32, 113]],
  ])('%s', async (file, prompt) => {
    const gguf = await openGgufModel(new MemoryRangeSource(new Uint8Array(readFileSync(join(GGUF_DIR, file)))));
    const ours = new CpuReferenceModel(gguf.config, await readGgufWeightsF32(gguf, dequantizeWeight));
    const oracle = await llamaCppGreedy(file, prompt, gguf.config.vocabSize);

    const cache = ours.createCache(prompt.length + STEPS);
    let logits = ours.forward(prompt, cache, { lastOnly: true });
    let maxAbs = 0, compared = 0, decisive = 0;
    const mismatches: string[] = [];
    for (const [s, step] of oracle.entries()) {
      const mine = logSoftmax(logits);
      const finite = [...step.logProbs.entries()].filter(([, v]) => Number.isFinite(v));
      const sorted = finite.map(([, v]) => v).sort((a, b) => b - a);
      const range = sorted[0] - sorted[sorted.length - 1];
      for (const [id, v] of finite) maxAbs = Math.max(maxAbs, Math.abs(mine[id] - v));
      compared++;
      const myToken = mine.indexOf(Math.max(...mine));
      if (sorted[0] - sorted[1] > 0.01 * range) {
        decisive++;
        if (myToken !== step.token) mismatches.push(`step ${s}: llama.cpp ${step.token}, ours ${myToken}`);
      }
      logits = ours.forward([step.token], cache, { lastOnly: true });
    }
    console.log(`${file}: ${compared} steps (${decisive} decisive), tokens ${oracle.map((o) => o.token).join(' ')}, logit max-abs error ${maxAbs.toExponential(2)}`);
    expect(mismatches).toEqual([]);
    expect(decisive).toBeGreaterThan(STEPS / 4);
    expect(maxAbs).toBeLessThan(0.25);
  });
});

import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/domain/model-config.ts';
import { bytesForTokens, createModelCacheSpec } from '../src/domain/model-cache-spec.ts';
import { formatModelMemory, KV_TOKENS, modelMemory, paramCounts } from '../bench/model-memory.ts';
import { TWINS } from '../tools/twin-specs.ts';

/**
 * The bench's memory table (bench/model-memory.ts) is computed from config.json alone; these
 * checks tie it to independent facts: the published parameter counts of the four models, the KV
 * cache spec's own byte count, and the q4 bound (≤ 0.32x the 16-bit bytes).
 */
describe('memory table of the real models (full layer count)', () => {
  // Parameter counts the model cards state (tied embeddings counted once), to 1 %.
  const PUBLISHED: Record<string, number> = {
    'smollm2-135m': 134.5e6,
    'qwen2.5-0.5b': 494e6,
    'llama3.2-1b': 1.236e9,
    'qwen3-0.6b': 596e6,
  };

  it.each(TWINS.map((t) => [t.id, t] as const))('%s: parameters, q4 ratio and KV bytes', (id, spec) => {
    const config = parseModelConfig(spec.config);
    const p = paramCounts(config);
    const total = p.linear + p.embedding + p.vectors;
    expect(Math.abs(total / PUBLISHED[id] - 1)).toBeLessThan(0.01);
    const m = modelMemory(spec);
    expect(m.layers).toBe(spec.config['num_hidden_layers']);
    expect(m.weights.q4 / m.weights.bf16).toBeLessThanOrEqual(0.32);
    expect(m.weights.q8).toBeLessThan(m.weights.bf16);
    const cache = (dtype: 'f32' | 'f16') =>
      createModelCacheSpec({ modelId: id, fingerprint: 'x', nLayers: config.nLayers, nKvHeads: config.nKvHeads, headDim: config.headDim, blockTokens: 16, dtype });
    expect(m.kvPer1k.f32).toBe(bytesForTokens(cache('f32'), KV_TOKENS));
    expect(m.kvPer1k.f16).toBe(bytesForTokens(cache('f16'), KV_TOKENS));
    // transformers.js keeps the embedding at f16 and adds an untied quantized lm_head, so it is
    // never smaller than WebLLM's all-q4 build.
    expect(m.weights.transformersjsQ4f16).toBeGreaterThan(m.weights.webllmQ4f16_1);
  });

  it('prints one row per model', () => {
    const text = formatModelMemory(TWINS.map(modelMemory));
    console.log(text);
    for (const t of TWINS) expect(text).toContain(t.hubId);
  });
});

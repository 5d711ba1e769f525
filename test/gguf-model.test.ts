/**
 * GGUF fixtures (tools/make-gguf.ts) read back into the runtime's view: the config from the
 * `<arch>.*` keys matches the HF config.json they were made from, tensor names map back, the
 * llama Q/K row permutation is undone (weights equal the HF ones to the quantization's error),
 * and the fingerprint follows the quantization.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantizeWeight, MemoryRangeSource, openGgufModel, readGgufWeightsF32, unpermuteRows, type GgufModel } from '../src/adapters/gguf/index.ts';
import { parseSafetensors, tensorToFloat32 } from '../src/adapters/safetensors/index.ts';
import { parseModelConfig } from '../src/domain/model-config.ts';
import { ropeInvFreq } from '../src/domain/rope.ts';
import { permuteQk } from '../tools/gguf-convert.ts';
import { buildGguf, GGUF_FIXTURES } from '../tools/make-gguf.ts';

const MODELS = join(import.meta.dirname, '..', 'public', 'models');
const open = (file: string): Promise<GgufModel> => openGgufModel(new MemoryRangeSource(new Uint8Array(readFileSync(join(MODELS, 'gguf', file)))));
const hfConfig = (id: string): unknown => JSON.parse(readFileSync(join(MODELS, id, 'config.json'), 'utf8'));

describe('GGUF model loading', () => {
  it.each([
    ['tiny-llama-q8_0.gguf', 'tiny-llama', 0.01],
    ['tiny-qwen2-q4_0.gguf', 'tiny-qwen2', 0.25],
    ['tiny-qwen3-q8_0.gguf', 'tiny-qwen3', 0.01],
  ])('%s: config and weights match the HF fixture %s', async (file, id, tolerance) => {
    const model = await open(file);
    const hf = parseModelConfig(hfConfig(id));
    const { ropeScaling, eosTokenIds, bosTokenId, maxPositionEmbeddings, ...shape } = model.config;
    const { ropeScaling: hfScaling, eosTokenIds: _e, bosTokenId: _b, maxPositionEmbeddings: _m, ...hfShape } = hf;
    expect(shape).toEqual(hfShape);
    expect(maxPositionEmbeddings).toBe(hf.maxPositionEmbeddings);
    expect(eosTokenIds.every((t) => hf.eosTokenIds.includes(t))).toBe(true);
    // Llama 3 scaling arrives as per-frequency factors; the frequencies must be the same.
    expect(ropeScaling.type).toBe(hfScaling.type === 'llama3' ? 'factors' : 'default');
    const a = ropeInvFreq(hf.headDim, hf.ropeTheta, ropeScaling);
    const b = ropeInvFreq(hf.headDim, hf.ropeTheta, hfScaling);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]) / b[i]).toBeLessThan(1e-6);

    const st = parseSafetensors(new Uint8Array(readFileSync(join(MODELS, id, 'model.safetensors'))));
    const weights = await readGgufWeightsF32(model, dequantizeWeight);
    expect([...weights.keys()].sort()).toEqual([...st.tensors.keys()].sort());
    for (const [name, t] of st.tensors) {
      const ref = tensorToFloat32(t);
      const got = weights.get(name) as Float32Array;
      let maxErr = 0, maxAbs = 0;
      for (let i = 0; i < ref.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(ref[i] - got[i]));
        maxAbs = Math.max(maxAbs, Math.abs(ref[i]));
      }
      // A row permutation left in place would put whole rows of other values here.
      expect(maxErr / maxAbs, name).toBeLessThan(tolerance);
    }
  });

  it('the K-quant mix keeps each tensor type and the llama shape', async () => {
    const model = await open('llama-k-mix.gguf');
    expect(model.config).toMatchObject({ architecture: 'llama', hiddenSize: 256, intermediateSize: 512, headDim: 64, tieWordEmbeddings: false });
    const types = new Set(model.file.tensors.map((t) => t.type.name));
    for (const t of ['Q4_K', 'Q5_K', 'Q6_K', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'F16', 'BF16', 'F32']) expect(types).toContain(t);
    let bytes = 0;
    for await (const w of model.weights()) bytes += w.bytes.length;
    // rope_freqs is the only tensor that is not a weight.
    expect(model.weightBytes - bytes).toBe(32 * 4);
  });

  it('unpermuteRows inverts the converter permutation, on any row layout', () => {
    const rows = 16, cols = 3, heads = 2;
    const x = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const permuted = permuteQk(x, rows, cols, heads);
    expect(permuted).not.toEqual(x);
    const back = unpermuteRows(new Uint8Array(permuted.buffer), rows, heads);
    expect(new Float32Array(back.buffer)).toEqual(x);
  });

  it('the fingerprint follows the quantization and the weights', async () => {
    const a = await open('tiny-llama-q8_0.gguf');
    const again = await open('tiny-llama-q8_0.gguf');
    expect(a.fingerprint).toBe(again.fingerprint);
    const bytes = new Uint8Array(readFileSync(join(MODELS, 'gguf', 'tiny-llama-q8_0.gguf')));
    const last = a.file.tensors[a.file.tensors.length - 1];
    bytes[last.offset + 2] ^= 1;
    const b = await openGgufModel(new MemoryRangeSource(bytes));
    expect(b.fingerprint).not.toBe(a.fingerprint);
  });

  it('the same weights quantized differently get different fingerprints (caches never cross)', async () => {
    const q8 = await open('tiny-llama-q8_0.gguf');
    const fixture = GGUF_FIXTURES.find((f) => f.file === 'tiny-llama-q8_0.gguf');
    if (fixture === undefined) throw new TypeError('fixture missing');
    const q4 = await openGgufModel(new MemoryRangeSource(buildGguf({ ...fixture, recipe: () => 'Q4_0' })));
    expect(q4.config).toEqual(q8.config);
    expect(q4.fingerprint).not.toBe(q8.fingerprint);
  });

  it('tools/make-gguf.ts reproduces every committed GGUF fixture byte for byte', () => {
    for (const f of GGUF_FIXTURES) {
      const committed = readFileSync(join(MODELS, 'gguf', f.file));
      expect(Buffer.compare(Buffer.from(buildGguf(f)), committed), f.file).toBe(0);
    }
  });
});

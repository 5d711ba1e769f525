import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluatePerplexity, type PerplexityOptions } from '../../src/application/perplexity.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../../src/adapters/safetensors/blob-codec.ts';
import { HfTokenizer } from '../../src/adapters/tokenizer/index.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { testGpu } from './harness.ts';

/**
 * Teacher forcing with the KV persisted to an agent blob and restored every few positions
 * (tiny-llama, WebGPU). Unquantized blobs are exact, so the perplexity must not move at all;
 * q8 and q4 at rest may move it, q8 less than q4's bound. Random weights make the logits
 * flat, so these bounds check the plumbing; the trained model's deltas are in the README.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'public', 'models', 'tiny-llama');

let backend: WebGpuBackend;
let ids: number[];
let bos: number | null;

beforeAll(async () => {
  const t = await testGpu();
  const files = new FsModelSource(DIR);
  const tokenizer = await HfTokenizer.fromFiles(files);
  backend = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 2 * 1024 * 1024 });
  ids = tokenizer.encode(readFileSync(join(ROOT, 'tools', 'data', 'tinyshakespeare.txt'), 'utf8').slice(0, 120));
  bos = tokenizer.bosTokenId();
});

afterAll(() => backend.dispose());

function perplexity(extra: Partial<PerplexityOptions>, text = ids): Promise<{ ppl: number; restores: number; bytesPerToken: number }> {
  return evaluatePerplexity(backend, text, { window: 16, bosTokenId: bos, parallel: 8, codec: safetensorsBlobCodec, ...extra }).then((r) => {
    expect(r.scoredTokens).toBe(text.length);
    return { ppl: Math.exp(r.nllNats / r.scoredTokens), restores: r.restores, bytesPerToken: r.blobBytesPerToken };
  });
}

describe('evaluatePerplexity with KV persisted and restored between chunks (tiny-llama, WebGPU)', () => {
  it('scores a whole slice per step exactly as one position per step does', async () => {
    // One position per step is the decode path; 16 per step reads 16 logits rows per window.
    const text = ids.slice(0, 40);
    const single = await perplexity({ chunk: 1 }, text);
    const sliced = await perplexity({ chunk: 16 }, text);
    const odd = await perplexity({ chunk: 5, parallel: 2 }, text);
    expect(Math.abs(sliced.ppl / single.ppl - 1)).toBeLessThan(1e-6);
    expect(Math.abs(odd.ppl / single.ppl - 1)).toBeLessThan(1e-6);
  }, 120_000);

  it('none is exact; q8 and q4 move perplexity a little, with smaller blobs', async () => {
    const plain = await perplexity({});
    const none = await perplexity({ restoreEvery: 4, quantization: 'none' });
    const q8 = await perplexity({ restoreEvery: 4, quantization: 'q8' });
    const q4 = await perplexity({ restoreEvery: 4, quantization: 'q4' });
    console.log(`[perplexity] tiny-llama: plain ${plain.ppl.toFixed(3)}, none ${none.ppl.toFixed(3)}, q8 ${q8.ppl.toFixed(3)}, q4 ${q4.ppl.toFixed(3)}; bytes/token none ${none.bytesPerToken.toFixed(0)}, q8 ${q8.bytesPerToken.toFixed(0)}, q4 ${q4.bytesPerToken.toFixed(0)}`);
    expect(none.restores).toBeGreaterThan(0);
    expect(none.ppl).toBe(plain.ppl);
    expect(q8.ppl).not.toBe(plain.ppl); // the quantized path really ran
    expect(Math.abs(q8.ppl / plain.ppl - 1)).toBeLessThan(0.005);
    expect(Math.abs(q4.ppl / plain.ppl - 1)).toBeLessThan(0.05);
    expect(q8.bytesPerToken).toBeLessThan(none.bytesPerToken);
    expect(q4.bytesPerToken).toBeLessThan(q8.bytesPerToken);
  }, 120_000);
});

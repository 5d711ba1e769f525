/**
 * `semantic generate --model x.gguf` on a lone GGUF file (no tokenizer.json beside it): the
 * tokens equal an independent reference, the CPU reference model on the dequantized weights with
 * the prompt encoded by the HF tokenizer.json the fixture was converted from. CI runs the llama
 * fixture (permuted Q/K, Llama 3 rope_freqs) in --batch, a --prompt request next to a
 * --prompt-ids one; SEMANTIC_GGUF_GPU_FULL=1 adds single runs (--prompt, --prompt-ids) of it, of
 * qwen2 (Q4_0, biases) and of the K-quant mix (each CLI process compiles its shaders: ~20 s).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CpuReferenceModel } from '../src/adapters/cpu/index.ts';
import { dequantizeWeight, MemoryRangeSource, openGgufModel, readGgufWeightsF32 } from '../src/adapters/gguf/index.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { ggufTokenizer } from '../cli/gguf-model.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const MODELS = join(ROOT, 'public', 'models');
const FULL = process.env['SEMANTIC_GGUF_GPU_FULL'] === '1';

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin', 'semantic.mjs'), ...args], { cwd: ROOT, timeout: 240_000 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

interface Reference {
  readonly path: string;
  readonly hfTokenizer: HfTokenizer;
  /** Greedy tokens of the CPU reference on the dequantized weights (f16 KV, as the CLI's pool). */
  greedy(ids: readonly number[], max: number): number[];
}

async function reference(file: string, hfFolder: string): Promise<Reference> {
  const path = join(MODELS, 'gguf', file);
  const model = await openGgufModel(new MemoryRangeSource(new Uint8Array(readFileSync(path))));
  const cpu = new CpuReferenceModel(model.config, await readGgufWeightsF32(model, dequantizeWeight), { kvDtype: 'f16' });
  const eos = (await ggufTokenizer(model, file)).eosTokenIds();
  const hfTokenizer = await HfTokenizer.fromFiles(new FsModelSource(join(MODELS, hfFolder)));
  return { path, hfTokenizer, greedy: (ids, max) => cpu.generateGreedy(ids, max, { eosTokenIds: eos }).tokens };
}

const TEXT = 'ROMEO:\nBut soft, what light';

describe('semantic generate --model x.gguf', () => {
  it('tiny-llama-q8_0.gguf: --batch (a text prompt and an ids prompt together) gives the reference tokens', { timeout: 300_000 }, async () => {
    const ref = await reference('tiny-llama-q8_0.gguf', 'tiny-llama');
    const textIds = ref.hfTokenizer.encodePrompt(TEXT);
    const ids = [512, 300, 301, 302, 303];
    const batch = join(mkdtempSync(join(tmpdir(), 'semantic-gguf-')), 'batch.json');
    writeFileSync(batch, JSON.stringify([
      { prompt: TEXT, max_tokens: 10, temperature: 0 },
      { prompt_ids: ids, max_tokens: 10, temperature: 0 },
    ]));
    const b = await cli(['generate', '--model', ref.path, '--batch', batch, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const json = JSON.parse(b.stdout) as { results: Array<{ tokens: number[] }>; gpu_bytes: { weights: number }; memory: { checkpoint_weight_bytes: number; weight_bytes_by_format: Record<string, number> } };
    const rows = json.results;
    // Q8_0 matrices stay Q8_0 (q8) on the GPU: weight bytes within 2% of the file's tensor bytes.
    expect(Object.keys(json.memory.weight_bytes_by_format).sort()).toEqual(['q8', 'vector']);
    expect(Math.abs(json.gpu_bytes.weights / json.memory.checkpoint_weight_bytes - 1)).toBeLessThanOrEqual(0.02);
    expect(rows[0].tokens).toEqual(ref.greedy(textIds, 10));
    expect(rows[1].tokens).toEqual(ref.greedy(ids, 10));
  });

  it.runIf(FULL).each([
    ['tiny-llama-q8_0.gguf', 'tiny-llama'],
    ['tiny-qwen2-q4_0.gguf', 'tiny-qwen2'],
    ['llama-k-mix.gguf', 'tiny-llama'],
  ])('%s: --prompt and --prompt-ids give the reference tokens', { timeout: 600_000 }, async (file, folder) => {
    const ref = await reference(file, folder);
    const out = await cli(['generate', '--model', ref.path, '--prompt', TEXT, '--max-tokens', '8', '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect((JSON.parse(out.stdout) as { tokens: number[] }).tokens).toEqual(ref.greedy(ref.hfTokenizer.encodePrompt(TEXT), 8));
    const ids = await cli(['generate', '--model', ref.path, '--prompt-ids', '5,6,7,8', '--max-tokens', '8', '--json']);
    expect(ids.code, ids.stderr).toBe(0);
    expect((JSON.parse(ids.stdout) as { tokens: number[] }).tokens).toEqual(ref.greedy([5, 6, 7, 8], 8));
  });

  it('refuses --weights on a GGUF file with a typed error', async () => {
    const out = await cli(['generate', '--model', join(MODELS, 'gguf', 'tiny-qwen2-q4_0.gguf'), '--prompt-ids', '1', '--weights', 'q8', '--json']);
    expect(out.code).not.toBe(0);
    expect(out.stdout + out.stderr).toContain('InvalidRequestError');
  });
});

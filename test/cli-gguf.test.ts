/**
 * `semantic generate --model x.gguf` on a lone GGUF file (no tokenizer.json beside it): the
 * tokens equal an independent reference, the CPU reference model on the dequantized weights with
 * the prompt encoded by the HF tokenizer.json the fixture was converted from. One --batch process
 * per model: a --prompt request and a --prompt-ids one, each alone (join_at_step apart) and then
 * together. CI runs the llama Q8_0 file (permuted Q/K, Llama 3 rope_freqs), the llama and qwen2
 * (q/k/v biases, NeoX RoPE) K-quant mixes (Q4_K/Q6_K/Q8_0/Q4_0 and more) and the MLX 4-bit
 * folder, ~12 s each on an idle 2-core machine since the CPU adapter compiles one matmul
 * kernel per format; SEMANTIC_GGUF_GPU_FULL=1 adds single runs (--prompt, --prompt-ids) of every
 * GGUF fixture.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CpuReferenceModel, loadCpuModel } from '../src/adapters/cpu/index.ts';
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
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin', 'semantic.mjs'), ...args], { cwd: ROOT, timeout: 540_000 });
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
const IDS = [300, 301, 302, 303, 5];
const MAX = 8;

/**
 * One --batch process per model: the text request and the ids request each run alone (the
 * second joins after the first has finished), then both together (join_at_step), so a single
 * process checks the tokens alone and batched.
 */
async function batchRun(model: string): Promise<{ rows: number[][]; json: BatchJson }> {
  const batch = join(mkdtempSync(join(tmpdir(), 'semantic-gguf-')), 'batch.json');
  const req = (r: object, joinAt: number): object => ({ ...r, max_tokens: MAX, temperature: 0, join_at_step: joinAt });
  writeFileSync(batch, JSON.stringify([
    req({ prompt: TEXT }, 0),
    // A request takes one prefill step and MAX - 1 decode steps: MAX + 2 steps later it is gone.
    req({ prompt_ids: IDS }, MAX + 2),
    req({ prompt: TEXT }, 2 * (MAX + 2)),
    req({ prompt_ids: IDS }, 2 * (MAX + 2)),
  ]));
  const b = await cli(['generate', '--model', model, '--batch', batch, '--json']);
  expect(b.code, b.stderr).toBe(0);
  const json = JSON.parse(b.stdout) as BatchJson;
  return { rows: json.results.map((r) => r.tokens), json };
}

interface BatchJson {
  results: Array<{ tokens: number[] }>;
  gpu_bytes: { weights: number };
  memory: { checkpoint_weight_bytes: number; weight_bytes_by_format: Record<string, number> };
}

/** Stored as the file stores them: GPU weight bytes within 2% of the file's tensor bytes. */
function expectKeptBytes(json: BatchJson, formats: string[]): void {
  expect(Object.keys(json.memory.weight_bytes_by_format).sort()).toEqual([...formats, 'vector'].sort());
  expect(Math.abs(json.gpu_bytes.weights / json.memory.checkpoint_weight_bytes - 1)).toBeLessThanOrEqual(0.02);
}

/** GGUF files run with --batch: llama (permuted Q/K, Llama 3 rope_freqs), qwen2 (biases, NeoX). */
const BATCH_FILES: Array<[string, string, string[]]> = [
  ['tiny-llama-q8_0.gguf', 'tiny-llama', ['q8']],
  // The K-quant mixes compile the matmul and embedding kernels once per format in the file.
  ['llama-k-mix.gguf', 'tiny-llama', ['q4_k', 'q6_k', 'q5_k', 'q8', 'q4', 'q4_1', 'q5_0', 'q5_1', 'f16', 'bf16']],
  ['qwen2-k-mix.gguf', 'tiny-qwen2', ['q4_k', 'q6_k', 'q8', 'q4']],
];

describe('semantic generate --model x.gguf', () => {
  it.each(BATCH_FILES)('%s: --batch gives the reference tokens alone and batched', { timeout: 600_000 }, async (file, folder, formats) => {
    const ref = await reference(file, folder);
    const { rows, json } = await batchRun(ref.path);
    expectKeptBytes(json, formats);
    const textWant = ref.greedy(ref.hfTokenizer.encodePrompt(TEXT), MAX);
    const idsWant = ref.greedy(IDS, MAX);
    expect(rows).toEqual([textWant, idsWant, textWant, idsWant]);
  });
});

describe('semantic generate --model <MLX folder>', () => {
  it('tiny-qwen2-4bit: --batch gives the CPU reference tokens on the dequantized weights, alone and batched', { timeout: 300_000 }, async () => {
    const dir = join(MODELS, 'mlx', 'tiny-qwen2-4bit');
    const files = new FsModelSource(dir);
    const { model } = await loadCpuModel(files, { kvDtype: 'f16' }); // the CLI's default KV
    const tokenizer = await HfTokenizer.fromFiles(files);
    const greedy = (ids: readonly number[]): number[] => model.generateGreedy(ids, MAX, { eosTokenIds: tokenizer.eosTokenIds() }).tokens;
    const { rows, json } = await batchRun(dir);
    expectKeptBytes(json, ['mlx4_g32_f16']);
    expect(rows).toEqual([greedy(tokenizer.encodePrompt(TEXT)), greedy(IDS), greedy(tokenizer.encodePrompt(TEXT)), greedy(IDS)]);
  });
});

describe('semantic generate --model x.gguf (single runs, refusals)', () => {
  it.runIf(FULL).each([
    ['tiny-llama-q8_0.gguf', 'tiny-llama'],
    ['tiny-qwen2-q4_0.gguf', 'tiny-qwen2'],
    ['llama-k-mix.gguf', 'tiny-llama'],
    ['qwen2-k-mix.gguf', 'tiny-qwen2'],
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

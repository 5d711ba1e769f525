/**
 * `semantic eval`: perplexity and bits per character of a model over a text file, by teacher
 * forcing through the WebGPU backend (src/application/perplexity.ts). With `--kv-quant` the KV
 * of every window is persisted to an agent blob at that quantization and restored every
 * `--chunk` positions, so the score is what an agent restored from storage would get.
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { InvalidRequestError } from '../src/domain/errors.ts';
import type { KvDtype } from '../src/domain/model-cache-spec.ts';
import { evaluatePerplexity } from '../src/application/perplexity.ts';
import { nodeGpu } from '../src/adapters/node/dawn.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { createGpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import { quantizationArg } from './cache.ts';

export const EVAL_USAGE = `usage: semantic eval --model <dir> --text <file> [--weights f32|f16|q8|q4] [--kv-dtype f32|f16]
         [--kv-quant none|q8|q4] [--chunk N] [--window N] [--max-tokens N] [--json]`;

const FLAGS = new Set(['--json']);
const VALUED = new Set(['--model', '--text', '--weights', '--kv-dtype', '--kv-quant', '--chunk', '--window', '--max-tokens']);

export interface EvalArgs {
  readonly model: string;
  readonly text: string;
  readonly weights?: 'f32' | 'f16' | 'q8' | 'q4';
  readonly kvDtype?: KvDtype;
  readonly quantization?: string;
  readonly chunk?: number;
  readonly window?: number;
  readonly maxTokens?: number;
  readonly json: boolean;
}

function positive(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidRequestError(`${flag} expects a positive integer, got ${raw}`, { flag });
  return n;
}

function dtype<T extends string>(raw: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw new InvalidRequestError(`${flag} must be ${allowed.join(' or ')}`, { flag, value: raw });
  return raw as T;
}

export function parseEvalArgs(argv: readonly string[]): EvalArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (FLAGS.has(a)) flags.add(a);
    else if (VALUED.has(a)) {
      if (i + 1 >= argv.length) throw new InvalidRequestError(`${a} needs a value`, { flag: a });
      values.set(a, argv[++i]);
    } else throw new InvalidRequestError(`unknown argument ${a}`, { argument: a });
  }
  const model = values.get('--model');
  const text = values.get('--text');
  if (!model || !text) throw new InvalidRequestError('--model <dir> and --text <file> are required');
  quantizationArg(values.get('--kv-quant'));
  return {
    model,
    text,
    weights: dtype(values.get('--weights'), '--weights', ['f32', 'f16', 'q8', 'q4'] as const),
    kvDtype: dtype(values.get('--kv-dtype'), '--kv-dtype', ['f32', 'f16'] as const),
    quantization: values.get('--kv-quant'),
    chunk: positive(values.get('--chunk'), '--chunk'),
    window: positive(values.get('--window'), '--window'),
    maxTokens: positive(values.get('--max-tokens'), '--max-tokens'),
    json: flags.has('--json'),
  };
}

function round(n: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Code points, not UTF-16 units: "characters" in bits per character. */
function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export async function evalCommand(argv: readonly string[]): Promise<void> {
  const args = parseEvalArgs(argv);
  const dir = resolve(args.model);
  const files = new FsModelSource(dir);
  const tokenizer = await HfTokenizer.fromFiles(files);
  let ids = tokenizer.encode(readFileSync(resolve(args.text), 'utf8'));
  if (args.maxTokens !== undefined) ids = ids.slice(0, args.maxTokens);
  const gpu = await createGpuContext({ gpu: nodeGpu() });
  const quantized = args.weights === 'q8' || args.weights === 'q4' ? args.weights : undefined;
  const matrixDtype = args.weights === 'f32' || args.weights === 'f16' ? args.weights : undefined;
  const backend = await WebGpuBackend.load(gpu, files, { modelId: basename(dir), matrixDtype, weights: quantized, kvDtype: args.kvDtype });
  try {
    const quantization = quantizationArg(args.quantization);
    const window = args.window ?? backend.maxContext;
    const bos = tokenizer.bosTokenId();
    const persisting = args.quantization !== undefined;
    const chunk = persisting ? (args.chunk ?? Math.max(1, Math.floor(window / 4))) : 0;
    const r = await evaluatePerplexity(backend, ids, {
      // Many windows per step: SwiftShader and GPUs alike do 64 rows for little more than 1.
      window, bosTokenId: bos, parallel: 64, restoreEvery: chunk, codec: safetensorsBlobCodec, quantization,
    });
    // Without BOS the very first token is context only; its characters are not scored either.
    const chars = charCount(tokenizer.decode(bos === null ? ids.slice(1) : ids));
    const out = {
      perplexity: round(Math.exp(r.nllNats / r.scoredTokens)),
      bits_per_char: round(r.nllNats / (Math.LN2 * chars)),
      tokens: r.scoredTokens,
      chars,
      nats_per_token: round(r.nllNats / r.scoredTokens),
      window,
      windows: r.windows,
      kv_quant: persisting ? quantization : null,
      chunk: persisting ? chunk : null,
      restores: r.restores,
      blob_bytes_per_token: round(r.blobBytesPerToken, 1),
    };
    process.stdout.write(args.json ? `${JSON.stringify(out)}\n` : `perplexity ${out.perplexity}  bits/char ${out.bits_per_char}  (${out.tokens} tokens, ${out.chars} chars)\n`);
  } finally {
    backend.dispose();
    gpu.device.destroy();
  }
}

/**
 * KV quantization at rest, measured as quality: perplexity of the trained model
 * (public/models/shakespeare-llama) over the start of its validation split (the last 10% of
 * tools/data/tinyshakespeare.txt, the split it never trained on), teacher forced through the
 * WebGPU backend, with every window's KV written to an agent blob at none / q8 / q4 and restored
 * every `chunk` positions (src/application/perplexity.ts, the same path as `semantic eval
 * --kv-quant`). The delta is against the same run with no persistence at all; blob bytes per
 * token are of the largest blob written.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluatePerplexity } from '../src/application/perplexity.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import type { GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import type { KvQuantization } from '../src/domain/model-cache-spec.ts';
import { MODELS_DIR, round, table } from './lib.ts';

export interface KvQualityConfig {
  /** Validation tokens scored (from the start of the split). */
  readonly tokens: number;
  readonly window: number;
  /** Positions between persist/restore round trips. */
  readonly chunk: number;
}

export interface KvQualityRow {
  readonly scheme: 'no persistence' | KvQuantization;
  readonly perplexity: number;
  readonly bitsPerChar: number;
  readonly deltaPercent: number;
  readonly blobBytesPerToken: number | null;
  readonly restores: number;
}

export interface KvQualityResult {
  readonly model: string;
  readonly tokens: number;
  readonly chars: number;
  readonly window: number;
  readonly chunk: number;
  readonly rows: readonly KvQualityRow[];
}

const MODEL = 'shakespeare-llama';

function validationSplit(): string {
  const text = readFileSync(join(import.meta.dirname, '..', 'tools', 'data', 'tinyshakespeare.txt'), 'utf8');
  return text.slice(Math.floor(text.length * 0.9));
}

export async function benchKvQuality(gpu: GpuContext, config: KvQualityConfig): Promise<KvQualityResult> {
  const files = new FsModelSource(join(MODELS_DIR, MODEL));
  const tokenizer = await HfTokenizer.fromFiles(files);
  const ids = tokenizer.encode(validationSplit()).slice(0, config.tokens);
  const bos = tokenizer.bosTokenId();
  const chars = [...tokenizer.decode(bos === null ? ids.slice(1) : ids)].length;
  const backend = await WebGpuBackend.load(gpu, files, { modelId: MODEL });
  try {
    const run = (scheme: KvQualityRow['scheme']) =>
      evaluatePerplexity(backend, ids, {
        window: config.window, bosTokenId: bos, parallel: 16, codec: safetensorsBlobCodec,
        ...(scheme === 'no persistence' ? {} : { restoreEvery: config.chunk, quantization: scheme }),
      });
    const rows: KvQualityRow[] = [];
    let base = NaN;
    for (const scheme of ['no persistence', 'none', 'q8', 'q4'] as const) {
      const r = await run(scheme);
      const ppl = Math.exp(r.nllNats / r.scoredTokens);
      if (scheme === 'no persistence') base = ppl;
      rows.push({
        scheme, perplexity: round(ppl, 4), bitsPerChar: round(r.nllNats / (Math.LN2 * chars), 4),
        deltaPercent: round((ppl / base - 1) * 100, 3),
        blobBytesPerToken: r.restores > 0 ? round(r.blobBytesPerToken, 1) : null, restores: r.restores,
      });
    }
    return { model: MODEL, tokens: ids.length, chars, window: config.window, chunk: config.chunk, rows };
  } finally {
    backend.dispose();
  }
}

export function formatKvQuality(r: KvQualityResult): string {
  return table(
    `KV quantization at rest: quality (${r.model}, first ${r.tokens} validation tokens, ${r.chars} chars)`,
    `Teacher forced in windows of ${r.window}; KV persisted to a blob and restored every ${r.chunk} positions. Delta vs no persistence.`,
    ['scheme', 'perplexity', 'bits/char', 'delta', 'blob B/token', 'restores'],
    r.rows.map((row) => [row.scheme, row.perplexity.toFixed(4), row.bitsPerChar.toFixed(4), `${row.deltaPercent.toFixed(3)}%`, row.blobBytesPerToken ?? '', row.restores]),
  );
}

import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { planWindows, tokenNll } from '../src/application/perplexity.ts';
import { parseEvalArgs } from '../cli/eval.ts';
import { loadCpuModel } from '../src/adapters/cpu/index.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';

/**
 * `semantic eval` on tiny-llama over a short text: its perplexity must equal the one computed
 * here with the CPU reference over the same windows. Persist/restore is tested in-process in
 * test/gpu/perplexity.test.ts (one CLI process costs seconds of Dawn start-up).
 */
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'semantic.mjs');
const DIR = join(ROOT, 'public', 'models', 'tiny-llama');
const WINDOW = 24;

interface EvalJson {
  perplexity: number;
  bits_per_char: number;
  tokens: number;
  chars: number;
}

async function evalCli(args: string[]): Promise<EvalJson> {
  const { stdout } = await run(process.execPath, [BIN, 'eval', '--model', DIR, '--window', String(WINDOW), '--json', ...args], { cwd: ROOT, timeout: 120_000 });
  return JSON.parse(stdout) as EvalJson;
}

function textFile(): { path: string; text: string } {
  const corpus = readFileSync(join(ROOT, 'tools', 'data', 'tinyshakespeare.txt'), 'utf8');
  const text = corpus.slice(0, 120);
  const path = join(mkdtempSync(join(tmpdir(), 'semantic-eval-')), 'text.txt');
  writeFileSync(path, text);
  return { path, text };
}

describe('planWindows', () => {
  it('with BOS scores every token; without BOS each window opens with the previous last token', () => {
    const ids = [10, 11, 12, 13, 14, 15, 16];
    expect(planWindows(ids, 3, 99)).toEqual([
      { inputs: [99, 10, 11], targets: [10, 11, 12] },
      { inputs: [99, 13, 14], targets: [13, 14, 15] },
      { inputs: [99], targets: [16] },
    ]);
    const plain = planWindows(ids, 3, null);
    expect(plain.flatMap((w) => w.targets)).toEqual(ids.slice(1));
    expect(plain[1].inputs[0]).toBe(plain[0].targets[plain[0].targets.length - 1]);
  });
});

describe('semantic eval (CLI, WebGPU through Dawn)', () => {
  it('--json perplexity and bits/char equal the CPU reference over the same windows', async () => {
    const { path, text } = textFile();
    const files = new FsModelSource(DIR);
    const tokenizer = await HfTokenizer.fromFiles(files);
    const { model } = await loadCpuModel(files);
    const ids = tokenizer.encode(text);
    let nll = 0;
    for (const w of planWindows(ids, WINDOW, tokenizer.bosTokenId())) {
      const logits = model.forward(w.inputs, model.createCache(WINDOW));
      const vocab = logits.length / w.inputs.length;
      w.targets.forEach((t, i) => (nll += tokenNll(logits.subarray(i * vocab, (i + 1) * vocab), t)));
    }
    const got = await evalCli(['--text', path]);
    expect(got.tokens).toBe(ids.length);
    expect(got.chars).toBe(text.length);
    expect(got.perplexity / Math.exp(nll / ids.length) - 1).toBeCloseTo(0, 3);
    expect(got.bits_per_char).toBeCloseTo(nll / (Math.LN2 * text.length), 3);
  }, 120_000);

  it('validates its options before loading anything', () => {
    const base = ['--model', DIR, '--text', 'x.txt'];
    expect(parseEvalArgs([...base, '--kv-quant', 'q8', '--chunk', '8', '--kv-dtype', 'f32', '--weights', 'f16'])).toMatchObject({ quantization: 'q8', chunk: 8, kvDtype: 'f32', weights: 'f16' });
    expect(() => parseEvalArgs([...base, '--kv-quant', 'q3'])).toThrow(/--kv-quant must be/);
    expect(() => parseEvalArgs([...base, '--kv-dtype', 'bf16'])).toThrow(/--kv-dtype must be/);
    expect(() => parseEvalArgs([...base, '--chunk', '0'])).toThrow(/positive integer/);
    expect(() => parseEvalArgs(['--text', 'x.txt'])).toThrow(/required/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentService } from '../../src/application/agent-service.ts';
import { generateBatch } from './lockstep.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { InferenceService } from '../../src/application/inference-service.ts';
import type { GenerationResult } from '../../src/ports/inbound.ts';
import { loadCpuModel } from '../../src/adapters/cpu/index.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../../src/adapters/tokenizer/index.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { BlockPool } from '../../src/domain/block-pool.ts';
import { maxAbsDiff, testGpu } from './harness.ts';

/**
 * The trained shakespeare-llama (tools/train/) through the real engine on WebGPU: its text must
 * be made of the plays' words. The vocabulary is computed here from the training split (the
 * first 90% of the corpus, as tools/train/prepare.ts cuts it), never written down. Random
 * weights score about 0% on this check; the bar is 75%.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const MODELS = join(ROOT, 'public', 'models');
const MODEL_ID = 'shakespeare-llama';
const MAX_TOKENS = 64;
const MIN_KNOWN = 0.75;
// F16 weights are widened to f32 on both sides; what differs is summation order over 4 layers.
const PARITY_TOL = 1e-3;

const WORD = /[a-z]+(?:'[a-z]+)*/g;

function words(text: string): string[] {
  return text.toLowerCase().match(WORD) ?? [];
}

function trainingVocabulary(): Set<string> {
  const corpus = readFileSync(join(ROOT, 'tools', 'data', 'tinyshakespeare.txt'), 'utf8');
  return new Set(words(corpus.slice(0, Math.floor(corpus.length * 0.9))));
}

let backend: WebGpuBackend;
let tokenizer: HfTokenizer;
let vocabulary: Set<string>;
const files = new FsModelSource(join(MODELS, MODEL_ID));

beforeAll(async () => {
  const t = await testGpu();
  tokenizer = await HfTokenizer.load({ modelId: MODEL_ID, localModelPath: MODELS, files });
  backend = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: 4 * 1024 * 1024 });
  vocabulary = trainingVocabulary();
});

afterAll(() => backend.dispose());

function knownShare(text: string): { share: number; count: number } {
  const list = words(text);
  const known = list.filter((w) => vocabulary.has(w)).length;
  return { share: list.length === 0 ? 0 : known / list.length, count: list.length };
}

const CHAT = [
  { role: 'system' as const, content: 'Enter ROMEO and JULIET.' },
  { role: 'user' as const, content: 'Good morrow, fair lady.' },
];

const CASES = [
  { prompt: 'ROMEO:', sampling: { temperature: 0 } },
  { prompt: 'JULIET:\n', sampling: { temperature: 0 } },
  { prompt: 'ROMEO:', sampling: { temperature: 0.8, topK: 40, seed: 7 } },
  { prompt: 'JULIET:\n', sampling: { temperature: 0.8, topP: 0.95, seed: 11 } },
  { prompt: CHAT, sampling: { temperature: 0 } },
];

let replies: Promise<GenerationResult[]> | undefined;

/** All cases at once through one engine: they decode as one batch, which keeps the test short. */
function generateAll(): Promise<GenerationResult[]> {
  if (!replies) {
    const engine = new BlockPoolBatchEngine(backend, tokenizer);
    const inference = new InferenceService(engine, new AgentService(engine, tokenizer));
    replies = Promise.all(CASES.map((c, i) => inference.generate(`reader-${i}`, c.prompt, { maxTokens: MAX_TOKENS, sampling: c.sampling })));
  }
  return replies;
}

describe(`${MODEL_ID}: trained model through the engine (WebGPU)`, () => {
  it.each(CASES.map((c, i) => ({ ...c, i, label: typeof c.prompt === 'string' ? JSON.stringify(c.prompt) : 'chat' })))(
    '$label with $sampling writes words of the plays',
    async ({ prompt, sampling, i, label }) => {
      const reply = (await generateAll())[i];
      const { share, count } = knownShare(reply.text);
      const shown = typeof prompt === 'string' ? prompt : tokenizer.renderChat(prompt);
      console.log(`[${MODEL_ID}] ${label} ${JSON.stringify(sampling)}: ${(share * 100).toFixed(0)}% of ${count} words known\n${shown}${reply.text}`);
      expect(reply.tokenIds.length).toBe(MAX_TOKENS);
      expect(count).toBeGreaterThanOrEqual(10);
      expect(share).toBeGreaterThanOrEqual(MIN_KNOWN);
    },
    // The first case waits for the whole batch: ~20 s on an idle 2-core runner, far more when shared.
    300_000,
  );

  it('the chat template heads each speech with its speaker', () => {
    // user = ROMEO, assistant = JULIET, any other role is the speaker's own name; the
    // generation prompt names the next speaker.
    expect(tokenizer.renderChat(CHAT)).toBe('<|begin_of_text|>Enter ROMEO and JULIET.\n\nROMEO:\nGood morrow, fair lady.\n\nJULIET:\n');
  });

  it(`matches the CPU reference: logits within ${PARITY_TOL}, same greedy tokens`, async () => {
    const ids = tokenizer.encode('ROMEO:\nBut soft, what light');
    const { model } = await loadCpuModel(files);
    const cpu = model.generateGreedy(ids, 8, { eosTokenIds: [] });
    const pool = new BlockPool(backend.totalBlocks);
    const [gpu] = await generateBatch(backend, pool, [{ promptIds: ids, maxTokens: 8 }], { returnLogits: true });
    expect(gpu.tokens).toEqual(cpu.tokens);
    const error = Math.max(...gpu.logits.map((row, i) => maxAbsDiff(row, cpu.logits[i])));
    console.log(`[${MODEL_ID}] max |logit error| vs CPU over 8 steps = ${error.toExponential(2)}`);
    expect(error).toBeLessThanOrEqual(PARITY_TOL);
  });
});

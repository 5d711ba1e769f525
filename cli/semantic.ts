/**
 * Composition root for Node: the `semantic` CLI. Runs the WebGPU backend through Dawn.
 */
import { writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { errorFromPlain, errorToPlain, InvalidRequestError } from '../src/domain/errors.ts';
import { validateTokenIds } from '../src/domain/values.ts';
import type { KvQuantization } from '../src/domain/model-cache-spec.ts';
import { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import { generateTimed } from '../src/application/engine/timed-generation.ts';
import { AgentCacheStore } from '../src/application/agent-cache-store.ts';
import { FsCachePersistence } from '../src/adapters/node/fs-cache-persistence.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import { readBatchFile, runBatch } from './batch.ts';
import { exportAgent, importAgent, quantizationArg, weightsArg } from './cache.ts';
import { EVAL_USAGE, evalCommand } from './eval.ts';
import { SERVE_USAGE, serveCommand } from './serve.ts';
import { nodeGpu } from '../src/adapters/node/dawn.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { serializeSafetensors } from '../src/adapters/safetensors/index.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { createGpuContext, type GpuContext } from '../src/adapters/webgpu/device.ts';
import { ggufBackend, openGgufPath } from './gguf-model.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import { parseGenerateArgs, USAGE, type GenerateArgs } from './args.ts';

function promptIds(args: GenerateArgs, tokenizer: HfTokenizer, vocab: number): number[] {
  if (args.promptIds) return [...validateTokenIds(args.promptIds, vocab)];
  if (args.chat !== undefined) return tokenizer.applyChatTemplate([{ role: 'user', content: args.chat }]);
  const ids = tokenizer.encodePrompt(args.prompt ?? '');
  if (ids.length === 0) throw new InvalidRequestError('the prompt encodes to no tokens');
  return ids;
}

function dumpLogits(file: string, rows: readonly Float32Array[], vocab: number): void {
  const data = new Float32Array(rows.length * vocab);
  rows.forEach((r, i) => data.set(r, i * vocab));
  const bytes = serializeSafetensors({ logits: { dtype: 'F32', shape: [rows.length, vocab], data } }, { format: 'semantic-logits', steps: String(rows.length) });
  writeFileSync(file, bytes);
}

async function batch(args: GenerateArgs, backend: WebGpuBackend, tokenizer: HfTokenizer): Promise<void> {
  const engine = new BlockPoolBatchEngine(backend, tokenizer);
  const started = performance.now();
  const results = await runBatch(engine, readBatchFile(args.batch ?? ''));
  const stats = engine.stats();
  if (args.json) {
    const pool = { ...stats.pool, preemptions: stats.preemptions, steps: stats.steps, cached_agents: stats.cachedAgents };
    process.stdout.write(`${JSON.stringify({ results, pool, timings: { total_ms: round(performance.now() - started) }, ...memoryFields(backend, quantizationArg(args.quantization)) })}\n`);
  } else {
    results.forEach((r, i) => process.stdout.write(`--- request ${i} (${r.finish_reason})\n${r.text}\n`));
  }
}

/** One request through the engine with a folder as the agent's cold storage. */
async function generateWithCache(args: GenerateArgs, backend: WebGpuBackend, tokenizer: HfTokenizer): Promise<void> {
  if (!args.agent) throw new InvalidRequestError('--cache-dir needs --agent <id>');
  const persistence = await FsCachePersistence.open({ dir: resolve(args.cacheDir ?? ''), modelFingerprint: backend.extractModelSpec().fingerprint });
  const engine = new BlockPoolBatchEngine(backend, tokenizer);
  const store = new AgentCacheStore(engine, backend, safetensorsBlobCodec, persistence, { quantization: quantizationArg(args.quantization) });
  await store.refreshCold();
  const ids = promptIds(args, tokenizer, backend.vocabSize);
  const run = await generateTimed(engine, {
    agentId: args.agent,
    promptIds: ids,
    maxTokens: args.maxTokens,
    sampling: { temperature: args.temperature, topK: args.topK, topP: args.topP, seed: args.seed },
  });
  const report = store.lastReport(args.agent);
  await store.persistAll();
  const out = {
    tokens: run.result.tokenIds,
    text: run.result.text,
    finish_reason: run.result.finishReason,
    restored: report?.tier ?? 'none',
    prefill_tokens_computed: run.prefillComputed,
    prefill_tokens_reused: run.prefillReused,
    ...(report?.refused ? { refused: report.refused.name } : {}),
    timings: { ttft_ms: round(run.ttftMs), total_ms: round(run.totalMs) },
    ...memoryFields(backend, quantizationArg(args.quantization)),
  };
  process.stdout.write(args.json ? `${JSON.stringify(out)}\n` : `${out.text}\n`);
}

/**
 * The backend and tokenizer of `--model`: an HF folder, or a lone `.gguf` file whose tensors keep
 * their block layouts on the GPU and whose tokenizer comes from its metadata.
 */
async function loadModel(args: GenerateArgs, gpu: GpuContext): Promise<{ backend: WebGpuBackend; tokenizer: HfTokenizer }> {
  const path = resolve(args.model);
  const options = {
    modelId: basename(path),
    blockTokens: args.blockTokens,
    kvDtype: args.kvDtype === 'f32' ? ('f32' as const) : ('f16' as const),
    kvBudgetBytes: args.kvBudgetBytes,
    kvBudgetFraction: args.kvBudgetFraction,
  };
  if (path.endsWith('.gguf')) {
    if (args.weights !== undefined) throw new InvalidRequestError('--weights does not apply to a GGUF file: its tensors keep their own types');
    const gguf = await openGgufPath(path);
    try {
      return { backend: await ggufBackend(gpu, gguf.model, options), tokenizer: gguf.tokenizer };
    } finally {
      await gguf.source.close();
    }
  }
  const files = new FsModelSource(path);
  const tokenizer = await HfTokenizer.load({ modelId: basename(path), localModelPath: dirname(path), files });
  const backend = await WebGpuBackend.load(gpu, files, { ...options, weights: weightsArg(args.weights) });
  return { backend, tokenizer };
}

async function generate(args: GenerateArgs): Promise<void> {
  const t0 = performance.now();
  const gpu = await createGpuContext({ gpu: nodeGpu() });
  const { backend, tokenizer } = await loadModel(args, gpu);
  await backend.warmup();
  if (args.batch !== undefined || args.cacheDir !== undefined) {
    await (args.batch !== undefined ? batch(args, backend, tokenizer) : generateWithCache(args, backend, tokenizer));
    backend.dispose();
    gpu.device.destroy();
    return;
  }
  const t1 = performance.now();
  const ids = promptIds(args, tokenizer, backend.vocabSize);
  // The one generation path: the batched engine (here with a batch of one).
  const engine = new BlockPoolBatchEngine(backend, tokenizer);
  const run = await generateTimed(engine, {
    agentId: 'cli',
    promptIds: ids,
    maxTokens: args.maxTokens,
    sampling: { temperature: args.temperature, topK: args.topK, topP: args.topP, seed: args.seed },
    returnLogits: args.dumpLogits !== undefined,
  });
  const result = run.result;
  if (result.error) throw errorFromPlain(result.error);
  if (args.dumpLogits) dumpLogits(args.dumpLogits, result.logits ?? [], backend.vocabSize);
  const text = result.text;
  const decodeTokens = Math.max(0, result.tokenIds.length - 1);
  const timings = {
    load_ms: round(t1 - t0),
    ttft_ms: round(run.ttftMs),
    total_ms: round(run.totalMs),
    decode_tokens_per_s: round(decodeTokens / Math.max(1e-9, (run.totalMs - run.ttftMs) / 1000)),
    adapter: `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture}`.trim(),
  };
  if (args.json) {
    const memory = memoryFields(backend, quantizationArg(args.quantization));
    process.stdout.write(`${JSON.stringify({ tokens: result.tokenIds, text, finish_reason: result.finishReason, prompt_tokens: ids.length, timings, ...memory })}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
  backend.dispose();
  gpu.device.destroy();
}

/** gpu_bytes (weights, KV pool, activations) and what the weights were loaded as. */
function memoryFields(backend: WebGpuBackend, kvAtRest: KvQuantization): Record<string, unknown> {
  const r = backend.loadReport();
  return {
    gpu_bytes: r.gpu_bytes,
    memory: {
      checkpoint_weight_bytes: r.checkpoint_weight_bytes,
      weight_bytes_by_format: r.weight_bytes_by_format,
      weights: r.weights,
      kv_dtype: r.kv_dtype,
      kv_pool_tokens: r.kv_pool_tokens,
      kv_at_rest: kvAtRest,
      kv_budget: r.kv_budget,
    },
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const commands: Record<string, (rest: readonly string[]) => Promise<void>> = {
    generate: (r) => generate(parseGenerateArgs(r)),
    export: exportAgent,
    import: importAgent,
    eval: evalCommand,
    serve: serveCommand,
  };
  const run = command === undefined ? undefined : commands[command];
  if (!run) {
    process.stderr.write(`${USAGE}\n${EVAL_USAGE}\n${SERVE_USAGE}\n`);
    return command === undefined || command === '--help' ? 0 : 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (error) {
    const plain = errorToPlain(error);
    process.stderr.write(`semantic: ${plain.name} (${plain.code}): ${plain.message}\n`);
    if (plain.code === 'INVALID_REQUEST') process.stderr.write(`${command === 'eval' ? EVAL_USAGE : command === 'serve' ? SERVE_USAGE : USAGE}\n`);
    return 1;
  }
}

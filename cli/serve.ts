import { basename, dirname, resolve } from 'node:path';
import { InvalidRequestError } from '../src/domain/errors.ts';
import { validatePositiveInt } from '../src/domain/values.ts';
import type { ModelCacheSpec } from '../src/domain/model-cache-spec.ts';
import { AgentCacheStore } from '../src/application/agent-cache-store.ts';
import { AgentService } from '../src/application/agent-service.ts';
import { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import { InferenceService } from '../src/application/inference-service.ts';
import { storeTiers } from '../src/application/store-tiers.ts';
import { createApiHandler, type FetchHandler } from '../src/adapters/api/index.ts';
import { nodeGpu } from '../src/adapters/node/dawn.ts';
import { FsCachePersistence } from '../src/adapters/node/fs-cache-persistence.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { createGpuContext, type GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import type { ModelDescriptor, ModelManagementPort } from '../src/ports/inbound.ts';
import { ggufBackend, openGgufPath } from './gguf-model.ts';
import { parseFlags, required } from './args.ts';
import { weightsArg } from './cache.ts';
import { listen, type RunningServer } from './http-bridge.ts';

/**
 * `semantic serve`: one engine and cache store behind the OpenAI and Anthropic routes over
 * node:http, on loopback by default. Concurrent requests join the one engine's batch; with
 * --cache-dir every finished turn is checkpointed there and agents survive a restart.
 */
export const SERVE_USAGE = `usage: semantic serve --model <dir|file.gguf> [--host 127.0.0.1] [--port 8080] [--cache-dir <dir>] [--weights q8|q4] [--kv-budget <bytes>]`;

export interface ServeOptions {
  readonly model: string;
  readonly host?: string;
  readonly port?: number;
  readonly cacheDir?: string;
  readonly weights?: 'q8' | 'q4';
  readonly kvBudgetBytes?: number;
  /** A GPU context to use (tests share one); default: a new Dawn device. */
  readonly gpu?: GpuContext;
}

export interface Serving extends RunningServer {
  readonly handler: FetchHandler;
  readonly spec: ModelCacheSpec;
  /** Stop listening, write every agent to --cache-dir, release the GPU memory. */
  close(): Promise<void>;
}

/** The one model --model names: serve cannot switch models at run time. */
function fixedModel(descriptor: ModelDescriptor): ModelManagementPort {
  const refuse = async (): Promise<never> => {
    throw new InvalidRequestError('semantic serve runs the model given by --model; restart it to change models', { param: 'model' });
  };
  return { loadModel: refuse, unloadModel: refuse, getCurrentModel: async () => descriptor, listAvailableModels: async () => [descriptor] };
}

/** The backend and tokenizer of --model: an HF folder, or a lone `.gguf` file (its own tokenizer). */
async function loadServed(options: ServeOptions, gpu: GpuContext, id: string): Promise<{ backend: WebGpuBackend; tokenizer: HfTokenizer }> {
  const path = resolve(options.model);
  const backendOptions = { modelId: id, kvBudgetBytes: options.kvBudgetBytes };
  if (path.endsWith('.gguf')) {
    if (options.weights !== undefined) throw new InvalidRequestError('--weights does not apply to a GGUF file: its tensors keep their own types', { flag: '--weights' });
    const gguf = await openGgufPath(path);
    try {
      return { backend: await ggufBackend(gpu, gguf.model, backendOptions), tokenizer: gguf.tokenizer };
    } finally {
      await gguf.source.close();
    }
  }
  const files = new FsModelSource(path);
  const tokenizer = await HfTokenizer.load({ modelId: id, localModelPath: dirname(path), files });
  return { backend: await WebGpuBackend.load(gpu, files, { ...backendOptions, weights: options.weights }), tokenizer };
}

export async function startServer(options: ServeOptions): Promise<Serving> {
  const dir = resolve(options.model);
  // The model's id in the API: the folder's name, or the file's without `.gguf`.
  const id = basename(dir).replace(/\.gguf$/i, '');
  const gpu = options.gpu ?? (await createGpuContext({ gpu: nodeGpu() }));
  const { backend, tokenizer } = await loadServed(options, gpu, id);
  await backend.warmup();
  const spec = backend.extractModelSpec();
  const engine = new BlockPoolBatchEngine(backend, tokenizer);
  const persistence = options.cacheDir ? await FsCachePersistence.open({ dir: resolve(options.cacheDir), modelFingerprint: spec.fingerprint }) : null;
  const store = new AgentCacheStore(engine, backend, safetensorsBlobCodec, persistence, { persistOnFinish: persistence !== null });
  await store.refreshCold();
  // Deleting an agent removes it from every tier; one stored by an earlier run is known at once.
  const service = new AgentService(engine, tokenizer, storeTiers(() => store, spec.fingerprint));
  const handler = createApiHandler({
    inference: new InferenceService(engine, service, tokenizer),
    agents: service,
    models: fixedModel({ id, source: dir, architecture: backend.config.architecture }),
  });
  const running = await listen(handler, options.host ?? '127.0.0.1', options.port ?? 8080);
  return {
    ...running,
    handler,
    spec,
    close: async () => {
      await running.close();
      engine.reset();
      await store.persistAll();
      backend.dispose();
      if (!options.gpu) gpu.device.destroy();
    },
  };
}

function port(raw: string | undefined): number {
  if (raw === undefined) return 8080;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidRequestError(`--port must be an integer in [0, 65535], got ${raw}`, { flag: '--port' });
  return n;
}

/** Runs until SIGINT or SIGTERM, then writes every agent to --cache-dir and exits. */
export async function serveCommand(argv: readonly string[]): Promise<void> {
  const f = parseFlags(argv, ['--model', '--host', '--port', '--cache-dir', '--weights', '--kv-budget']);
  const kvBudget = f.get('--kv-budget');
  const serving = await startServer({
    model: required(f, '--model'),
    host: f.get('--host') ?? '127.0.0.1',
    port: port(f.get('--port')),
    cacheDir: f.get('--cache-dir'),
    weights: weightsArg(f.get('--weights')),
    kvBudgetBytes: kvBudget === undefined ? undefined : validatePositiveInt(Number(kvBudget), '--kv-budget'),
  });
  process.stdout.write(`${JSON.stringify({ listening: serving.url, model: serving.spec.modelId })}\n`);
  await new Promise<void>((done) => {
    const stop = (): void => void serving.close().finally(done);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

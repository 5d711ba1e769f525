import { planPoolLayout, type BlockCopy, type BlockId, type BufferLimits, type PoolLayout } from '../../domain/block-pool.ts';
import { DeviceLostError, InternalError, InvalidRequestError } from '../../domain/errors.ts';
import { bytesPerBlock, type KvDtype, type ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import { kvBudgetRequest, resolveKvBudget, type KvBudgetRequest } from '../../domain/kv-budget.ts';
import { MAX_KV_SHARDS } from './ops/attention.ts';
import { toModelCacheSpec, type ModelConfig } from '../../domain/model-config.ts';
import { ropeInvFreq } from '../../domain/rope.ts';
import { quantizedFingerprint } from '../../domain/weight-blocks.ts';
import type { ForwardResult, KvSnapshot, ModelBackendPort, ModelFileSource, SequenceStep } from '../../ports/outbound.ts';
import { readJsonFile, streamCheckpoint, type CheckpointProgress, type TensorEntry } from '../safetensors/index.ts';
import { parseModelConfig } from '../../domain/model-config.ts';
import { guardDeviceLoss, type GpuContext } from './device.ts';
import type { KernelContext } from './dispatch.ts';
import { encodeForward, type ForwardResources } from './forward.ts';
import { MATMUL_VEC_MAX_ROWS } from './ops/matmul.ts';
import { GpuBuffers, type GpuBufferCategory } from './gpu-buffers.ts';
import { GpuKvPool } from './kv-pool.ts';
import { PipelineCache } from './pipelines.ts';
import { planStep } from './step-plan.ts';
import { MAP_READ_MODE, Usage } from './usage.ts';
import { feedTensors, WeightLoader, type UploadOptions } from './weights.ts';
import { MlxWeightAssembler } from './mlx-weights.ts';
import { mlxQuantization } from '../../domain/mlx-quant.ts';

/** Feeds a checkpoint's tensors to the loader (streamed from a file, or held in memory); returns its fingerprint. */
type WeightSource = (loader: WeightLoader) => Promise<{ readonly fingerprint: string }>;

export interface WebGpuBackendOptions extends UploadOptions {
  readonly modelId?: string;
  /** Tokens per KV block (power of two). Default 16. */
  readonly blockTokens?: number;
  /**
   * Bytes for the hot KV pool, or (kvBudgetFraction) a fraction of the device memory left after
   * the weights. Default: derived from the adapter's limits and the weight bytes (the rule is in
   * domain/kv-budget.ts).
   */
  readonly kvBudgetBytes?: number;
  readonly kvBudgetFraction?: number;
  /**
   * Storage of the hot KV pool: 'f16' (default; packed halves, half the bytes per token) or
   * 'f32'. Snapshots and blobs of either dtype restore into a pool of either.
   */
  readonly kvDtype?: KvDtype;
  /** Turn buffer reuse off (debug). */
  readonly disableBufferReuse?: boolean;
  /**
   * Cap on the bytes of one KV pool buffer, below the device's storage binding limit (for tests:
   * Dawn rounds a requested device limit up to 128 MiB). A pool over it is sharded.
   */
  readonly maxKvBindingBytes?: number;
  /** Bytes of the weight files received, per file and overall, from the first bytes on. */
  readonly onProgress?: (p: CheckpointProgress) => void;
}

/**
 * The pool's buffers: a budget larger than one storage binding per layer and side is sharded
 * (the binding limit is the device's, or the `maxKvBindingBytes` cap tests use). The attention
 * kernel binds at most MAX_KV_SHARDS shards per side, so a derived budget (default, fraction)
 * is cut to that, and a budget in bytes beyond it is refused with the numbers.
 */
function kvLayout(spec: ModelCacheSpec, request: KvBudgetRequest, budget: number, caps: BufferLimits, maxBindingBytes?: number): { layout: PoolLayout; budget: number } {
  const limits = { maxBufferSize: caps.maxBufferSize, maxStorageBufferBindingSize: Math.min(caps.maxStorageBufferBindingSize, maxBindingBytes ?? Infinity) };
  const layout = planPoolLayout(spec, budget, limits);
  if (layout.shardCount <= MAX_KV_SHARDS) return { layout, budget };
  const most = MAX_KV_SHARDS * layout.blocksPerShard * layout.bytesPerBlock;
  if ('bytes' in request) {
    throw new InvalidRequestError(`a KV budget of ${budget} bytes needs ${layout.shardCount} buffers per layer; this device holds at most ${most} bytes of KV (${MAX_KV_SHARDS} shards of ${layout.bytesPerShardBuffer} bytes per layer and side)`, {
      budgetBytes: budget,
      maxBytes: most,
    });
  }
  return { layout: planPoolLayout(spec, most, limits), budget: most };
}

/** GPU memory by use, in bytes (allocated buffers, recycled transients included in activations). */
export type GpuBytes = Readonly<Record<GpuBufferCategory, number>>;

/** What a load put on the GPU, for `semantic generate --json` and the client's load report. */
export interface BackendLoadReport {
  readonly gpu_bytes: GpuBytes;
  /** Bytes of the same weight tensors in the checkpoint file. */
  readonly checkpoint_weight_bytes: number;
  /** GPU weight bytes by storage format ('vector' = f32 norms and biases). */
  readonly weight_bytes_by_format: Readonly<Record<string, number>>;
  readonly weights: string;
  readonly kv_dtype: KvDtype;
  /** Tokens the hot KV pool holds, all agents together. */
  readonly kv_pool_tokens: number;
  /** How the pool was sized: the budget asked for (or derived), and the buffers it took. */
  readonly kv_budget: { readonly rule: 'bytes' | 'fraction' | 'auto'; readonly bytes: number; readonly shards: number };
}

/**
 * ModelBackendPort on WebGPU: a Llama-family forward pass over paged KV blocks, one command
 * encoder per step, and only sampled token ids (plus logits when asked) read back.
 */
export class WebGpuBackend implements ModelBackendPort {
  readonly vocabSize: number;
  readonly maxContext: number;
  readonly totalBlocks: number;
  private readonly ctx: KernelContext;
  private readonly resources: ForwardResources;

  private constructor(
    private readonly gpu: GpuContext,
    readonly config: ModelConfig,
    private readonly spec: ModelCacheSpec,
    resources: ForwardResources,
    private readonly weightMode: string,
    private readonly budget: BackendLoadReport['kv_budget'],
  ) {
    this.ctx = resources.ctx;
    this.resources = resources;
    this.vocabSize = config.vocabSize;
    this.maxContext = config.maxPositionEmbeddings;
    this.totalBlocks = resources.kv.totalBlocks;
  }

  static async load(gpu: GpuContext, source: ModelFileSource, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    const configText = new TextDecoder().decode(await source.read('config.json'));
    const json = await readJsonFile(source, 'config.json');
    const config = parseModelConfig(json);
    // MLX quantized linears keep their packed groups (config.json's quantization is hashed into
    // the fingerprint with the tensors, so caches never cross bit widths).
    const mlx = mlxQuantization(json);
    if (mlx !== undefined && options.weights !== undefined) {
      throw new InvalidRequestError(`weights does not apply to an MLX quantized checkpoint: its matrices keep their ${mlx.bits}-bit groups`, { weights: options.weights });
    }
    // Tensor by tensor from the file (or download) to the GPU: the host never holds the checkpoint.
    const stream: WeightSource = (loader) =>
      streamCheckpoint(source, mlx === undefined ? loader : new MlxWeightAssembler(loader, mlx), { configText, onProgress: options.onProgress });
    return WebGpuBackend.allocate(gpu, config, stream, { ...options, modelId: options.modelId ?? source.id });
  }

  /**
   * A backend over tensors read by any loader: safetensors entries, or matrices already in a
   * ggml block layout (BlockTensorEntry, from a GGUF file) that are uploaded byte for byte.
   * `fingerprint` names the weights (for GGUF it covers the quantized tensors).
   */
  static fromTensors(
    gpu: GpuContext,
    config: ModelConfig,
    checkpoint: { readonly tensors: ReadonlyMap<string, TensorEntry>; readonly fingerprint: string },
    options: WebGpuBackendOptions = {},
  ): Promise<WebGpuBackend> {
    const feed: WeightSource = async (loader) => {
      await feedTensors(loader, checkpoint.tensors);
      return { fingerprint: checkpoint.fingerprint };
    };
    return WebGpuBackend.allocate(gpu, config, feed, options);
  }

  private static async allocate(gpu: GpuContext, config: ModelConfig, source: WeightSource, options: WebGpuBackendOptions): Promise<WebGpuBackend> {
    const buffers = new GpuBuffers(gpu.device, { reuse: options.disableBufferReuse !== true });
    try {
      return await WebGpuBackend.build(gpu, source, buffers, config, options);
    } catch (error) {
      // A load that fails half way (a bad tensor, a broken download) leaves nothing allocated.
      buffers.destroyAll();
      throw error;
    }
  }

  private static async build(gpu: GpuContext, source: WeightSource, buffers: GpuBuffers, config: ModelConfig, options: WebGpuBackendOptions): Promise<WebGpuBackend> {
    const ctx: KernelContext = { device: gpu.device, buffers, pipelines: PipelineCache.for(gpu.device) };
    const kvDtype = options.kvDtype ?? 'f16';
    if (kvDtype !== 'f16' && kvDtype !== 'f32') throw new InvalidRequestError(`kvDtype must be 'f16' or 'f32', got ${String(kvDtype)}`, { kvDtype });
    if (options.weights !== undefined && options.weights !== 'q8' && options.weights !== 'q4') {
      throw new InvalidRequestError(`weights must be 'q8' or 'q4', got ${String(options.weights)}`, { weights: options.weights });
    }
    const budgetRequest = kvBudgetRequest(options.kvBudgetBytes, options.kvBudgetFraction);
    const loader = new WeightLoader(buffers, gpu.caps.maxStorageBufferBindingSize, config, options);
    const checkpoint = await source(loader);
    const weights = loader.finish();
    const spec = toModelCacheSpec(config, {
      modelId: options.modelId ?? 'model',
      // Quantized weights compute different KV: caches made under them name them, so they never
      // restore into the unquantized model or the other quantization (and the reverse).
      fingerprint: quantizedFingerprint(checkpoint.fingerprint, options.weights),
      blockTokens: options.blockTokens,
      dtype: kvDtype,
    });
    const budgetBytes = resolveKvBudget(budgetRequest, {
      limits: gpu.caps,
      weightBytes: weights.bytes,
      tokenBytes: bytesPerBlock(spec) / spec.blockTokens,
      maxContext: config.maxPositionEmbeddings,
    });
    const { layout, budget: usedBudget } = kvLayout(spec, budgetRequest, budgetBytes, gpu.caps, options.maxKvBindingBytes);
    const kv = new GpuKvPool(buffers, gpu.device, spec, layout);
    const invFreq = buffers.upload('rope:invFreq', ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling));
    const rule = 'bytes' in budgetRequest ? 'bytes' : 'fraction' in budgetRequest ? 'fraction' : 'auto';
    const budget = { rule, bytes: usedBudget, shards: layout.shardCount } as const;
    return new WebGpuBackend(gpu, config, spec, { ctx, config, weights, kv, invFreq }, options.weights ?? 'checkpoint', budget);
  }

  /**
   * Compile every pipeline a step can use (matmul variants for 1, 4, 8 and more rows, sampling,
   * attention) with throwaway steps on the first blocks, so the first real request does not pay for shader
   * compilation in its time to first token. Those blocks hold garbage afterwards, which is
   * harmless: KV is always written before it is read.
   */
  async warmup(): Promise<void> {
    const sampling = { temperature: 0, topK: 0, topP: 1, seed: 0 };
    for (const n of [1, 4, 8, MATMUL_VEC_MAX_ROWS + 1]) {
      const blocks = Math.ceil(n / this.spec.blockTokens);
      if (blocks > this.totalBlocks) continue;
      const blockTable = Array.from({ length: blocks }, (_, i) => i);
      await this.forward([{ tokenIds: new Array<number>(n).fill(0), startPosition: 0, blockTable, sample: true, sampling, sampleStep: 0 }]);
    }
  }

  extractModelSpec(): ModelCacheSpec {
    return this.spec;
  }

  get weightBytes(): number {
    return this.resources.weights.bytes;
  }

  get kvBytes(): number {
    return this.resources.kv.bytes;
  }

  /** GPU memory by use right now: weights, the KV pool, and everything else (activations). */
  gpuBytes(): GpuBytes {
    return this.ctx.buffers.stats().byCategory;
  }

  loadReport(): BackendLoadReport {
    const w = this.resources.weights;
    return {
      gpu_bytes: this.gpuBytes(),
      checkpoint_weight_bytes: w.checkpointBytes,
      weight_bytes_by_format: w.bytesByFormat,
      weights: this.weightMode,
      kv_dtype: this.spec.dtype,
      kv_pool_tokens: this.totalBlocks * this.spec.blockTokens,
      kv_budget: this.budget,
    };
  }

  bufferStats(): ReturnType<GpuBuffers['stats']> {
    return this.ctx.buffers.stats();
  }

  /** Rejects with DeviceLostError (typed) when the device is lost before or during the step. */
  forward(steps: readonly SequenceStep[], options: { readonly returnLogits?: boolean } = {}): Promise<ForwardResult> {
    return guardDeviceLoss(this.gpu, () => this.forwardOnDevice(steps, options));
  }

  private async forwardOnDevice(steps: readonly SequenceStep[], options: { readonly returnLogits?: boolean }): Promise<ForwardResult> {
    const plan = planStep(steps, {
      vocabSize: this.vocabSize,
      maxContext: this.maxContext,
      blockTokens: this.spec.blockTokens,
      totalBlocks: this.totalBlocks,
    });
    const { device, buffers } = this.ctx;
    const transients: GPUBuffer[] = [];
    const encoder = device.createCommandEncoder({ label: 'forward-step' });
    const out = encodeForward(this.resources, encoder, plan, transients);
    const S = plan.sampleRows.length;
    const tokenBytes = S * 4;
    const logitBytes = options.returnLogits ? S * this.vocabSize * 4 : 0;
    const staging = S > 0 ? buffers.acquire('forward:readback', tokenBytes + logitBytes, Usage.MAP_READ | Usage.COPY_DST) : null;
    if (staging && out.tokens) encoder.copyBufferToBuffer(out.tokens, 0, staging, 0, tokenBytes);
    if (staging && out.logits && logitBytes > 0) encoder.copyBufferToBuffer(out.logits, 0, staging, tokenBytes, logitBytes);
    device.queue.submit([encoder.finish()]);
    // Released after submit: queue order guarantees later writes to a recycled buffer land after this step.
    for (const t of transients) buffers.release(t);
    const nextTokens = new Int32Array(steps.length).fill(-1);
    if (!staging) return { nextTokens };
    await staging.mapAsync(MAP_READ_MODE, 0, tokenBytes + logitBytes);
    const mapped = staging.getMappedRange(0, tokenBytes + logitBytes);
    const sampled = new Uint32Array(mapped, 0, S);
    // Rows are in step order, so a scoreAll sequence ends on its last token's sample.
    plan.sampleSeqs.forEach((seq, i) => (nextTokens[seq] = sampled[i]));
    const logits = logitBytes > 0 ? new Float32Array(mapped.slice(tokenBytes)) : undefined;
    staging.unmap();
    buffers.release(staging);
    return logits ? { nextTokens, logits } : { nextTokens };
  }

  async copyBlocks(copies: readonly BlockCopy[]): Promise<void> {
    this.assertAlive();
    const { device, buffers } = this.ctx;
    const encoder = device.createCommandEncoder({ label: 'kv:copy-blocks' });
    device.pushErrorScope('validation');
    const scratch = this.resources.kv.encodeCopies(encoder, copies);
    device.queue.submit([encoder.finish()]);
    if (scratch) buffers.release(scratch);
    const error = await device.popErrorScope();
    if (error) throw new InternalError(`KV block copy failed: ${error.message}`);
  }

  readBlocks(blockTable: readonly BlockId[], tokens: number): Promise<KvSnapshot> {
    return guardDeviceLoss(this.gpu, () => this.resources.kv.read(blockTable, tokens));
  }

  async writeBlocks(blockTable: readonly BlockId[], snapshot: KvSnapshot): Promise<void> {
    this.assertAlive();
    this.resources.kv.write(blockTable, snapshot);
  }

  dispose(): void {
    this.ctx.buffers.destroyAll();
  }

  private assertAlive(): void {
    if (this.gpu.isLost()) throw new DeviceLostError('the GPU device was lost; reload the model on a new device');
  }
}

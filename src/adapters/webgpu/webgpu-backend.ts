import { planPoolLayout, type BlockCopy, type BlockId } from '../../domain/block-pool.ts';
import { DeviceLostError, InternalError } from '../../domain/errors.ts';
import type { ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import { toModelCacheSpec, type ModelConfig } from '../../domain/model-config.ts';
import { ropeInvFreq } from '../../domain/rope.ts';
import type { ForwardResult, KvSnapshot, ModelBackendPort, ModelFileSource, SequenceStep } from '../../ports/outbound.ts';
import { readCheckpoint, readJsonFile } from '../safetensors/index.ts';
import { parseModelConfig } from '../../domain/model-config.ts';
import { guardDeviceLoss, type GpuContext } from './device.ts';
import type { KernelContext } from './dispatch.ts';
import { encodeForward, type ForwardResources } from './forward.ts';
import { MATMUL_VEC_MAX_ROWS } from './ops/matmul.ts';
import { GpuBuffers } from './gpu-buffers.ts';
import { GpuKvPool } from './kv-pool.ts';
import { PipelineCache } from './pipelines.ts';
import { planStep } from './step-plan.ts';
import { MAP_READ_MODE, Usage } from './usage.ts';
import { uploadWeights, type UploadOptions } from './weights.ts';

export interface WebGpuBackendOptions extends UploadOptions {
  readonly modelId?: string;
  /** Tokens per KV block (power of two). Default 16. */
  readonly blockTokens?: number;
  /** Bytes for the hot KV pool. Default 64 MiB. */
  readonly kvBudgetBytes?: number;
  /** Turn buffer reuse off (debug). */
  readonly disableBufferReuse?: boolean;
}

const DEFAULT_KV_BUDGET = 64 * 1024 * 1024;

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
  ) {
    this.ctx = resources.ctx;
    this.resources = resources;
    this.vocabSize = config.vocabSize;
    this.maxContext = config.maxPositionEmbeddings;
    this.totalBlocks = resources.kv.totalBlocks;
  }

  static async load(gpu: GpuContext, source: ModelFileSource, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    const configText = new TextDecoder().decode(await source.read('config.json'));
    const config = parseModelConfig(await readJsonFile(source, 'config.json'));
    const checkpoint = await readCheckpoint(source, configText);
    const buffers = new GpuBuffers(gpu.device, { reuse: options.disableBufferReuse !== true });
    const ctx: KernelContext = { device: gpu.device, buffers, pipelines: PipelineCache.for(gpu.device) };
    const weights = uploadWeights(buffers, gpu.caps.maxStorageBufferBindingSize, config, checkpoint.tensors, options);
    const spec = toModelCacheSpec(config, {
      modelId: options.modelId ?? source.id,
      fingerprint: checkpoint.fingerprint,
      blockTokens: options.blockTokens,
      dtype: 'f32',
    });
    const layout = planPoolLayout(spec, options.kvBudgetBytes ?? DEFAULT_KV_BUDGET, gpu.caps);
    const kv = new GpuKvPool(buffers, gpu.device, spec, layout);
    const invFreq = buffers.upload('rope:invFreq', ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling));
    return new WebGpuBackend(gpu, config, spec, { ctx, config, weights, kv, invFreq });
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

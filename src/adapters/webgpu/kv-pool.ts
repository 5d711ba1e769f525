import type { BlockCopy, BlockId, PoolLayout } from '../../domain/block-pool.ts';
import { InvalidRequestError } from '../../domain/errors.ts';
import { elementsPerBlockPerLayer, type ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import type { KvSnapshot } from '../../ports/outbound.ts';
import type { GpuBuffers } from './gpu-buffers.ts';
import { MAP_READ_MODE, Usage } from './usage.ts';

/**
 * The hot tier's memory: per layer, one K and one V buffer of `totalBlocks` blocks laid out
 * [block, tokenInBlock, kvHead, headDim] in f32. Which block belongs to whom is the domain
 * BlockPool's business; this class only moves bytes.
 */
export class GpuKvPool {
  readonly keys: GPUBuffer[] = [];
  readonly values: GPUBuffer[] = [];
  readonly totalBlocks: number;
  readonly blockBytes: number;
  private readonly tokenBytes: number;

  constructor(
    private readonly buffers: GpuBuffers,
    private readonly device: GPUDevice,
    readonly spec: ModelCacheSpec,
    layout: PoolLayout,
  ) {
    if (spec.dtype !== 'f32') throw new InvalidRequestError('only f32 KV blocks are implemented', { dtype: spec.dtype });
    // One buffer per layer and side: cap the pool at what one binding holds rather than shard,
    // which would multiply the attention kernel's bindings.
    this.totalBlocks = Math.min(layout.totalBlocks, layout.blocksPerShard);
    this.blockBytes = elementsPerBlockPerLayer(spec) * 4;
    this.tokenBytes = spec.nKvHeads * spec.headDim * 4;
    for (let l = 0; l < spec.nLayers; l++) {
      this.keys.push(buffers.createExact(`kv:layer${l}:K`, this.totalBlocks * this.blockBytes));
      this.values.push(buffers.createExact(`kv:layer${l}:V`, this.totalBlocks * this.blockBytes));
    }
  }

  get bytes(): number {
    return 2 * this.spec.nLayers * this.totalBlocks * this.blockBytes;
  }

  /**
   * Copy-on-write: whole blocks, every layer, K and V. WebGPU refuses a copy within one buffer,
   * so blocks go through a scratch buffer; returns it for release after submit.
   */
  encodeCopies(encoder: GPUCommandEncoder, copies: readonly BlockCopy[]): GPUBuffer | null {
    if (copies.length === 0) return null;
    for (const { from, to } of copies) {
      this.checkBlock(from);
      this.checkBlock(to);
    }
    const scratch = this.buffers.acquire('kv:copy-scratch', copies.length * this.blockBytes);
    for (const buf of [...this.keys, ...this.values]) {
      copies.forEach(({ from }, i) => encoder.copyBufferToBuffer(buf, from * this.blockBytes, scratch, i * this.blockBytes, this.blockBytes));
      copies.forEach(({ to }, i) => encoder.copyBufferToBuffer(scratch, i * this.blockBytes, buf, to * this.blockBytes, this.blockBytes));
    }
    return scratch;
  }

  /** K/V of the first `tokens` tokens of a block table, dense per layer: [token, kvHead, headDim]. */
  async read(blockTable: readonly BlockId[], tokens: number): Promise<KvSnapshot> {
    const blocks = Math.ceil(tokens / this.spec.blockTokens);
    if (blocks > blockTable.length) throw new InvalidRequestError('block table shorter than the tokens to read', { tokens, blocks: blockTable.length });
    const perSide = blocks * this.blockBytes;
    const staging = this.buffers.acquire('kv:readback', 2 * this.spec.nLayers * perSide, Usage.MAP_READ | Usage.COPY_DST);
    const encoder = this.device.createCommandEncoder({ label: 'kv:read' });
    let offset = 0;
    for (let l = 0; l < this.spec.nLayers; l++) {
      for (const buf of [this.keys[l], this.values[l]]) {
        for (let b = 0; b < blocks; b++) {
          this.checkBlock(blockTable[b]);
          encoder.copyBufferToBuffer(buf, blockTable[b] * this.blockBytes, staging, offset, this.blockBytes);
          offset += this.blockBytes;
        }
      }
    }
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ_MODE, 0, offset);
    const all = new Float32Array(staging.getMappedRange(0, offset).slice(0));
    staging.unmap();
    this.buffers.release(staging);
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    const used = (tokens * this.tokenBytes) / 4;
    for (let l = 0; l < this.spec.nLayers; l++) {
      const base = (2 * l * perSide) / 4;
      keys.push(all.slice(base, base + used));
      values.push(all.slice(base + perSide / 4, base + perSide / 4 + used));
    }
    return { tokens, keys, values };
  }

  /** Upload a snapshot into fresh blocks (restore from the warm or cold tier). */
  write(blockTable: readonly BlockId[], snapshot: KvSnapshot): void {
    const blocks = Math.ceil(snapshot.tokens / this.spec.blockTokens);
    if (blocks > blockTable.length) throw new InvalidRequestError('block table shorter than the snapshot', { tokens: snapshot.tokens });
    const perBlock = this.blockBytes / 4;
    for (let l = 0; l < this.spec.nLayers; l++) {
      const sides: Array<[GPUBuffer, Float32Array]> = [[this.keys[l], snapshot.keys[l]], [this.values[l], snapshot.values[l]]];
      for (const [buf, data] of sides) {
        for (let b = 0; b < blocks; b++) {
          this.checkBlock(blockTable[b]);
          const chunk = data.subarray(b * perBlock, Math.min((b + 1) * perBlock, data.length));
          this.buffers.write(buf, chunk, blockTable[b] * this.blockBytes);
        }
      }
    }
  }

  destroy(): void {
    for (const b of [...this.keys, ...this.values]) this.buffers.release(b);
    this.keys.length = 0;
    this.values.length = 0;
  }

  private checkBlock(id: BlockId): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.totalBlocks) {
      throw new InvalidRequestError(`block id ${id} is outside the KV pool`, { id, total: this.totalBlocks });
    }
  }
}

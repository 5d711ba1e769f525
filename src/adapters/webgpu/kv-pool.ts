import type { BlockCopy, BlockId, PoolLayout } from '../../domain/block-pool.ts';
import { InvalidRequestError } from '../../domain/errors.ts';
import { f16ArrayToF32, f32ArrayToF16 } from '../../domain/half.ts';
import { elementsPerBlockPerLayer, kvBytesPerElement, type ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import type { KvSnapshot } from '../../ports/outbound.ts';
import type { GpuBuffers } from './gpu-buffers.ts';
import { MAP_READ_MODE, Usage } from './usage.ts';
import { MAX_KV_SHARDS } from './ops/attention.ts';

/**
 * The hot tier's memory: per layer, K and V each in 1 or 2 shard buffers of `blocksPerShard`
 * blocks (the last one may hold fewer), laid out [block, tokenInBlock, kvHead, headDim] in the
 * spec's dtype: f32, or f16 as packed halves (two per u32 word, element i the low half of word
 * i / 2 when even; 2 bytes per element, so a token costs 2 x layers x kvHeads x headDim x 2
 * bytes). Global block b is block b % blocksPerShard of shard b / blocksPerShard: a pool larger
 * than one storage binding (planPoolLayout) is sharded, and the attention kernel binds both
 * shards (MAX_KV_SHARDS). Snapshots (KvSnapshot) are f32 whatever the
 * pool holds: reading widens f16 exactly, writing rounds f32 to nearest f16, so a pool of either
 * dtype restores a snapshot (and a blob) of the other. Which block belongs to whom is the domain
 * BlockPool's business; this class only moves bytes.
 */
export class GpuKvPool {
  /** [layer][shard] */
  readonly keys: GPUBuffer[][] = [];
  readonly values: GPUBuffer[][] = [];
  readonly totalBlocks: number;
  readonly blocksPerShard: number;
  readonly blockBytes: number;
  private readonly tokenBytes: number;

  constructor(
    private readonly buffers: GpuBuffers,
    private readonly device: GPUDevice,
    readonly spec: ModelCacheSpec,
    layout: PoolLayout,
  ) {
    if (spec.dtype !== 'f32' && spec.dtype !== 'f16') throw new InvalidRequestError(`unknown KV dtype ${String(spec.dtype)}`, { dtype: spec.dtype });
    if (spec.headDim % 2 !== 0) throw new InvalidRequestError('KV blocks need an even headDim', { headDim: spec.headDim });
    if (layout.shardCount > MAX_KV_SHARDS) {
      throw new InvalidRequestError(`a KV pool of ${layout.shardCount} shards per layer exceeds the ${MAX_KV_SHARDS} the attention kernel binds`, { shards: layout.shardCount });
    }
    this.totalBlocks = layout.totalBlocks;
    this.blocksPerShard = layout.blocksPerShard;
    this.blockBytes = elementsPerBlockPerLayer(spec) * kvBytesPerElement(spec.dtype);
    this.tokenBytes = spec.nKvHeads * spec.headDim * kvBytesPerElement(spec.dtype);
    for (let l = 0; l < spec.nLayers; l++) {
      const k: GPUBuffer[] = [];
      const v: GPUBuffer[] = [];
      for (let s = 0; s < layout.shardCount; s++) {
        const bytes = Math.min(this.blocksPerShard, this.totalBlocks - s * this.blocksPerShard) * this.blockBytes;
        const name = layout.shardCount === 1 ? `kv:layer${l}` : `kv:layer${l}:shard${s}`;
        k.push(buffers.createExact(`${name}:K`, bytes, undefined, 'kv_pool'));
        v.push(buffers.createExact(`${name}:V`, bytes, undefined, 'kv_pool'));
      }
      this.keys.push(k);
      this.values.push(v);
    }
  }

  /** The shard holding global block `id`, and the block's byte offset in it. */
  private locate(id: BlockId): { readonly shard: number; readonly offset: number } {
    this.checkBlock(id);
    const shard = Math.floor(id / this.blocksPerShard);
    return { shard, offset: (id - shard * this.blocksPerShard) * this.blockBytes };
  }

  /** The buffers of every layer and side, each as its shard list. */
  private sides(): GPUBuffer[][] {
    return [...this.keys, ...this.values];
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
    for (const shards of this.sides()) {
      copies.forEach(({ from }, i) => {
        const src = this.locate(from);
        encoder.copyBufferToBuffer(shards[src.shard], src.offset, scratch, i * this.blockBytes, this.blockBytes);
      });
      copies.forEach(({ to }, i) => {
        const dst = this.locate(to);
        encoder.copyBufferToBuffer(scratch, i * this.blockBytes, shards[dst.shard], dst.offset, this.blockBytes);
      });
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
      for (const shards of [this.keys[l], this.values[l]]) {
        for (let b = 0; b < blocks; b++) {
          const src = this.locate(blockTable[b]);
          encoder.copyBufferToBuffer(shards[src.shard], src.offset, staging, offset, this.blockBytes);
          offset += this.blockBytes;
        }
      }
    }
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ_MODE, 0, offset);
    const raw = staging.getMappedRange(0, offset).slice(0);
    staging.unmap();
    this.buffers.release(staging);
    const bpe = kvBytesPerElement(this.spec.dtype);
    // f16 halves widen to f32 exactly.
    const side = (byteStart: number): Float32Array => {
      const count = (tokens * this.tokenBytes) / bpe;
      return bpe === 2 ? f16ArrayToF32(new Uint16Array(raw, byteStart, count)) : new Float32Array(raw.slice(byteStart, byteStart + count * 4));
    };
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let l = 0; l < this.spec.nLayers; l++) {
      keys.push(side(2 * l * perSide));
      values.push(side(2 * l * perSide + perSide));
    }
    return { tokens, keys, values };
  }

  /** Upload a snapshot into fresh blocks (restore from the warm or cold tier). */
  write(blockTable: readonly BlockId[], snapshot: KvSnapshot): void {
    const blocks = Math.ceil(snapshot.tokens / this.spec.blockTokens);
    if (blocks > blockTable.length) throw new InvalidRequestError('block table shorter than the snapshot', { tokens: snapshot.tokens });
    const perBlock = elementsPerBlockPerLayer(this.spec);
    const f16 = this.spec.dtype === 'f16';
    for (let l = 0; l < this.spec.nLayers; l++) {
      const sides: Array<[GPUBuffer[], Float32Array]> = [[this.keys[l], snapshot.keys[l]], [this.values[l], snapshot.values[l]]];
      for (const [shards, data] of sides) {
        // An f16 pool rounds the snapshot to nearest f16 (the same rounding as a live KV write).
        const stored = f16 ? f32ArrayToF16(data) : data;
        for (let b = 0; b < blocks; b++) {
          const dst = this.locate(blockTable[b]);
          const chunk = stored.subarray(b * perBlock, Math.min((b + 1) * perBlock, stored.length));
          this.buffers.write(shards[dst.shard], chunk, dst.offset);
        }
      }
    }
  }

  destroy(): void {
    for (const shards of this.sides()) for (const b of shards) this.buffers.release(b);
    this.keys.length = 0;
    this.values.length = 0;
  }

  private checkBlock(id: BlockId): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.totalBlocks) {
      throw new InvalidRequestError(`block id ${id} is outside the KV pool`, { id, total: this.totalBlocks });
    }
  }
}

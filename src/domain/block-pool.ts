import { InternalError, InvalidRequestError, PoolExhaustedError } from './errors.ts';
import {
  bytesPerBlock,
  elementsPerBlockPerLayer,
  kvBytesPerElement,
  type ModelCacheSpec,
} from './model-cache-spec.ts';

export type BlockId = number;

/** Device limits that bound a single KV buffer. */
export interface BufferLimits {
  readonly maxBufferSize: number;
  readonly maxStorageBufferBindingSize: number;
}

/**
 * How a pool of `totalBlocks` is laid out in GPU buffers: per layer, K and V are each split into
 * `shardCount` buffers of at most `blocksPerShard` blocks, so no buffer exceeds the device limits.
 */
export interface PoolLayout {
  readonly totalBlocks: number;
  readonly blocksPerShard: number;
  readonly shardCount: number;
  readonly bytesPerBlock: number;
  readonly bytesPerShardBuffer: number;
}

/** Size a pool from a byte budget and the device's buffer limits. */
export function planPoolLayout(spec: ModelCacheSpec, budgetBytes: number, limits: BufferLimits): PoolLayout {
  const perBlock = bytesPerBlock(spec);
  const totalBlocks = Math.floor(budgetBytes / perBlock);
  if (!Number.isFinite(budgetBytes) || totalBlocks < 1) {
    throw new InvalidRequestError('KV budget is smaller than one block', { budgetBytes, bytesPerBlock: perBlock });
  }
  const perBlockPerBuffer = elementsPerBlockPerLayer(spec) * kvBytesPerElement(spec.dtype);
  const bufferCap = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  const blocksPerShard = Math.min(totalBlocks, Math.floor(bufferCap / perBlockPerBuffer));
  if (blocksPerShard < 1) {
    throw new InvalidRequestError('One KV block does not fit the device buffer limits', { perBlockPerBuffer, bufferCap });
  }
  return Object.freeze({
    totalBlocks,
    blocksPerShard,
    shardCount: Math.ceil(totalBlocks / blocksPerShard),
    bytesPerBlock: perBlock,
    bytesPerShardBuffer: blocksPerShard * perBlockPerBuffer,
  });
}

/** A copy the caller must perform on the device before writing into `to`. */
export interface BlockCopy {
  readonly from: BlockId;
  readonly to: BlockId;
}

export interface PoolStats {
  readonly totalBlocks: number;
  readonly freeBlocks: number;
  readonly usedBlocks: number;
  /** Blocks referenced more than once (shared prefixes). */
  readonly sharedBlocks: number;
  /** Sum of refcounts: what the pool would need without sharing. */
  readonly logicalBlocks: number;
}

/**
 * Reference-counted accounting of KV blocks. Pure bookkeeping: it never touches memory; the
 * backend performs the copies it asks for. Allocation is all-or-nothing so a failed request
 * leaves the pool unchanged.
 */
export class BlockPool {
  readonly totalBlocks: number;
  private readonly refs: Uint32Array;
  /** Stack of free ids; popping from the end hands out low ids first. */
  private readonly free: BlockId[];

  constructor(totalBlocks: number) {
    if (!Number.isInteger(totalBlocks) || totalBlocks < 1) {
      throw new InvalidRequestError('BlockPool needs a positive integer block count', { totalBlocks });
    }
    this.totalBlocks = totalBlocks;
    this.refs = new Uint32Array(totalBlocks);
    this.free = Array.from({ length: totalBlocks }, (_, i) => totalBlocks - 1 - i);
  }

  get freeCount(): number {
    return this.free.length;
  }

  canAllocate(n: number): boolean {
    return n <= this.free.length;
  }

  /** Take `n` fresh blocks with refcount 1, or throw and take none. */
  allocate(n: number): BlockId[] {
    if (!Number.isInteger(n) || n < 0) throw new InvalidRequestError('block count must be a non-negative integer', { n });
    if (n > this.free.length) {
      throw new PoolExhaustedError(`Need ${n} blocks, ${this.free.length} free of ${this.totalBlocks}`, {
        requested: n,
        free: this.free.length,
        total: this.totalBlocks,
      });
    }
    const ids = this.free.splice(this.free.length - n, n).reverse();
    for (const id of ids) this.refs[id] = 1;
    return ids;
  }

  refCount(id: BlockId): number {
    this.check(id);
    return this.refs[id];
  }

  /** Add a reference to a live block (sharing it). */
  retain(id: BlockId): void {
    this.checkLive(id);
    this.refs[id] += 1;
  }

  /** Drop a reference; returns true when the block went back to the free list. */
  release(id: BlockId): boolean {
    this.checkLive(id);
    this.refs[id] -= 1;
    if (this.refs[id] > 0) return false;
    this.free.push(id);
    return true;
  }

  releaseAll(ids: readonly BlockId[]): number {
    let freed = 0;
    for (const id of ids) if (this.release(id)) freed++;
    return freed;
  }

  /** A second owner of the same blocks: every block gains a reference. */
  fork(table: readonly BlockId[]): BlockId[] {
    for (const id of table) this.checkLive(id);
    for (const id of table) this.refs[id] += 1;
    return [...table];
  }

  /**
   * Make `table[index]` safe to write. A block shared with others is replaced by a fresh copy
   * (copy-on-write); the caller must copy `from` into `to` on the device before writing.
   */
  prepareWrite(table: BlockId[], index: number): BlockCopy | null {
    const id = table[index];
    if (id === undefined) throw new InvalidRequestError('block index out of range', { index, length: table.length });
    if (this.refCount(id) === 1) return null;
    const [fresh] = this.allocate(1);
    this.release(id);
    table[index] = fresh;
    return { from: id, to: fresh };
  }

  stats(): PoolStats {
    let shared = 0;
    let logical = 0;
    for (const r of this.refs) {
      if (r > 1) shared++;
      logical += r;
    }
    return {
      totalBlocks: this.totalBlocks,
      freeBlocks: this.free.length,
      usedBlocks: this.totalBlocks - this.free.length,
      sharedBlocks: shared,
      logicalBlocks: logical,
    };
  }

  private check(id: BlockId): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.totalBlocks) {
      throw new InvalidRequestError(`block id ${id} is outside the pool`, { id, total: this.totalBlocks });
    }
  }

  private checkLive(id: BlockId): void {
    this.check(id);
    if (this.refs[id] === 0) throw new InternalError(`block ${id} is not allocated`, { id });
  }
}

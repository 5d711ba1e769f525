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
  /** Blocks available to allocate, cached ones included. */
  readonly freeBlocks: number;
  /** Free blocks that still hold an indexed prefix and can be revived by a prefix hit. */
  readonly cachedBlocks: number;
  readonly usedBlocks: number;
  /** Blocks referenced more than once (shared prefixes). */
  readonly sharedBlocks: number;
  /** Sum of refcounts: what the pool would need without sharing. */
  readonly logicalBlocks: number;
}

/**
 * Lets the pool keep the content of freed blocks that a prefix index still names: such a block
 * is free (it counts as available) but a prefix hit can revive it until allocation reuses it.
 */
export interface BlockCacheHooks {
  isIndexed(id: BlockId): boolean;
  /** The block is being reused: drop it from the index; returns every id the index dropped. */
  evict(id: BlockId): readonly BlockId[];
}

/**
 * Reference-counted accounting of KV blocks. Pure bookkeeping: it never touches memory; the
 * backend performs the copies it asks for. Allocation is all-or-nothing so a failed request
 * leaves the pool unchanged. Freed blocks that hold an indexed prefix stay cached (LRU) and are
 * reused only after every empty block: "evict unreferenced cached blocks first".
 */
export class BlockPool {
  readonly totalBlocks: number;
  private readonly refs: Uint32Array;
  /** Stack of empty ids; popping from the end hands out low ids first. */
  private readonly free: BlockId[];
  /** Freed but still indexed, in LRU order (Map insertion order: oldest first). */
  private readonly cached = new Map<BlockId, true>();
  private hooks: BlockCacheHooks | null = null;
  /**
   * While a step is planned but its writes are not yet submitted, blocks whose last reference
   * goes are held here instead of becoming free: nobody may be handed a block that a planned
   * step is about to write (use after free). `unfence` frees them.
   */
  private fences = 0;
  private readonly quarantine = new Set<BlockId>();

  constructor(totalBlocks: number) {
    if (!Number.isInteger(totalBlocks) || totalBlocks < 1) {
      throw new InvalidRequestError('BlockPool needs a positive integer block count', { totalBlocks });
    }
    this.totalBlocks = totalBlocks;
    this.refs = new Uint32Array(totalBlocks);
    this.free = Array.from({ length: totalBlocks }, (_, i) => totalBlocks - 1 - i);
  }

  setCacheHooks(hooks: BlockCacheHooks | null): void {
    this.hooks = hooks;
  }

  get freeCount(): number {
    return this.free.length + this.cached.size;
  }

  canAllocate(n: number): boolean {
    return n <= this.freeCount;
  }

  isCached(id: BlockId): boolean {
    return this.cached.has(id);
  }

  /**
   * Take a reference on a cached free block (a prefix hit): it leaves the free set. A block held
   * by a fence may be revived too when it is indexed: indexed content is never written.
   */
  revive(id: BlockId): void {
    this.check(id);
    const held = this.quarantine.has(id) && this.hooks?.isIndexed(id) === true;
    if (held) this.quarantine.delete(id);
    else if (!this.cached.delete(id)) throw new InternalError(`block ${id} is not a cached free block`, { id });
    this.refs[id] = 1;
  }

  /** True when the block has no reference but may be revived (cached, or indexed and held by a fence). */
  isRevivable(id: BlockId): boolean {
    this.check(id);
    return this.cached.has(id) || (this.quarantine.has(id) && this.hooks?.isIndexed(id) === true);
  }

  /** Start holding freed blocks (a step's writes are planned); fences nest. */
  fence(): void {
    this.fences++;
  }

  /** The planned writes are submitted: blocks freed meanwhile become free (or cached). */
  unfence(): void {
    if (this.fences === 0) throw new InternalError('unfence without a fence');
    if (--this.fences > 0) return;
    const held = [...this.quarantine];
    this.quarantine.clear();
    for (const id of held) this.toFreeSet(id);
  }

  /** Blocks freed during a fence and not yet free. */
  get heldCount(): number {
    return this.quarantine.size;
  }

  /** Take `n` fresh blocks with refcount 1, or throw and take none. */
  allocate(n: number): BlockId[] {
    if (!Number.isInteger(n) || n < 0) throw new InvalidRequestError('block count must be a non-negative integer', { n });
    if (n > this.freeCount) {
      throw new PoolExhaustedError(`Need ${n} blocks, ${this.freeCount} free of ${this.totalBlocks}`, {
        requested: n,
        free: this.freeCount,
        total: this.totalBlocks,
      });
    }
    while (this.free.length < n) this.evictOldestCached();
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
    if (this.fences > 0) this.quarantine.add(id);
    else this.toFreeSet(id);
    return true;
  }

  private toFreeSet(id: BlockId): void {
    if (this.hooks?.isIndexed(id)) this.cached.set(id, true);
    else this.free.push(id);
  }

  /** Forget every cached block's content: they become plain empty blocks. */
  dropCached(): void {
    for (const id of this.cached.keys()) this.free.push(id);
    this.cached.clear();
  }

  private evictOldestCached(): void {
    const oldest = this.cached.keys().next();
    if (oldest.done) throw new InternalError('no cached block to evict');
    this.cached.delete(oldest.value);
    this.free.push(oldest.value);
    // The index drops the block and its descendants; cached descendants become empty blocks.
    for (const id of this.hooks?.evict(oldest.value) ?? []) {
      if (this.cached.delete(id)) this.free.push(id);
    }
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
   * `force` copies even an unshared block (one a prefix index names must never change).
   */
  prepareWrite(table: BlockId[], index: number, force = false): BlockCopy | null {
    const id = table[index];
    if (id === undefined) throw new InvalidRequestError('block index out of range', { index, length: table.length });
    if (this.refCount(id) === 1 && !force) return null;
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
      freeBlocks: this.freeCount,
      cachedBlocks: this.cached.size,
      usedBlocks: this.totalBlocks - this.freeCount,
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

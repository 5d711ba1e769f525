import { describe, expect, it } from 'vitest';
import { BlockPool, planPoolLayout } from '../src/domain/block-pool.ts';
import { createModelCacheSpec, bytesPerBlock } from '../src/domain/model-cache-spec.ts';

const spec = createModelCacheSpec({
  modelId: 'm', fingerprint: 'fp', nLayers: 2, nKvHeads: 2, headDim: 16, blockTokens: 16, dtype: 'f32',
});

describe('BlockPool', () => {
  it('allocates distinct blocks and returns them on release', () => {
    const pool = new BlockPool(8);
    const a = pool.allocate(3);
    const b = pool.allocate(2);
    expect(new Set([...a, ...b]).size).toBe(5);
    expect(pool.freeCount).toBe(3);
    expect(pool.releaseAll(a)).toBe(3);
    expect(pool.freeCount).toBe(6);
    expect(pool.stats()).toMatchObject({ usedBlocks: 2, freeBlocks: 6, sharedBlocks: 0 });
  });

  it('throws PoolExhaustedError and leaves the pool unchanged when a request does not fit', () => {
    const pool = new BlockPool(4);
    pool.allocate(3);
    let caught: unknown;
    try {
      pool.allocate(2);
    } catch (e) {
      caught = e;
    }
    expect(caught).toMatchObject({ name: 'PoolExhaustedError', code: 'POOL_EXHAUSTED' });
    expect(pool.freeCount).toBe(1);
    expect(pool.allocate(1)).toHaveLength(1);
    expect(() => pool.allocate(1)).toThrow(/Need 1 blocks, 0 free/);
  });

  it('counts references: a shared block is freed only by its last owner', () => {
    const pool = new BlockPool(4);
    const [id] = pool.allocate(1);
    pool.retain(id);
    expect(pool.refCount(id)).toBe(2);
    expect(pool.release(id)).toBe(false);
    expect(pool.freeCount).toBe(3);
    expect(pool.release(id)).toBe(true);
    expect(pool.freeCount).toBe(4);
    expect(() => pool.release(id)).toThrow(/not allocated/);
    expect(() => pool.retain(99)).toThrow(/outside the pool/);
  });

  it('fork shares every block; copy-on-write replaces only the written shared block', () => {
    const pool = new BlockPool(8);
    const parent = pool.allocate(3);
    const child = pool.fork(parent);
    expect(child).toEqual(parent);
    expect(pool.stats()).toMatchObject({ usedBlocks: 3, sharedBlocks: 3, logicalBlocks: 6 });

    const copy = pool.prepareWrite(child, 2);
    expect(copy).not.toBeNull();
    expect(copy?.from).toBe(parent[2]);
    expect(child[2]).toBe(copy?.to);
    expect(child[2]).not.toBe(parent[2]);
    expect(pool.refCount(parent[2])).toBe(1);
    expect(pool.refCount(child[2])).toBe(1);
    expect(pool.refCount(parent[0])).toBe(2);
    // A block owned once is written in place.
    expect(pool.prepareWrite(child, 2)).toBeNull();
    expect(pool.prepareWrite(parent, 2)).toBeNull();

    pool.releaseAll(parent);
    pool.releaseAll(child);
    expect(pool.freeCount).toBe(8);
  });

  it('copy-on-write fails cleanly when the pool is full', () => {
    const pool = new BlockPool(2);
    const a = pool.allocate(2);
    const b = pool.fork(a);
    expect(() => pool.prepareWrite(b, 0)).toThrow(expect.objectContaining({ name: 'PoolExhaustedError' }));
    expect(b).toEqual(a);
    expect(pool.refCount(a[0])).toBe(2);
  });

  it('rejects invalid sizes', () => {
    expect(() => new BlockPool(0)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    expect(() => new BlockPool(1).allocate(-1)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  });
});

describe('planPoolLayout', () => {
  it('derives capacity from the byte budget', () => {
    const per = bytesPerBlock(spec);
    expect(per).toBe(2 * 2 * 16 * 2 * 16 * 4);
    const layout = planPoolLayout(spec, per * 10 + per / 2, { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 30 });
    expect(layout).toMatchObject({ totalBlocks: 10, shardCount: 1, blocksPerShard: 10 });
  });

  it('shards a layer across buffers when one buffer would exceed the binding limit', () => {
    const perBuffer = 16 * 2 * 16 * 4; // one block of one layer's K
    const limit = perBuffer * 3 + 7;
    const layout = planPoolLayout(spec, bytesPerBlock(spec) * 10, { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: limit });
    expect(layout.blocksPerShard).toBe(3);
    expect(layout.shardCount).toBe(4);
    expect(layout.bytesPerShardBuffer).toBeLessThanOrEqual(limit);
  });

  it('refuses budgets below one block', () => {
    expect(() => planPoolLayout(spec, 10, { maxBufferSize: 1e9, maxStorageBufferBindingSize: 1e9 })).toThrow(
      expect.objectContaining({ name: 'InvalidRequestError' }),
    );
  });
});

describe('BlockPool cached free blocks', () => {
  it('keeps indexed blocks cached when freed, reuses empty blocks first, then the oldest cached', () => {
    const pool = new BlockPool(4);
    const indexed = new Set<number>();
    const evicted: number[] = [];
    pool.setCacheHooks({
      isIndexed: (id) => indexed.has(id),
      evict: (id) => {
        indexed.delete(id);
        evicted.push(id);
        return [id];
      },
    });
    const [a, b, c] = pool.allocate(3);
    indexed.add(a);
    indexed.add(b);
    pool.release(b);
    pool.release(a);
    pool.release(c);
    expect(pool.stats()).toMatchObject({ freeBlocks: 4, cachedBlocks: 2, usedBlocks: 0 });
    // A prefix hit revives a cached block without allocation.
    pool.revive(a);
    expect(pool.refCount(a)).toBe(1);
    expect(pool.stats().cachedBlocks).toBe(1);
    // Two empty blocks exist (c and the never-used one): they go first, then cached b is evicted.
    const fresh = pool.allocate(3);
    expect(fresh).toContain(b);
    expect(evicted).toEqual([b]);
    expect(pool.freeCount).toBe(0);
    expect(() => pool.revive(b)).toThrow(/not a cached free block/);
  });

  it('a fence holds freed blocks until the planned step is submitted', () => {
    const pool = new BlockPool(4);
    const indexed = new Set<number>();
    pool.setCacheHooks({ isIndexed: (id) => indexed.has(id), evict: () => [] });
    const [a, b] = pool.allocate(2);
    indexed.add(a);
    pool.fence();
    pool.releaseAll([a, b]);
    // Neither a nor b can be handed out while the fence stands: only the two untouched blocks.
    expect(pool.freeCount).toBe(2);
    expect(pool.heldCount).toBe(2);
    const others = pool.allocate(2);
    expect(others).not.toContain(a);
    expect(others).not.toContain(b);
    expect(() => pool.allocate(1)).toThrow(/Need 1 blocks/);
    // An indexed held block may be revived (its content is never written); an unindexed one not.
    expect(pool.isRevivable(a)).toBe(true);
    expect(pool.isRevivable(b)).toBe(false);
    pool.unfence();
    expect(pool.heldCount).toBe(0);
    expect(pool.stats()).toMatchObject({ freeBlocks: 2, cachedBlocks: 1 });
    expect(() => pool.unfence()).toThrow(/unfence without a fence/);
  });
});

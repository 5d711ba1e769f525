import { describe, expect, it } from 'vitest';
import { PrefixIndex, blockHash, rootHash } from '../src/domain/prefix-index.ts';

const range = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);

describe('PrefixIndex', () => {
  it('finds the longest prefix of full blocks', () => {
    const index = new PrefixIndex('model-a', 4);
    const tokens = range(100, 14); // 3 full blocks + 2 tokens
    expect(index.insert(tokens, [7, 8, 9, 10])).toEqual([7, 8, 9]);
    expect(index.lookup(tokens)).toEqual({ blockIds: [7, 8, 9], matchedTokens: 12 });
    // Shares the first 2 blocks, then diverges inside the third.
    const other = [...range(100, 9), 999, ...range(200, 6)];
    expect(index.lookup(other)).toEqual({ blockIds: [7, 8], matchedTokens: 8 });
    // A partial block never matches.
    expect(index.lookup(range(100, 3)).blockIds).toEqual([]);
    expect(index.lookup([5, ...range(101, 13)]).blockIds).toEqual([]);
  });

  it('does not match across models', () => {
    const a = new PrefixIndex('model-a', 4);
    const b = new PrefixIndex('model-b', 4);
    const tokens = range(0, 8);
    a.insert(tokens, [1, 2]);
    b.insert(range(50, 8), [3, 4]);
    expect(b.lookup(tokens).blockIds).toEqual([]);
    expect(a.chainHashes(tokens)[0]).not.toBe(b.chainHashes(tokens)[0]);
    expect(rootHash('model-a')).not.toBe(rootHash('model-b'));
  });

  it('hash covers the whole prefix, not only the block', () => {
    const index = new PrefixIndex('m', 2);
    index.insert([1, 2, 3, 4], [10, 11]);
    // Same second block, different first block: no match at all.
    expect(index.lookup([9, 9, 3, 4]).blockIds).toEqual([]);
    expect(blockHash(rootHash('m'), [1, 2])).toBe(index.chainHashes([1, 2])[0]);
  });

  it('skips blocks already indexed and reports only new ones', () => {
    const index = new PrefixIndex('m', 2);
    expect(index.insert([1, 2, 3, 4], [10, 11])).toEqual([10, 11]);
    // Another sequence with the same prefix in other blocks: the prefix stays with 10, 11.
    expect(index.insert([1, 2, 3, 4, 5, 6], [20, 21, 22])).toEqual([22]);
    expect(index.lookup([1, 2, 3, 4, 5, 6]).blockIds).toEqual([10, 11, 22]);
    expect(index.size).toBe(3);
  });

  it('removes a block with its descendants and tracks leaves', () => {
    const index = new PrefixIndex('m', 2);
    index.insert([1, 2, 3, 4, 5, 6], [10, 11, 12]);
    index.insert([1, 2, 7, 8], [10, 13]);
    expect(index.isLeaf(12)).toBe(true);
    expect(index.isLeaf(10)).toBe(false);
    expect(index.remove(11).sort()).toEqual([11, 12]);
    expect(index.lookup([1, 2, 3, 4, 5, 6]).blockIds).toEqual([10]);
    expect(index.lookup([1, 2, 7, 8]).blockIds).toEqual([10, 13]);
    expect(index.remove(13)).toEqual([13]);
    expect(index.isLeaf(10)).toBe(true);
    expect(index.remove(42)).toEqual([]);
    expect(index.clear()).toEqual([10]);
  });

  it('looks up in O(blocks): 1000-block prompt', () => {
    const index = new PrefixIndex('m', 16);
    const tokens = range(0, 16_000);
    index.insert(tokens, range(0, 1000));
    expect(index.lookup(tokens).matchedTokens).toBe(16_000);
  });
});

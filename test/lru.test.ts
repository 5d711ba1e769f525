import { describe, expect, it } from 'vitest';
import { Lru } from '../src/domain/lru.ts';

describe('Lru', () => {
  it('evicts the least recently used entry first, and get refreshes recency', () => {
    const lru = new Lru<string, number>({ maxSize: 2 });
    expect(lru.set('a', 1)).toEqual([]);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    expect(lru.set('c', 3)).toEqual([['b', 2]]);
    expect(lru.keys()).toEqual(['a', 'c']);
    expect(lru.peek('a')).toBe(1);
    expect(lru.keys()).toEqual(['a', 'c']);
  });

  it('budgets by size and returns everything it pushed out', () => {
    const lru = new Lru<string, Uint8Array>({ maxSize: 100, sizeOf: (v) => v.byteLength });
    lru.set('a', new Uint8Array(40));
    lru.set('b', new Uint8Array(40));
    const evicted = lru.set('c', new Uint8Array(70));
    expect(evicted.map(([k]) => k)).toEqual(['a', 'b']);
    expect(lru.totalSize).toBe(70);
  });

  it('keeps a single oversized entry rather than dropping the newest', () => {
    const lru = new Lru<string, number>({ maxSize: 5, sizeOf: (v) => v });
    lru.set('x', 2);
    expect(lru.set('big', 9)).toEqual([['x', 2]]);
    expect(lru.has('big')).toBe(true);
    expect(lru.totalSize).toBe(9);
  });

  it('replacing a key updates its size; delete and touch work', () => {
    const lru = new Lru<string, number>({ sizeOf: (v) => v });
    lru.set('a', 3);
    lru.set('b', 4);
    lru.set('a', 10);
    expect(lru.totalSize).toBe(14);
    expect(lru.oldest()).toEqual(['b', 4]);
    expect(lru.touch('b')).toBe(true);
    expect(lru.touch('zz')).toBe(false);
    expect(lru.oldest()).toEqual(['a', 10]);
    expect(lru.delete('a')).toBe(10);
    expect(lru.totalSize).toBe(4);
    expect(lru.evictOver(0)).toEqual([['b', 4]]);
    expect(lru.size).toBe(0);
  });
});

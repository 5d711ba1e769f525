import { InvalidRequestError } from './errors.ts';

export interface LruOptions<V> {
  /** Budget in the units `sizeOf` returns; Infinity for none. */
  readonly maxSize?: number;
  /** Size of one value (bytes, blocks...). Defaults to 1 per entry. */
  readonly sizeOf?: (value: V) => number;
}

/**
 * Least-recently-used map with a size budget. `set` returns what it pushed out, instead of
 * dropping it, because in a cache tier the evicted entry must move down a tier, not vanish.
 * A Map keeps insertion order, so re-inserting on touch makes the first key the oldest.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; size: number }>();
  private readonly sizeOf: (value: V) => number;
  private total = 0;
  maxSize: number;

  constructor(options: LruOptions<V> = {}) {
    this.maxSize = options.maxSize ?? Infinity;
    this.sizeOf = options.sizeOf ?? (() => 1);
    if (!(this.maxSize >= 0)) throw new InvalidRequestError('maxSize must be >= 0', { maxSize: this.maxSize });
  }

  get size(): number {
    return this.map.size;
  }

  get totalSize(): number {
    return this.total;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Read and mark as most recently used. */
  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (!slot) return undefined;
    this.map.delete(key);
    this.map.set(key, slot);
    return slot.value;
  }

  /** Read without touching recency. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  touch(key: K): boolean {
    if (!this.map.has(key)) return false;
    this.get(key);
    return true;
  }

  /** Insert or replace as most recent; returns entries evicted to get back under budget. */
  set(key: K, value: V): Array<[K, V]> {
    const size = this.sizeOf(value);
    if (!Number.isFinite(size) || size < 0) throw new InvalidRequestError('sizeOf returned an invalid size', { size });
    this.delete(key);
    this.map.set(key, { value, size });
    this.total += size;
    return this.evictOver(this.maxSize, key);
  }

  delete(key: K): V | undefined {
    const slot = this.map.get(key);
    if (!slot) return undefined;
    this.map.delete(key);
    this.total -= slot.size;
    return slot.value;
  }

  /** Oldest first. */
  keys(): K[] {
    return [...this.map.keys()];
  }

  oldest(): [K, V] | undefined {
    const first = this.map.entries().next();
    return first.done ? undefined : [first.value[0], first.value[1].value];
  }

  /**
   * Evict oldest entries until total <= budget. `keep` is never evicted (the entry just set),
   * so a single value larger than the budget stays and the caller sees the overshoot.
   */
  evictOver(budget: number, keep?: K): Array<[K, V]> {
    const evicted: Array<[K, V]> = [];
    for (const [key, slot] of [...this.map]) {
      if (this.total <= budget) break;
      if (key === keep) continue;
      this.map.delete(key);
      this.total -= slot.size;
      evicted.push([key, slot.value]);
    }
    return evicted;
  }
}

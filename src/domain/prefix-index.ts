import { InvalidRequestError } from './errors.ts';
import type { BlockId } from './block-pool.ts';

/**
 * Index of full KV blocks by a hash chain over their token ids:
 *   h0 = H(model fingerprint), h_i = H(h_{i-1}, tokens of block i).
 * Because each hash covers the whole prefix, a lookup walks the request's blocks from the start
 * and stops at the first miss: O(blocks). Entries keep their tokens and parent, and a lookup
 * verifies both, so a hash collision can cost a cache miss but never a wrong block.
 */

/** 64-bit hash as two 32-bit lanes (Math.imul mixing; fast, no BigInt), hex-encoded. */
function mixLanes(seedHi: number, seedLo: number, words: ArrayLike<number>): string {
  let h1 = 0xdeadbeef ^ seedHi;
  let h2 = 0x41c6ce57 ^ seedLo;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] | 0;
    h1 = Math.imul(h1 ^ w, 2654435761);
    h2 = Math.imul(h2 ^ w, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

function lanesOf(hex: string): [number, number] {
  return [parseInt(hex.slice(0, 8), 16) | 0, parseInt(hex.slice(8, 16), 16) | 0];
}

export function rootHash(fingerprint: string): string {
  const codes = Array.from(fingerprint, (c) => c.codePointAt(0) ?? 0);
  return mixLanes(0x5eed, codes.length, codes);
}

export function blockHash(parent: string, tokens: ArrayLike<number>): string {
  const [hi, lo] = lanesOf(parent);
  return mixLanes(hi, lo, tokens);
}

interface Entry {
  readonly hash: string;
  readonly parent: string;
  readonly tokens: Int32Array;
  readonly blockId: BlockId;
  readonly children: Set<string>;
}

export interface PrefixMatch {
  /** Cached blocks of the longest matching prefix, in order. */
  readonly blockIds: BlockId[];
  /** Tokens they cover: blockIds.length * blockTokens. */
  readonly matchedTokens: number;
}

export class PrefixIndex {
  readonly blockTokens: number;
  readonly root: string;
  private readonly byHash = new Map<string, Entry>();
  private readonly byBlock = new Map<BlockId, string>();

  constructor(fingerprint: string, blockTokens: number) {
    if (!Number.isInteger(blockTokens) || blockTokens < 1) {
      throw new InvalidRequestError('blockTokens must be a positive integer', { blockTokens });
    }
    this.blockTokens = blockTokens;
    this.root = rootHash(fingerprint);
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Hashes of every full block of `tokens`. */
  chainHashes(tokens: readonly number[]): string[] {
    const hashes: string[] = [];
    let parent = this.root;
    for (let b = 0; (b + 1) * this.blockTokens <= tokens.length; b++) {
      parent = blockHash(parent, tokens.slice(b * this.blockTokens, (b + 1) * this.blockTokens));
      hashes.push(parent);
    }
    return hashes;
  }

  /** Longest prefix of full blocks already indexed. */
  lookup(tokens: readonly number[]): PrefixMatch {
    const blockIds: BlockId[] = [];
    let parent = this.root;
    for (let b = 0; (b + 1) * this.blockTokens <= tokens.length; b++) {
      const slice = tokens.slice(b * this.blockTokens, (b + 1) * this.blockTokens);
      const hash = blockHash(parent, slice);
      const entry = this.byHash.get(hash);
      if (!entry || entry.parent !== parent || !sameTokens(entry.tokens, slice)) break;
      blockIds.push(entry.blockId);
      parent = hash;
    }
    return { blockIds, matchedTokens: blockIds.length * this.blockTokens };
  }

  /**
   * Index the full blocks of a sequence (`blockTable[i]` holds tokens of block i). Blocks whose
   * prefix is already indexed under another id are skipped. Returns the ids newly indexed, so the
   * caller can take a reference on each.
   */
  insert(tokens: readonly number[], blockTable: readonly BlockId[]): BlockId[] {
    const added: BlockId[] = [];
    let parent = this.root;
    const fullBlocks = Math.min(Math.floor(tokens.length / this.blockTokens), blockTable.length);
    for (let b = 0; b < fullBlocks; b++) {
      const slice = tokens.slice(b * this.blockTokens, (b + 1) * this.blockTokens);
      const hash = blockHash(parent, slice);
      const existing = this.byHash.get(hash);
      if (existing && (existing.parent !== parent || !sameTokens(existing.tokens, slice))) break;
      if (!existing && !this.byBlock.has(blockTable[b])) {
        this.byHash.set(hash, { hash, parent, tokens: Int32Array.from(slice), blockId: blockTable[b], children: new Set() });
        this.byHash.get(parent)?.children.add(hash);
        this.byBlock.set(blockTable[b], hash);
        added.push(blockTable[b]);
      }
      parent = hash;
    }
    return added;
  }

  has(blockId: BlockId): boolean {
    return this.byBlock.has(blockId);
  }

  /** True when no indexed block extends this one: evicting leaves first keeps chains whole. */
  isLeaf(blockId: BlockId): boolean {
    const hash = this.byBlock.get(blockId);
    return hash !== undefined && (this.byHash.get(hash)?.children.size ?? 0) === 0;
  }

  /** Remove a block and every block indexed under it; returns all removed ids. */
  remove(blockId: BlockId): BlockId[] {
    const hash = this.byBlock.get(blockId);
    if (hash === undefined) return [];
    const parent = this.byHash.get(hash)?.parent;
    if (parent !== undefined) this.byHash.get(parent)?.children.delete(hash);
    const removed: BlockId[] = [];
    const stack = [hash];
    while (stack.length > 0) {
      const h = stack.pop() as string;
      const entry = this.byHash.get(h);
      if (!entry) continue;
      stack.push(...entry.children);
      this.byHash.delete(h);
      this.byBlock.delete(entry.blockId);
      removed.push(entry.blockId);
    }
    return removed;
  }

  clear(): BlockId[] {
    const ids = [...this.byBlock.keys()];
    this.byHash.clear();
    this.byBlock.clear();
    return ids;
  }
}

function sameTokens(a: Int32Array, b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

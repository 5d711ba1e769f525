import type { BlockCopy, BlockId, BlockPool } from '../../domain/block-pool.ts';
import { PoolExhaustedError } from '../../domain/errors.ts';
import type { PrefixIndex } from '../../domain/prefix-index.ts';
import { commonPrefixLength, type AgentBlocks } from '../../domain/values.ts';

/**
 * Called before an idle agent's hot blocks are dropped, so the caller can move them down a tier.
 * It must start its read synchronously (e.g. submit the GPU copy) before returning: the blocks
 * are released right after, and only queue order keeps the copy ahead of their next writer.
 */
export type AgentEvictHook = (blocks: AgentBlocks) => Promise<void> | void;

export interface PrefixReuse {
  readonly table: BlockId[];
  /** Tokens whose KV the table already holds. */
  readonly reused: number;
  readonly source: 'agent' | 'prefix' | 'none';
}

/**
 * Who holds which KV blocks besides running sequences: the prefix index (one reference per
 * indexed full block) and idle agents (one reference per block of their last context). Frees
 * them under pressure: unreferenced indexed blocks first (LRU, leaves first), then idle agents
 * (LRU). Running sequences are preempted by the engine, not here.
 */
export class KvManager {
  private readonly agents = new Map<string, AgentBlocks>();
  private readonly blockUse = new Map<BlockId, number>();
  private clock = 0;

  constructor(
    readonly pool: BlockPool,
    readonly index: PrefixIndex,
    private readonly busyAgents: () => ReadonlySet<string>,
    private readonly onAgentEvict?: AgentEvictHook,
  ) {}

  get blockTokens(): number {
    return this.index.blockTokens;
  }

  agentBlocks(agentId: string): AgentBlocks | undefined {
    return this.agents.get(agentId);
  }

  agentIds(): string[] {
    return [...this.agents.keys()];
  }

  /** Take references on the longest cached prefix of `tokens` (never all of it: one token must be computed). */
  acquirePrefix(agentId: string, tokens: readonly number[]): PrefixReuse {
    const limit = tokens.length - 1;
    const agent = this.agents.get(agentId);
    const agentMatch = agent ? Math.min(commonPrefixLength(agent.tokenIds, tokens), limit) : 0;
    const indexed = this.index.lookup(tokens);
    const indexMatch = Math.min(indexed.matchedTokens, limit);
    const useAgent = agent !== undefined && agentMatch > indexMatch;
    const reused = useAgent ? agentMatch : indexMatch;
    const source: PrefixReuse['source'] = reused === 0 ? 'none' : useAgent ? 'agent' : 'prefix';
    const blocks = (useAgent ? agent.blockTable : indexed.blockIds).slice(0, Math.ceil(reused / this.blockTokens));
    const table = this.pool.fork(blocks);
    for (const b of table) this.touch(b);
    if (agent) {
      this.agents.delete(agentId);
      this.agents.set(agentId, agent);
    }
    return { table, reused, source };
  }

  /** Grow `table` to cover `tokens` positions, evicting cached blocks if needed. */
  ensureCapacity(table: BlockId[], tokens: number): boolean {
    const need = Math.ceil(tokens / this.blockTokens) - table.length;
    if (need <= 0) return true;
    if (!this.makeRoom(need)) return false;
    table.push(...this.pool.allocate(need));
    return true;
  }

  /**
   * Copy-on-write for every shared block that positions [from, to) will write into. Room for all
   * copies is made first, so either every copy is planned or the table is left untouched.
   */
  prepareWrites(table: BlockId[], from: number, to: number): BlockCopy[] | null {
    const first = Math.floor(from / this.blockTokens);
    const last = Math.ceil(to / this.blockTokens);
    let shared = 0;
    for (let b = first; b < last; b++) if (this.pool.refCount(table[b]) > 1) shared++;
    if (shared > 0 && !this.makeRoom(shared)) return null;
    const copies: BlockCopy[] = [];
    for (let b = first; b < last; b++) {
      const copy = this.pool.prepareWrite(table, b);
      if (copy) copies.push(copy);
    }
    return copies;
  }

  /** A finished sequence: index its full blocks and keep its context as the agent's cache. */
  commit(agentId: string, tokenIds: readonly number[], table: readonly BlockId[]): void {
    for (const id of this.index.insert(tokenIds, table)) this.pool.retain(id);
    for (const b of table) this.touch(b);
    const old = this.agents.get(agentId);
    this.agents.delete(agentId);
    const needed = Math.ceil(tokenIds.length / this.blockTokens);
    this.agents.set(agentId, { agentId, blockTable: table.slice(0, needed), tokenIds: [...tokenIds] });
    this.pool.releaseAll(table.slice(needed));
    if (old) this.pool.releaseAll(old.blockTable);
  }

  /** Drop an agent's hot cache (its blocks stay while a sequence or the index uses them). */
  dropAgent(agentId: string): boolean {
    const old = this.agents.get(agentId);
    if (!old) return false;
    this.agents.delete(agentId);
    this.pool.releaseAll(old.blockTable);
    return true;
  }

  /** Free at least `need` blocks from caches; false when caches cannot give that many. */
  makeRoom(need: number): boolean {
    while (this.pool.freeCount < need) {
      if (this.evictIndexedBlock()) continue;
      if (this.evictIdleAgent()) continue;
      return false;
    }
    return true;
  }

  /** Release everything cached (used when the engine shuts down or for leak checks). */
  clear(): void {
    for (const id of this.agentIds()) this.dropAgent(id);
    for (const b of this.index.clear()) this.pool.release(b);
    this.blockUse.clear();
  }

  assertFits(blocks: number): void {
    if (blocks > this.pool.totalBlocks) {
      throw new PoolExhaustedError(`request needs ${blocks} KV blocks; the pool has ${this.pool.totalBlocks}`, {
        requested: blocks,
        total: this.pool.totalBlocks,
      });
    }
  }

  private touch(block: BlockId): void {
    this.blockUse.set(block, ++this.clock);
  }

  private evictIndexedBlock(): boolean {
    let victim = -1;
    let oldest = Infinity;
    for (const [block, used] of this.blockUse) {
      if (!this.index.has(block)) {
        this.blockUse.delete(block);
        continue;
      }
      if (used < oldest && this.pool.refCount(block) === 1 && this.index.isLeaf(block)) {
        oldest = used;
        victim = block;
      }
    }
    if (victim < 0) return false;
    for (const b of this.index.remove(victim)) this.pool.release(b);
    this.blockUse.delete(victim);
    return true;
  }

  private evictIdleAgent(): boolean {
    const busy = this.busyAgents();
    for (const [agentId, blocks] of this.agents) {
      if (busy.has(agentId)) continue;
      void this.onAgentEvict?.(blocks);
      this.dropAgent(agentId);
      return true;
    }
    return false;
  }
}

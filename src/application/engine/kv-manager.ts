import type { BlockCopy, BlockId, BlockPool } from '../../domain/block-pool.ts';
import { PoolExhaustedError } from '../../domain/errors.ts';
import type { PrefixIndex } from '../../domain/prefix-index.ts';
import { commonPrefixLength, type AgentBlocks } from '../../domain/values.ts';

/**
 * Called before an idle agent's hot blocks are dropped, so the caller can move them down a tier.
 * It must start its read synchronously (e.g. submit the GPU copy) before returning: the blocks
 * are released right after, and only queue order keeps the copy ahead of their next writer.
 */
export type AgentEvictHook = (blocks: AgentBlocks) => void;

export interface PrefixReuse {
  readonly table: BlockId[];
  /** Tokens whose KV the table already holds. */
  readonly reused: number;
  readonly source: 'agent' | 'prefix' | 'none';
}

/**
 * Who holds KV blocks besides running sequences. Idle agents hold one reference per block of
 * their last context. The prefix index holds none: it names full blocks, and a named block
 * that nobody references stays cached in the pool's free set (LRU) until allocation needs it,
 * so a later request can revive it. Under pressure the pool reuses cached blocks first; then
 * idle agents are dropped (LRU); running sequences are preempted by the engine, not here.
 */
export class KvManager {
  /** Map order is LRU order: oldest first. */
  private readonly agents = new Map<string, AgentBlocks>();

  constructor(
    readonly pool: BlockPool,
    readonly index: PrefixIndex,
    private readonly busyAgents: () => ReadonlySet<string>,
    private onAgentEvict?: AgentEvictHook,
  ) {
    pool.setCacheHooks({ isIndexed: (id) => index.has(id), evict: (id) => index.remove(id) });
  }

  setEvictHook(hook: AgentEvictHook | undefined): void {
    this.onAgentEvict = hook;
  }

  /** Fresh blocks for `tokens` tokens (a restore), or null when the pool cannot give them. */
  allocateFor(tokens: number): BlockId[] | null {
    const table: BlockId[] = [];
    return this.ensureCapacity(table, tokens) ? table : null;
  }

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
    const blocks = (useAgent ? agent.blockTable : indexed.blockIds).slice(0, Math.ceil(reused / this.blockTokens));
    for (const b of blocks) {
      if (this.pool.isRevivable(b)) this.pool.revive(b);
      else this.pool.retain(b);
    }
    if (agent) this.touchAgent(agentId, agent);
    return { table: [...blocks], reused, source: reused === 0 ? 'none' : useAgent ? 'agent' : 'prefix' };
  }

  /** Grow `table` to cover `tokens` positions; false when the pool cannot, even after dropping idle agents. */
  ensureCapacity(table: BlockId[], tokens: number): boolean {
    const need = Math.ceil(tokens / this.blockTokens) - table.length;
    if (need <= 0) return true;
    if (!this.makeRoom(need)) return false;
    table.push(...this.pool.allocate(need));
    return true;
  }

  /**
   * Copy-on-write for every block that positions [from, to) write into and that is shared or
   * named by the prefix index (indexed content must never change). Room for all copies is made
   * first, so either every copy is planned or the table is left untouched.
   */
  prepareWrites(table: BlockId[], from: number, to: number): BlockCopy[] | null {
    const first = Math.floor(from / this.blockTokens);
    const last = Math.ceil(to / this.blockTokens);
    const mustCopy = (b: number): boolean => this.pool.refCount(table[b]) > 1 || this.index.has(table[b]);
    let count = 0;
    for (let b = first; b < last; b++) if (mustCopy(b)) count++;
    if (count > 0 && !this.makeRoom(count)) return null;
    const copies: BlockCopy[] = [];
    for (let b = first; b < last; b++) {
      if (!mustCopy(b)) continue;
      const copy = this.pool.prepareWrite(table, b, true);
      if (copy) copies.push(copy);
    }
    return copies;
  }

  /** A finished sequence: index its full blocks and keep its context (and references) as the agent's cache. */
  commit(agentId: string, tokenIds: readonly number[], table: readonly BlockId[]): void {
    this.index.insert(tokenIds, table);
    const needed = Math.ceil(tokenIds.length / this.blockTokens);
    this.pool.releaseAll(table.slice(needed));
    const old = this.agents.get(agentId);
    this.agents.delete(agentId);
    this.agents.set(agentId, { agentId, blockTable: table.slice(0, needed), tokenIds: [...tokenIds] });
    if (old) this.pool.releaseAll(old.blockTable);
  }

  /**
   * Install restored blocks (already filled by the backend) as an agent's cache. The table's
   * references pass to the agent; its full blocks join the prefix index.
   */
  adopt(agentId: string, tokenIds: readonly number[], table: readonly BlockId[]): void {
    this.commit(agentId, tokenIds, table);
  }

  /** Agents not running a request, least recently used first. */
  idleAgents(): AgentBlocks[] {
    const busy = this.busyAgents();
    return [...this.agents.values()].filter((a) => !busy.has(a.agentId));
  }

  /** Drop an agent's hot cache; its indexed blocks stay cached in the pool until reused. */
  dropAgent(agentId: string): boolean {
    const old = this.agents.get(agentId);
    if (!old) return false;
    this.agents.delete(agentId);
    this.pool.releaseAll(old.blockTable);
    return true;
  }

  /** Make `need` blocks allocatable, dropping idle agents (LRU) when the free and cached blocks are not enough. */
  makeRoom(need: number): boolean {
    while (this.pool.freeCount < need) {
      if (!this.evictIdleAgent()) return false;
    }
    return true;
  }

  /** Release every agent and forget every cached prefix (shutdown, leak checks). */
  clear(): void {
    for (const id of this.agentIds()) this.dropAgent(id);
    this.index.clear();
    this.pool.dropCached();
  }

  /** Refuse at submit a request whose context (prompt + max new tokens) exceeds the whole pool. */
  assertFits(tokens: number): void {
    const blocks = Math.ceil(tokens / this.blockTokens);
    const total = this.pool.totalBlocks;
    if (blocks > total) {
      const capacity = total * this.blockTokens;
      throw new PoolExhaustedError(
        `request needs ${tokens} tokens of KV (${blocks} blocks of ${this.blockTokens}); the whole KV pool holds ${capacity} tokens (${total} blocks)`,
        { tokensNeeded: tokens, poolTokens: capacity, requested: blocks, total },
      );
    }
  }

  private touchAgent(agentId: string, blocks: AgentBlocks): void {
    this.agents.delete(agentId);
    this.agents.set(agentId, blocks);
  }

  private evictIdleAgent(): boolean {
    const busy = this.busyAgents();
    for (const [agentId, blocks] of this.agents) {
      if (busy.has(agentId)) continue;
      this.onAgentEvict?.(blocks);
      this.dropAgent(agentId);
      return true;
    }
    return false;
  }
}

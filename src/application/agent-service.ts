import { AgentNotFoundError } from '../domain/errors.ts';
import { validateAgentId } from '../domain/values.ts';
import type { AgentInfo, AgentManagementPort } from '../ports/inbound.ts';
import type { CacheTier, ChatMessage, TokenizerPort } from '../ports/outbound.ts';
import type { BlockPoolBatchEngine } from './block-pool-batch-engine.ts';

/**
 * The engine a service runs on: fixed, or the engine of the moment (a runtime that survives a
 * lost device replaces its engine; services built once must follow it).
 */
export type EngineRef = BlockPoolBatchEngine | (() => BlockPoolBatchEngine);

export function engineOf(ref: EngineRef): BlockPoolBatchEngine {
  return typeof ref === 'function' ? ref() : ref;
}

/** The tiers below the hot one, when a cache store keeps agents there (warm memory, disk, IndexedDB). */
export interface AgentTiers {
  tierOf(agentId: string): CacheTier | 'none';
  /** This model's agents held below the hot tier, including those of earlier runs. */
  storedAgentIds(): Promise<string[]>;
  /** Delete the agent from every tier (hot included). */
  delete(agentId: string): Promise<boolean>;
}

/**
 * Agent lifecycle over the engine. An agent is a name for a conversation whose context stays
 * cached between requests; creating one with an initial context prefills and caches it. With a
 * cache store's tiers, an agent stored by an earlier run is known before its first turn here.
 */
export class AgentService implements AgentManagementPort {
  private readonly agents = new Map<string, { createdAt: number; lastUsed: number }>();

  constructor(
    private readonly engine: EngineRef,
    private readonly tokenizer: TokenizerPort | null = null,
    private readonly tiers: AgentTiers | null = null,
  ) {}

  /** Record use of an agent (creating it implicitly, as a first request does). */
  touch(agentId: string): void {
    const id = validateAgentId(agentId);
    const now = Date.now();
    const entry = this.agents.get(id);
    if (entry) entry.lastUsed = now;
    else this.agents.set(id, { createdAt: now, lastUsed: now });
  }

  async createAgent(agentId: string, options: { readonly initialContext?: string | readonly ChatMessage[] } = {}): Promise<AgentInfo> {
    this.touch(agentId);
    if (options.initialContext !== undefined) {
      // One sampled token computes the KV of the whole context; the token itself is dropped and
      // the context alone becomes the agent's cache. Chat context is rendered without the
      // assistant header, so that later turns (which add messages) extend it token for token.
      const context = options.initialContext;
      const request =
        typeof context !== 'string' && this.tokenizer
          ? { promptIds: this.tokenizer.applyChatTemplate(context, { addGenerationPrompt: false }) }
          : { prompt: context };
      await engineOf(this.engine).generate({ agentId, ...request, maxTokens: 1 });
    }
    return this.getAgentInfo(agentId);
  }

  async deleteAgent(agentId: string): Promise<boolean> {
    const existed = this.agents.delete(agentId);
    const hadCache = this.tiers ? await this.tiers.delete(agentId) : engineOf(this.engine).dropAgent(agentId);
    return existed || hadCache;
  }

  async listAgents(): Promise<AgentInfo[]> {
    const stored = this.tiers ? await this.tiers.storedAgentIds() : [];
    const ids = new Set([...this.agents.keys(), ...engineOf(this.engine).kv.agentIds(), ...stored]);
    return [...ids].map((id) => this.info(id));
  }

  async getAgentInfo(agentId: string): Promise<AgentInfo> {
    const info = this.info(agentId);
    if (!this.agents.has(agentId) && info.tier === 'none') throw new AgentNotFoundError(`no agent ${agentId}`, { agentId });
    return info;
  }

  private info(agentId: string): AgentInfo {
    const blocks = engineOf(this.engine).kv.agentBlocks(agentId);
    const entry = this.agents.get(agentId);
    return {
      agentId,
      tokenCount: blocks?.tokenIds.length ?? 0,
      blocks: blocks?.blockTable.length ?? 0,
      tier: blocks ? 'hot' : (this.tiers?.tierOf(agentId) ?? 'none'),
      lastUsed: entry?.lastUsed ?? 0,
    };
  }
}

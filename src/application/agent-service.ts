import { AgentNotFoundError } from '../domain/errors.ts';
import { validateAgentId } from '../domain/values.ts';
import type { AgentInfo, AgentManagementPort } from '../ports/inbound.ts';
import type { CacheTier, ChatMessage, TokenizerPort } from '../ports/outbound.ts';
import type { BlockPoolBatchEngine } from './block-pool-batch-engine.ts';

/** Where an agent's cache lives, when a cache store adds tiers below the hot one. */
export type TierLookup = (agentId: string) => CacheTier | 'none';

/**
 * Agent lifecycle over the engine. An agent is a name for a conversation whose context stays
 * cached between requests; creating one with an initial context prefills and caches it.
 */
export class AgentService implements AgentManagementPort {
  private readonly agents = new Map<string, { createdAt: number; lastUsed: number }>();

  constructor(
    private readonly engine: BlockPoolBatchEngine,
    private readonly tokenizer: TokenizerPort | null = null,
    private readonly lowerTier: TierLookup = () => 'none',
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
      await this.engine.generate({ agentId, ...request, maxTokens: 1 });
    }
    return this.getAgentInfo(agentId);
  }

  async deleteAgent(agentId: string): Promise<boolean> {
    const existed = this.agents.delete(agentId);
    const hadCache = this.engine.dropAgent(agentId);
    return existed || hadCache;
  }

  async listAgents(): Promise<AgentInfo[]> {
    return [...this.agents.keys()].map((id) => this.info(id));
  }

  async getAgentInfo(agentId: string): Promise<AgentInfo> {
    if (!this.agents.has(agentId)) throw new AgentNotFoundError(`no agent ${agentId}`, { agentId });
    return this.info(agentId);
  }

  private info(agentId: string): AgentInfo {
    const blocks = this.engine.kv.agentBlocks(agentId);
    const entry = this.agents.get(agentId);
    return {
      agentId,
      tokenCount: blocks?.tokenIds.length ?? 0,
      blocks: blocks?.blockTable.length ?? 0,
      tier: blocks ? 'hot' : this.lowerTier(agentId),
      lastUsed: entry?.lastUsed ?? 0,
    };
  }
}

import type { AgentCacheStore } from './agent-cache-store.ts';
import type { AgentTiers } from './agent-service.ts';

/**
 * The cache store's tiers as the agent service sees them. `fingerprint` names the loaded model:
 * the store's persistence also holds other models' agents, which are not this model's agents.
 */
export function storeTiers(store: () => AgentCacheStore, fingerprint: string): AgentTiers {
  return {
    tierOf: (agentId) => store().tierOf(agentId),
    storedAgentIds: async () => (await store().listStoredAll()).filter((r) => r.modelFingerprint === fingerprint).map((r) => r.agentId),
    delete: (agentId) => store().delete(agentId),
  };
}

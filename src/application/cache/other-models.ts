import type { CachedAgentRecord, CachePersistencePort } from '../../ports/outbound.ts';

/** Every stored agent of every model (this model's and others', e.g. after a model switch). */
export async function listAllStored(persistence: CachePersistencePort): Promise<CachedAgentRecord[]> {
  return persistence.listAllCachedAgents ? persistence.listAllCachedAgents() : persistence.listCachedAgents();
}

/** Delete another model's stored agent, through storage scoped to that model. */
export async function deleteOfModel(persistence: CachePersistencePort, modelFingerprint: string, agentId: string): Promise<boolean> {
  const other = await persistence.forModel?.(modelFingerprint);
  if (!other) return false;
  try {
    return await other.delete(agentId);
  } finally {
    other.close?.();
  }
}

import type { BlockPool } from '../domain/block-pool.ts';
import { bytesPerBlock, type ModelCacheSpec } from '../domain/model-cache-spec.ts';
import type { PlainError } from '../domain/errors.ts';
import type { InspectAgent, InspectBlock, InspectSnapshot } from '../ports/inspect.ts';
import type { CachedAgentRecord } from '../ports/outbound.ts';
import type { AgentCacheStore } from './agent-cache-store.ts';
import type { BlockPoolBatchEngine } from './block-pool-batch-engine.ts';

/** Blocks listed one by one; a larger pool is summarized by its counts beyond this. */
export const INSPECT_BLOCK_LIMIT = 2048;

export interface InspectInputs {
  readonly engine: BlockPoolBatchEngine;
  readonly store: AgentCacheStore;
  readonly spec: ModelCacheSpec;
  readonly modelId: string;
  /** Persistent records of this model's agents. */
  readonly stored: readonly CachedAgentRecord[];
  readonly deviceRecoveries: number;
  readonly now?: number;
}

/**
 * The runtime's KV memory as plain data: who holds which pool block, each agent's tier and
 * size, and how its latest request found its context. Reads only; changes nothing.
 */
export function buildInspectSnapshot(inputs: InspectInputs): InspectSnapshot {
  const { engine, store, spec } = inputs;
  const kv = engine.kv;
  const storedById = new Map(inputs.stored.map((r) => [r.agentId, r]));
  const ids = [...new Set([...kv.agentIds(), ...storedById.keys(), ...store.unsavedAgents().keys()])].sort();
  const owners = blockOwners(ids, (id) => kv.agentBlocks(id)?.blockTable);
  const perBlock = bytesPerBlock(spec);
  const unsaved = store.unsavedAgents();
  const agents = ids.map((agentId) => agentView(agentId, { store, hot: kv.agentBlocks(agentId), record: storedById.get(agentId), unsaved: unsaved.get(agentId), perBlock }));
  const stats = engine.stats();
  return {
    takenAt: inputs.now ?? Date.now(),
    model: { id: inputs.modelId, fingerprint: spec.fingerprint, blockTokens: spec.blockTokens, bytesPerBlock: perBlock },
    pool: { ...poolView(kv.pool, owners, (b) => kv.index.has(b)), totalBlocks: kv.pool.totalBlocks },
    agents,
    engine: { running: stats.running, waiting: stats.waiting, steps: stats.steps },
    deviceRecoveries: inputs.deviceRecoveries,
  };
}

/** Block id -> indexes of the agents whose hot block table holds it. */
function blockOwners(ids: readonly string[], table: (id: string) => readonly number[] | undefined): Map<number, number[]> {
  const owners = new Map<number, number[]>();
  ids.forEach((id, i) => {
    for (const b of table(id) ?? []) owners.set(b, [...(owners.get(b) ?? []), i]);
  });
  return owners;
}

function poolView(pool: BlockPool, owners: Map<number, number[]>, indexed: (b: number) => boolean): Omit<InspectSnapshot['pool'], 'totalBlocks'> {
  const blocks: InspectBlock[] = [];
  let used = 0;
  let cached = 0;
  let shared = 0;
  for (let b = 0; b < pool.totalBlocks; b++) {
    const refs = pool.refCount(b);
    const state = refs > 0 ? 'used' : pool.isCached(b) ? 'cached' : 'free';
    const by = owners.get(b) ?? [];
    const isShared = refs > 1 || by.length > 1;
    if (state === 'used') used++;
    if (state === 'cached') cached++;
    if (isShared) shared++;
    if (b < INSPECT_BLOCK_LIMIT) blocks.push({ state, refs, owners: by, indexed: indexed(b), shared: isShared });
  }
  return { blocks, used, cached, shared, free: pool.totalBlocks - used - cached };
}

interface AgentSources {
  readonly store: AgentCacheStore;
  readonly hot: { readonly blockTable: readonly number[]; readonly tokenIds: readonly number[] } | undefined;
  readonly record: CachedAgentRecord | undefined;
  readonly unsaved: PlainError | undefined;
  readonly perBlock: number;
}

function agentView(agentId: string, s: AgentSources): InspectAgent {
  const report = s.store.lastReport(agentId);
  const plain = (e: PlainError): { name: string; code: string; message: string } => ({ name: e.name, code: e.code, message: e.message });
  return {
    agentId,
    tier: s.store.tierOf(agentId),
    tokens: s.hot?.tokenIds.length ?? s.record?.tokenCount ?? 0,
    bytes: s.hot ? s.hot.blockTable.length * s.perBlock : (s.record?.bytes ?? 0),
    hotBlocks: s.hot?.blockTable.length ?? 0,
    lastUsed: s.record?.lastUsed ?? 0,
    stored: s.record !== undefined,
    ...(s.unsaved ? { unsaved: plain(s.unsaved) } : {}),
    ...(report
      ? { lastRestore: { tier: report.tier, matchedTokens: report.matchedTokens, ...(report.refused ? { refused: plain(report.refused) } : {}) } }
      : {}),
  };
}

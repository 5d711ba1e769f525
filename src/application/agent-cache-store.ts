import { bytesForTokens, bytesPerBlock, type KvQuantization, type ModelCacheSpec } from '../domain/model-cache-spec.ts';
import { CacheCorruptError, errorToPlain, ModelMismatchError, type PlainError } from '../domain/errors.ts';
import { Lru } from '../domain/lru.ts';
import { commonPrefixLength, validateAgentId, type AgentBlocks, type CacheKey } from '../domain/values.ts';
import type { CachedAgentRecord, CacheHit, CachePersistencePort, CacheStorePort, CacheStoreStats, CacheTier, DecodedAgentKv, KvBlobCodecPort, KvSnapshot, ModelBackendPort } from '../ports/outbound.ts';
import type { BlockPoolBatchEngine } from './block-pool-batch-engine.ts';
import { RestoreCostModel } from './cache/cost-model.ts';
import type { CacheStoreOptions, WarmEntry } from './cache/store-options.ts';
import { RestoreLog, truncateSnapshot, type RestoreReport } from './cache/restore-log.ts';
import { Checkpointer } from './cache/checkpointer.ts';
import { PreemptedKv } from './cache/preempted-kv.ts';
import { deleteOfModel, listAllStored } from './cache/other-models.ts';
import { joinedBlob, joinSegments, loadStoredAgent } from './cache/segments.ts';
import { WriteBehind, type PendingWrite, type SettledWrite } from './cache/write-behind.ts';

export type { RestoreReport } from './cache/restore-log.ts';
export type { CacheStoreOptions } from './cache/store-options.ts';

/**
 * Three tiers of agent memory. hot: the agent's KV blocks on the GPU (owned by the engine's
 * KvManager). warm: its serialized blob in host memory. cold: the blob in persistent storage
 * (IndexedDB, a folder). LRU under byte budgets moves caches down; a returning agent moves up,
 * when the cost model says restoring beats recomputing. Blobs are written behind, off the
 * decode path; a blob for another model or a corrupt one is refused, never misread.
 */
export class AgentCacheStore implements CacheStorePort {
  private readonly warm: Lru<string, WarmEntry>;
  private readonly writes: WriteBehind | null;
  private readonly spec: ModelCacheSpec;
  private readonly hotBudget: number;
  readonly cost: RestoreCostModel;
  private readonly log = new RestoreLog();
  /** The latest restore decisions, oldest first (bounded). */
  readonly reports: readonly RestoreReport[] = this.log.reports;
  private readonly quantization: KvQuantization;
  private readonly persistOnFinish: boolean;
  /** Agents persistent storage holds for this model (refreshed after a reload). */
  private readonly coldIds = new Set<string>();
  /** Agents whose hot -> warm read is in flight, with how many reads. */
  private readonly demoting = new Map<string, number>();
  /** GPU reads and encodes still running; restores wait for them. */
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly preempted: PreemptedKv;
  /**
   * Bytes that storage refused (quota, I/O): kept in memory, outside the warm LRU so no budget
   * can drop them, until a later write of the agent lands. The agent's only full copy.
   */
  private readonly unsaved = new Map<string, WarmEntry & { error: PlainError }>();
  /** Agents the app allows the store to delete from cold storage when it is full. */
  private readonly expendable = new Set<string>();
  private readonly checkpoints: Checkpointer | null;

  constructor(
    private engine: BlockPoolBatchEngine,
    private backend: ModelBackendPort,
    private readonly codec: KvBlobCodecPort,
    private readonly persistence: CachePersistencePort | null,
    options: CacheStoreOptions = {},
  ) {
    this.spec = backend.extractModelSpec();
    this.hotBudget = options.hotBudgetBytes ?? Infinity;
    this.quantization = options.quantization ?? 'none';
    this.cost = options.costModel ?? new RestoreCostModel();
    this.warm = new Lru({ maxSize: options.warmBudgetBytes ?? 256 * 1024 * 1024, sizeOf: (e) => e.bytes.byteLength });
    const policy = { canEvict: (r: CachedAgentRecord) => this.canEvictCold(r), evicted: (r: CachedAgentRecord) => this.coldIds.delete(r.agentId) };
    this.writes = persistence ? new WriteBehind(persistence, (id, w, err) => this.settled(id, w, err), policy) : null;
    this.persistOnFinish = options.persistOnFinish === true;
    const track = <T>(p: Promise<T>): Promise<T> => this.track(p);
    this.preempted = new PreemptedKv({ spec: this.spec, cost: this.cost, backend: () => this.backend, allocate: (n) => this.engine.kv.allocateFor(n), track });
    const canAppend = options.incremental !== false && typeof persistence?.appendSegment === 'function' && typeof persistence.loadSegments === 'function';
    const read = (table: readonly number[], tokens: number): Promise<KvSnapshot> => this.backend.readBlocks(table, tokens);
    this.checkpoints = this.writes ? new Checkpointer({ compactEvery: options.compactEvery, spec: this.spec, codec, quantization: this.quantization, writes: this.writes, canAppend, readBlocks: read, track }) : null;
    this.attach(engine);
  }

  /**
   * After a lost device: serve a new engine and backend (the same model on a new device). The
   * hot tier died with the device; warm blobs, unsaved bytes, queued writes and cold storage
   * carry over, so agents restore from them. In-flight reads of the old device are dropped.
   */
  rebind(engine: BlockPoolBatchEngine, backend: ModelBackendPort): void {
    if (backend.extractModelSpec().fingerprint !== this.spec.fingerprint) {
      throw new ModelMismatchError('rebind needs the same model', { expected: this.spec.fingerprint, actual: backend.extractModelSpec().fingerprint });
    }
    this.engine = engine;
    this.backend = backend;
    this.inflight.clear();
    this.preempted.clear();
    this.attach(engine);
  }

  private attach(engine: BlockPoolBatchEngine): void {
    engine.setCacheHooks({
      onAgentEvict: (blocks) => this.demote(blocks),
      prepareAgent: (agentId, tokens) => this.prepare(agentId, tokens),
      afterFinish: (agentId, scratch) => this.finished(agentId, scratch),
      onPrefill: (tokens, ms) => this.cost.observePrefill(tokens, ms),
      onPreempt: (uid, blocks) => this.preempted.snapshot(uid, blocks),
      resumePreempted: (uid) => this.preempted.resume(uid),
      forget: (uid) => this.preempted.forget(uid),
    });
  }

  /** What the latest restore decided for this agent (its tier, or why a blob was refused). */
  lastReport(agentId: string): RestoreReport | undefined {
    return this.log.last(agentId);
  }

  /** Where an agent's cache is now. */
  tierOf(agentId: string): CacheTier | 'none' {
    if (this.engine.kv.agentBlocks(agentId)) return 'hot';
    if (this.warm.has(agentId) || this.demoting.has(agentId) || this.writes?.has(agentId) || this.unsaved.has(agentId)) return 'warm';
    return this.coldIds.has(agentId) ? 'cold' : 'none';
  }

  /** Agents whose latest memory storage refused, with the error; their bytes are held in memory. */
  unsavedAgents(): Map<string, PlainError> {
    return new Map([...this.unsaved].map(([id, e]) => [id, e.error]));
  }

  /** Try again to persist every unsaved agent (after the app freed space, for instance). */
  retryUnsaved(): void {
    for (const [id, entry] of this.unsaved) this.spill(id, entry);
  }

  /** Every stored agent of every model (this model's and others', e.g. after a model switch). */
  async listStoredAll(): Promise<CachedAgentRecord[]> {
    return this.persistence ? listAllStored(this.persistence) : [];
  }

  /** Delete a stored blob of any model; this model's agents are deleted from every tier. */
  async deleteStored(agentId: string, modelFingerprint: string): Promise<boolean> {
    if (modelFingerprint === this.spec.fingerprint) return this.delete(agentId);
    return this.persistence ? deleteOfModel(this.persistence, modelFingerprint, agentId) : false;
  }

  /** Let the store delete this agent's cold blob when storage is full (a scratch agent). */
  setExpendable(agentId: string, expendable: boolean): void {
    if (expendable) this.expendable.add(agentId);
    else this.expendable.delete(agentId);
  }

  /** Learn which agents persistent storage holds (after a reload). */
  async refreshCold(): Promise<void> {
    if (!this.persistence) return;
    // Another writer (a tab) may have replaced a blob: never append to what we believed stored.
    this.checkpoints?.forgetStored();
    this.coldIds.clear();
    for (const r of await this.persistence.listCachedAgents()) if (r.modelFingerprint === this.spec.fingerprint) this.coldIds.add(r.agentId);
  }

  async get(key: CacheKey): Promise<CacheHit | null> {
    const tokens = key.tokenIds ?? [];
    const report = await this.restore(key.agentId, tokens, tokens.length === 0);
    const blocks = this.engine.kv.agentBlocks(key.agentId);
    if (!blocks) return null;
    return { tier: report.tier === 'none' ? 'hot' : report.tier, blocks, matchedTokens: tokens.length ? commonPrefixLength(blocks.tokenIds, tokens) : blocks.tokenIds.length };
  }

  async put(key: CacheKey, blocks: AgentBlocks): Promise<void> {
    this.engine.kv.adopt(key.agentId, blocks.tokenIds, blocks.blockTable);
    this.enforceHotBudget();
  }

  /** hot -> warm, or warm -> cold. Returns the new tier, or null when there is nothing to move. */
  async evict(agentId: string): Promise<CacheTier | null> {
    const hot = this.engine.kv.agentBlocks(agentId);
    if (hot) {
      this.demote(hot);
      this.engine.kv.dropAgent(agentId);
      return 'warm';
    }
    await this.idle();
    const entry = this.warm.delete(agentId);
    if (!entry) return null;
    if (!this.writes) {
      this.warm.set(agentId, entry);
      return null;
    }
    this.spill(agentId, entry);
    return 'cold';
  }

  async delete(agentId: string): Promise<boolean> {
    const hot = this.engine.dropAgent(agentId);
    // A demotion or checkpoint of this agent may be in flight: let it land first, or it would
    // bring the deleted agent back into the warm or cold tier afterwards.
    await this.idle();
    const unsaved = this.unsaved.delete(agentId);
    this.expendable.delete(agentId);
    const warm = this.warm.delete(agentId) !== undefined;
    this.writes?.cancel(agentId);
    this.checkpoints?.forget(agentId);
    await this.writes?.flush();
    const cold = this.persistence ? await this.persistence.delete(agentId) : false;
    this.coldIds.delete(agentId);
    return hot || warm || cold || unsaved;
  }

  /** Everything to persistent storage: idle hot agents and warm blobs. For pagehide and shutdown. */
  async persistAll(): Promise<void> {
    for (const a of this.engine.kv.idleAgents()) await this.evict(a.agentId);
    await this.idle();
    for (const id of this.warm.keys()) await this.evict(id);
    await this.flush();
  }

  async flush(): Promise<void> {
    // A write that fails may start another (a refused append checkpoints the whole agent).
    do {
      await this.idle();
      await this.writes?.flush();
    } while (this.inflight.size > 0);
  }

  /** The agent's blob as stored (hot caches are serialized first). */
  async exportAgent(agentId: string): Promise<Uint8Array | null> {
    const hot = this.engine.kv.agentBlocks(agentId);
    if (hot) return this.encode(hot, await this.backend.readBlocks(hot.blockTable, hot.tokenIds.length));
    await this.idle();
    const warm = this.warm.peek(agentId)?.bytes ?? this.writes?.pending(agentId) ?? this.unsaved.get(agentId)?.bytes;
    if (warm) return warm;
    // Segments still being written: export what storage will hold once they land.
    if (this.writes?.hasAppend(agentId)) await this.writes.flush();
    const stored = this.persistence ? await loadStoredAgent(this.persistence, agentId) : null;
    return stored ? joinedBlob(this.codec, this.spec, stored) : null;
  }

  /** Install a blob (e.g. an uploaded .safetensors file) as the agent's warm cache, after validating it. */
  async importAgent(bytes: Uint8Array, agentId?: string): Promise<string> {
    const decoded = this.codec.decode(bytes, this.spec);
    const id = validateAgentId(agentId ?? decoded.agentId);
    this.engine.dropAgent(id);
    // The imported KV is not what the stored segments were computed from: never extend them.
    this.checkpoints?.forget(id);
    this.putWarm(id, { bytes, tokenIds: decoded.tokenIds, lastUsed: Date.now() });
    return id;
  }

  stats(): CacheStoreStats {
    return { hotBytes: this.hotBytes(), warmBytes: this.warm.totalSize, coldAgents: this.coldIds.size, pool: this.engine.stats().pool };
  }

  hotBytes(): number {
    const blocks = new Set<number>();
    for (const id of this.engine.kv.agentIds()) for (const b of this.engine.kv.agentBlocks(id)?.blockTable ?? []) blocks.add(b);
    return blocks.size * bytesPerBlock(this.spec);
  }

  writeFailures(): ReadonlyMap<string, PlainError> {
    return this.writes?.failures ?? new Map();
  }

  // -------------------------------------------------------------------------------------------

  private async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }

  /** hot -> warm. The GPU read is submitted now (before the blocks are released); the rest is async. */
  private demote(blocks: AgentBlocks): void {
    const id = blocks.agentId;
    const read = this.backend.readBlocks(blocks.blockTable, blocks.tokenIds.length);
    // Until the bytes land in the warm tier, the agent is on its way there: tierOf says warm.
    this.demoting.set(id, (this.demoting.get(id) ?? 0) + 1);
    const landed = read.then((snapshot) => {
      this.putWarm(id, { bytes: this.encode(blocks, snapshot), tokenIds: blocks.tokenIds, lastUsed: Date.now() });
    });
    this.track(
      landed.finally(() => {
        const n = (this.demoting.get(id) ?? 1) - 1;
        if (n > 0) this.demoting.set(id, n);
        else this.demoting.delete(id);
      }),
    );
  }

  private encode(blocks: AgentBlocks, snapshot: Awaited<ReturnType<ModelBackendPort['readBlocks']>>): Uint8Array {
    return this.codec.encode({ agentId: blocks.agentId, spec: this.spec, tokenIds: blocks.tokenIds, snapshot, quantization: this.quantization });
  }

  private putWarm(agentId: string, entry: WarmEntry): void {
    for (const [id, pushed] of this.warm.set(agentId, entry)) {
      if (this.writes) this.spill(id, pushed);
      // Without persistent storage an evicted warm cache is dropped: it can be recomputed.
    }
  }

  /** A turn finished: keep the hot tier in budget, and checkpoint the agent if asked to (a throwaway one never). */
  private finished(agentId: string, scratch: boolean): void {
    this.enforceHotBudget();
    const hot = this.engine.kv.agentBlocks(agentId);
    // The checkpointer submits the GPU read now and encodes when the write drains.
    if (this.persistOnFinish && hot && !scratch) this.checkpoints?.checkpoint(hot);
  }

  /** warm -> cold, written behind. */
  private spill(agentId: string, entry: WarmEntry): void {
    const write: PendingWrite = {
      bytes: entry.bytes,
      record: { agentId, modelFingerprint: this.spec.fingerprint, tokenCount: entry.tokenIds.length, lastUsed: entry.lastUsed },
      tokenIds: entry.tokenIds,
    };
    this.writes?.enqueue(agentId, write);
    this.checkpoints?.wholeQueued(agentId, entry.tokenIds);
  }

  private settled(agentId: string, write: SettledWrite, error: PlainError | null): void {
    if (!error) {
      this.coldIds.add(agentId);
      if (this.unsaved.get(agentId)?.bytes === write.bytes || !this.writes?.has(agentId)) this.unsaved.delete(agentId);
      return;
    }
    this.checkpoints?.forget(agentId);
    const hot = this.engine.kv.agentBlocks(agentId);
    // A failed append holds only a segment: checkpoint the whole agent instead, which lands or
    // ends below as unsaved bytes. Without a hot copy, storage keeps its older, shorter state.
    if (write.segmentStart !== undefined) {
      if (hot && this.persistOnFinish) this.checkpoints?.checkpoint(hot);
      return;
    }
    // Storage refused it (quota, I/O) and the policy allowed no eviction: keep it in memory,
    // flagged unsaved, unless a newer write of the agent is already queued.
    if (this.writes?.has(agentId)) return;
    this.unsaved.set(agentId, { bytes: write.bytes, tokenIds: write.tokenIds ?? [], lastUsed: write.record.lastUsed, error });
  }

  /** A corrupt stored blob holds nothing usable: remove it so tiers tell the truth. */
  private async dropCorruptCold(agentId: string): Promise<void> {
    this.coldIds.delete(agentId);
    this.checkpoints?.forget(agentId);
    await this.persistence?.delete(agentId).catch(() => false);
  }

  /** A cold blob may go when a warmer tier holds the agent too, or when the app said it may. */
  private canEvictCold(record: CachedAgentRecord): boolean {
    if (record.modelFingerprint !== this.spec.fingerprint) return false;
    if (this.expendable.has(record.agentId)) return true;
    if (this.unsaved.has(record.agentId) || this.writes?.has(record.agentId)) return false;
    return this.engine.kv.agentBlocks(record.agentId) !== undefined || this.warm.has(record.agentId);
  }

  /** Before a request is admitted: bring the agent's cache to hot if that beats recomputing. */
  private async prepare(agentId: string, tokens: readonly number[]): Promise<void> {
    await this.restore(agentId, tokens, false);
  }

  private async restore(agentId: string, tokens: readonly number[], wholeCache: boolean): Promise<RestoreReport> {
    const done = (r: RestoreReport): RestoreReport => this.log.record(r);
    const hot = this.engine.kv.agentBlocks(agentId);
    if (hot) return done({ agentId, tier: 'hot', matchedTokens: commonPrefixLength(hot.tokenIds, tokens) });
    await this.idle();
    const source = await this.findBlob(agentId);
    if (!source) return done({ agentId, tier: 'none', matchedTokens: 0 });
    const started = performance.now();
    let decoded: DecodedAgentKv;
    try {
      decoded = source.decode();
    } catch (error) {
      if (error instanceof ModelMismatchError || error instanceof CacheCorruptError) {
        // Refused, never misread: the turn recomputes, and the agent's next checkpoint replaces
        // the bad copy (blobs of another model live under their own fingerprint and stay).
        this.warm.delete(agentId);
        this.unsaved.delete(agentId);
        if (error instanceof CacheCorruptError && source.tier === 'cold') await this.dropCorruptCold(agentId);
        return done({ agentId, tier: 'none', matchedTokens: 0, refused: errorToPlain(error) });
      }
      throw error;
    }
    const matched = wholeCache ? decoded.tokenIds.length : Math.min(commonPrefixLength(decoded.tokenIds, tokens), tokens.length - 1);
    if (matched <= 0) return done({ agentId, tier: 'none', matchedTokens: 0 });
    const estimate = this.cost.estimate(matched, bytesForTokens(this.spec, matched) + (source.tier === 'cold' ? source.bytes : 0));
    if (!wholeCache && !estimate.restore) return done({ agentId, tier: 'none', matchedTokens: matched, estimate });
    const table = this.engine.kv.allocateFor(matched);
    if (!table) return done({ agentId, tier: 'none', matchedTokens: matched, estimate });
    await this.backend.writeBlocks(table, truncateSnapshot(decoded.snapshot, matched));
    this.engine.kv.adopt(agentId, decoded.tokenIds.slice(0, matched), table);
    this.warm.delete(agentId);
    this.cost.observeRestore(source.bytes, performance.now() - started);
    // What storage holds is known now: the agent's next checkpoint may extend it.
    if (source.tier === 'cold' && !this.writes?.has(agentId)) this.checkpoints?.learned(agentId, decoded.tokenIds, source.segments);
    this.enforceHotBudget(agentId);
    return done({ agentId, tier: source.tier, matchedTokens: matched, estimate });
  }

  /** The agent's newest memory below hot, and how to decode it (cold: its segments joined). */
  private async findBlob(agentId: string): Promise<{ bytes: number; tier: CacheTier; segments: number; decode: () => DecodedAgentKv } | null> {
    const warm = this.warm.get(agentId)?.bytes ?? this.writes?.pending(agentId) ?? this.unsaved.get(agentId)?.bytes;
    if (warm) return { bytes: warm.byteLength, tier: 'warm', segments: 1, decode: () => this.codec.decode(warm, this.spec) };
    // Segments in flight with no copy above (a lost device): let them land, then read them.
    if (this.writes?.hasAppend(agentId)) await this.writes.flush();
    const cold = this.persistence ? await loadStoredAgent(this.persistence, agentId) : null;
    if (!cold) return null;
    return { bytes: cold.bytes, tier: 'cold', segments: cold.segments.length, decode: () => joinSegments(this.codec, this.spec, cold.segments) };
  }

  /** Demote least recently used idle agents until the hot tier is within budget. */
  private enforceHotBudget(keep?: string): void {
    for (const agent of this.engine.kv.idleAgents()) {
      if (this.hotBytes() <= this.hotBudget) return;
      if (agent.agentId === keep) continue;
      this.demote(agent);
      this.engine.kv.dropAgent(agent.agentId);
    }
  }
}

import { errorFromPlain, errorToPlain, InternalError } from '../src/domain/errors.ts';
import { validateAgentId } from '../src/domain/values.ts';
import { DEFAULT_KV_AT_REST } from '../src/domain/model-cache-spec.ts';
import type { AgentCacheStore } from '../src/application/agent-cache-store.ts';
import type { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import { RecoveringRuntime, type BackendFactory, type DeviceBackend } from '../src/application/recovering-runtime.ts';
import type { CachePersistencePort, TokenizerPort } from '../src/ports/outbound.ts';
import type { SubmitRequest, TokenDelta } from '../src/ports/inbound.ts';
import type { TimedGeneration } from '../src/application/engine/timed-generation.ts';
import { AgentLocks } from './agent-locks.ts';
import type { AgentReply, CacheOptions, StoredAgent } from '../src/client/runtime-api.ts';
import { IdbCachePersistence } from '../src/adapters/indexeddb/idb-cache-persistence.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';

/**
 * The agent side of the worker: the batch engine and the tiered cache store over IndexedDB,
 * for one loaded model. Every finished turn is checkpointed to IndexedDB in the background, so
 * a reload or a closed tab resumes from the last completed turn. A lost GPU device is survived:
 * requests in flight fail with DeviceLostError, the model is loaded on a new device, and agents
 * resume from their warm and cold memory (RecoveringRuntime).
 */
export class AgentRuntime {
  private constructor(
    private readonly runtime: RecoveringRuntime,
    readonly persistence: IdbCachePersistence,
    private readonly locks: AgentLocks,
  ) {}

  /** `first` is the model already loaded on a device; `reload` loads it again on a new device. */
  static async create(first: DeviceBackend, reload: BackendFactory, tokenizer: TokenizerPort, options: CacheOptions = {}): Promise<AgentRuntime> {
    // Scoped to the model: agents of another model keep their own blobs (see listStored).
    const persistence = await IdbCachePersistence.open({ name: options.dbName, modelFingerprint: first.backend.extractModelSpec().fingerprint });
    // Other tabs announce what they stored; this tab learns its cold tier again.
    let refresh: () => void = () => undefined;
    const locks = new AgentLocks(persistence.name, () => refresh());
    let initial: DeviceBackend | null = first;
    const factory: BackendFactory = async () => {
      const given = initial;
      initial = null;
      return given ?? reload();
    };
    const runtime = await RecoveringRuntime.start(factory, tokenizer, safetensorsBlobCodec, announcing(persistence, locks), {
      // Incremental checkpoints (segments + manifest) unless the app turns them off.
      store: { hotBudgetBytes: options.hotBudgetBytes, warmBudgetBytes: options.warmBudgetBytes, quantization: options.quantization ?? DEFAULT_KV_AT_REST, persistOnFinish: true, incremental: options.incrementalCheckpoints !== false },
    });
    refresh = () => void runtime.store.refreshCold().catch(() => undefined);
    return new AgentRuntime(runtime, persistence, locks);
  }

  /** Become the agent's one writer across tabs (AgentBusyError while another tab is). */
  lockAgent(agentId: string): Promise<void> {
    return this.locks.acquire(agentId);
  }

  /** Delete the agent from every tier, and stop being its writer. */
  async deleteAgent(agentId: string): Promise<boolean> {
    const existed = await this.store.delete(agentId);
    this.locks.release(agentId);
    return existed;
  }

  /** Stop being the agent's writer (it was deleted). */
  releaseAgent(agentId: string): void {
    this.locks.release(agentId);
  }

  /** One request on the live engine (after any device recovery), agent lock not taken. */
  run(request: SubmitRequest, onToken?: (d: TokenDelta) => void): Promise<TimedGeneration> {
    return this.runtime.generate(request, { onToken });
  }

  get engine(): BlockPoolBatchEngine {
    return this.runtime.engine;
  }

  get store(): AgentCacheStore {
    return this.runtime.store;
  }

  /** The backend on the current device (a new one after a device loss). */
  get backend(): WebGpuBackend {
    const backend = this.runtime.backend;
    if (!(backend instanceof WebGpuBackend)) throw new InternalError('the agent runtime runs on the WebGPU backend');
    return backend;
  }

  /** Device losses survived so far. */
  get recoveries(): number {
    return this.runtime.recoveries;
  }

  /** Settles once no device recovery is running. */
  ready(): Promise<void> {
    return this.runtime.ready();
  }

  async generate(agentId: string, promptIds: readonly number[], maxTokens: number, onToken?: (id: number, text: string) => Promise<void> | void): Promise<AgentReply> {
    // One writer per agent across tabs: another tab running this agent makes this an AgentBusyError.
    await this.locks.acquire(agentId);
    const run = await this.runtime.generate({ agentId, promptIds, maxTokens }, {
      onToken: (d) => void onToken?.(d.tokenId, d.text),
    });
    // A failed turn is an error on the page, with its class, name and code, never a silent reply.
    if (run.result.finishReason === 'error') {
      throw run.result.error ? errorFromPlain(run.result.error) : new InternalError('generation failed without an error', { agentId });
    }
    const report = this.store.lastReport(agentId);
    return {
      agentId,
      tokenIds: run.result.tokenIds,
      text: run.result.text,
      finishReason: run.result.finishReason,
      promptTokens: run.prefillComputed + run.prefillReused,
      cachedPromptTokens: run.prefillReused,
      restoredFrom: report?.tier ?? 'none',
      ...(report?.refused ? { refused: { name: report.refused.name, code: report.refused.code, message: report.refused.message } } : {}),
      ttftMs: run.ttftMs,
      totalMs: run.totalMs,
    };
  }

  /** Stored agents of every model; `modelFingerprint` tells which are this model's. */
  async listStored(): Promise<StoredAgent[]> {
    return (await this.store.listStoredAll()).map((r) => ({ agentId: r.agentId, modelFingerprint: r.modelFingerprint, tokenCount: r.tokenCount, bytes: r.bytes }));
  }

  /** A valid blob of `tokens` random KV rows, saved without awaiting: the write is in flight on return. */
  startLargeSave(agentId: string, tokens: number): number {
    const spec = this.backend.extractModelSpec();
    const per = tokens * spec.nKvHeads * spec.headDim;
    const layer = (): Float32Array => Float32Array.from({ length: per }, (_, i) => Math.sin(i * 0.37));
    const snapshot = { tokens, keys: Array.from({ length: spec.nLayers }, layer), values: Array.from({ length: spec.nLayers }, layer) };
    const tokenIds = Array.from({ length: tokens }, (_, i) => i % 500);
    const bytes = safetensorsBlobCodec.encode({ agentId: validateAgentId(agentId), spec, tokenIds, snapshot });
    void this.persistence
      .save(agentId, bytes, { agentId, modelFingerprint: spec.fingerprint, tokenCount: tokens, lastUsed: Date.now() })
      .catch((e: unknown) => console.error('[semantic] large save failed', errorToPlain(e)));
    return bytes.byteLength;
  }

  close(): void {
    this.locks.close();
    this.persistence.close();
  }
}

/** The persistence, announcing each landed save and delete to the other tabs. */
function announcing(p: IdbCachePersistence, locks: AgentLocks): CachePersistencePort {
  return {
    save: async (agentId, blob, record) => {
      await p.save(agentId, blob, record);
      locks.announce({ type: 'saved', agentId });
    },
    appendSegment: async (agentId, segment, record) => {
      await p.appendSegment(agentId, segment, record);
      locks.announce({ type: 'saved', agentId });
    },
    load: (agentId) => p.load(agentId),
    loadSegments: (agentId) => p.loadSegments(agentId),
    exists: (agentId) => p.exists(agentId),
    delete: async (agentId) => {
      const existed = await p.delete(agentId);
      locks.announce({ type: 'deleted', agentId });
      return existed;
    },
    listCachedAgents: () => p.listCachedAgents(),
    listAllCachedAgents: () => p.listAllCachedAgents(),
    forModel: (fp) => p.forModel(fp),
  };
}

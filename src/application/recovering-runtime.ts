import { DeviceLostError, errorToPlain } from '../domain/errors.ts';
import type { SubmitRequest, TokenDelta } from '../ports/inbound.ts';
import type { CachePersistencePort, KvBlobCodecPort, ModelBackendPort, TokenizerPort } from '../ports/outbound.ts';
import { AgentCacheStore, type CacheStoreOptions } from './agent-cache-store.ts';
import { BlockPoolBatchEngine, type EngineOptions } from './block-pool-batch-engine.ts';
import { generateTimed, type TimedGeneration } from './engine/timed-generation.ts';

/** A backend on a device, and the promise that settles when that device is lost. */
export interface DeviceBackend {
  readonly backend: ModelBackendPort;
  readonly lost: Promise<unknown>;
}

/** Loads the model on a fresh device: called at start and again after every loss. */
export type BackendFactory = () => Promise<DeviceBackend>;

export interface RecoveringRuntimeOptions {
  readonly engine?: EngineOptions;
  readonly store?: CacheStoreOptions;
  /** Told after each recovery (or a failed one), e.g. to update the page. */
  readonly onRecovery?: (event: { readonly recovered: boolean; readonly error?: ReturnType<typeof errorToPlain> }) => void;
}

/**
 * The engine and the tiered cache store, kept alive across device losses. When the device is
 * lost, every request in flight ends with DeviceLostError; the model is loaded again on a new
 * device; the store keeps its warm, unsaved and cold tiers and serves the new engine, so every
 * agent resumes from its latest memory. Requests that arrive meanwhile wait for the new device.
 */
export class RecoveringRuntime {
  private current: { engine: BlockPoolBatchEngine; device: DeviceBackend };
  private recovering: Promise<void> | null = null;
  recoveries = 0;

  private constructor(
    device: DeviceBackend,
    readonly store: AgentCacheStore,
    engine: BlockPoolBatchEngine,
    private readonly factory: BackendFactory,
    private readonly tokenizer: TokenizerPort | null,
    private readonly options: RecoveringRuntimeOptions,
  ) {
    this.current = { engine, device };
    this.watch(device);
  }

  static async start(
    factory: BackendFactory,
    tokenizer: TokenizerPort | null,
    codec: KvBlobCodecPort,
    persistence: CachePersistencePort | null,
    options: RecoveringRuntimeOptions = {},
  ): Promise<RecoveringRuntime> {
    const device = await factory();
    const engine = new BlockPoolBatchEngine(device.backend, tokenizer, options.engine);
    const store = new AgentCacheStore(engine, device.backend, codec, persistence, options.store);
    await store.refreshCold();
    return new RecoveringRuntime(device, store, engine, factory, tokenizer, options);
  }

  get engine(): BlockPoolBatchEngine {
    return this.current.engine;
  }

  get backend(): ModelBackendPort {
    return this.current.device.backend;
  }

  /** Settles when no recovery is running (at once when the device is healthy). */
  async ready(): Promise<void> {
    while (this.recovering) await this.recovering;
  }

  /** One request on the live engine, after any recovery in progress. */
  async generate(request: SubmitRequest, options: { readonly onToken?: (d: TokenDelta) => void; readonly signal?: AbortSignal } = {}): Promise<TimedGeneration> {
    await this.ready();
    return generateTimed(this.engine, request, options);
  }

  private watch(device: DeviceBackend): void {
    void device.lost.then(() => {
      // Only the device in use matters: a stale loss after a recovery is ignored.
      if (this.current.device === device) this.recovering ??= this.recover().finally(() => (this.recovering = null));
    });
  }

  private async recover(): Promise<void> {
    const old = this.current;
    // The old engine must not call into the store any more: its blocks name memory that is gone.
    old.engine.setCacheHooks({});
    old.engine.failAll(new DeviceLostError('the GPU device was lost during generation; the model is being reloaded', { reason: 'lost' }));
    old.engine.reset();
    try {
      const device = await this.factory();
      const engine = new BlockPoolBatchEngine(device.backend, this.tokenizer, this.options.engine);
      this.store.rebind(engine, device.backend);
      this.current = { engine, device };
      old.device.backend.dispose();
      this.recoveries++;
      this.watch(device);
      this.options.onRecovery?.({ recovered: true });
    } catch (error) {
      this.options.onRecovery?.({ recovered: false, error: errorToPlain(error) });
      throw error;
    }
  }
}

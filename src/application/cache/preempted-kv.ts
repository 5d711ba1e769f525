import { bytesForTokens, type ModelCacheSpec } from '../../domain/model-cache-spec.ts';
import type { AgentBlocks } from '../../domain/values.ts';
import type { KvSnapshot, ModelBackendPort } from '../../ports/outbound.ts';
import type { RestoreCostModel } from './cost-model.ts';

export interface PreemptedKvOptions {
  readonly spec: ModelCacheSpec;
  readonly cost: RestoreCostModel;
  /** The current backend (it changes after a lost device). */
  backend(): ModelBackendPort;
  /** Fresh blocks for `tokens` tokens, or null when the pool has none now. */
  allocate(tokens: number): number[] | null;
  track<T>(p: Promise<T>): Promise<T>;
}

/** KV of preempted requests, by request uid, kept in host memory until they run again. */
export class PreemptedKv {
  private readonly pending = new Map<string, Promise<{ snapshot: KvSnapshot; bytes: number }>>();

  constructor(private readonly o: PreemptedKvOptions) {}

  /** The GPU read starts now, before the engine releases the blocks. */
  snapshot(uid: string, blocks: AgentBlocks): void {
    const read = this.o.backend().readBlocks(blocks.blockTable, blocks.tokenIds.length);
    this.pending.set(uid, this.o.track(read.then((snapshot) => ({ snapshot, bytes: bytesForTokens(this.o.spec, snapshot.tokens) }))));
  }

  /** Upload a preempted request's KV into fresh blocks, when that beats recomputing it. */
  async resume(uid: string): Promise<{ table: number[]; tokens: number } | 'wait' | null> {
    const pending = this.pending.get(uid);
    if (!pending) return null;
    const started = performance.now();
    const { snapshot, bytes } = await pending;
    if (!this.o.cost.estimate(snapshot.tokens, bytes).restore) {
      this.pending.delete(uid);
      return null;
    }
    const table = this.o.allocate(snapshot.tokens);
    if (!table) return 'wait';
    this.pending.delete(uid);
    await this.o.backend().writeBlocks(table, snapshot);
    this.o.cost.observeRestore(bytes, performance.now() - started);
    return { table, tokens: snapshot.tokens };
  }

  forget(uid: string): void {
    this.pending.delete(uid);
  }

  clear(): void {
    this.pending.clear();
  }
}

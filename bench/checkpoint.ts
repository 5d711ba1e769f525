/**
 * Checkpoint cost (issue 8, item 5): an agent converses turn after turn with `persistOnFinish`;
 * the bench counts the bytes each checkpoint writes against the tokens the turn added, and times
 * every decode step of a second agent decoding beside it, with checkpointing on and off in the
 * same run. Today a checkpoint re-encodes the whole context, so bytes per turn grow with the
 * context: the table shows how far that is from O(tokens added).
 */
import { AgentCacheStore } from '../src/application/agent-cache-store.ts';
import { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import type { CachePersistencePort, CachedAgentRecord } from '../src/ports/outbound.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import type { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import { ids, round, table } from './lib.ts';

export interface CheckpointConfig {
  readonly turns: number;
  readonly tokensPerTurn: number;
  readonly decodeTokens: number;
}

export interface CheckpointResult {
  readonly perTurn: Array<{ turn: number; contextTokens: number; tokensAdded: number; bytesWritten: number }>;
  readonly stepMs: { readonly on: { p50: number; p99: number }; readonly off: { p50: number; p99: number } };
}

/** An in-memory cold tier that counts what is written. */
class CountingStore implements CachePersistencePort {
  written = 0;
  private readonly blobs = new Map<string, { bytes: Uint8Array; record: CachedAgentRecord }>();
  async save(agentId: string, blob: Uint8Array, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void> {
    this.written += blob.byteLength;
    this.blobs.set(agentId, { bytes: blob, record: { ...record, bytes: blob.byteLength, tier: 'cold' } });
  }
  async load(agentId: string): Promise<Uint8Array | null> {
    return this.blobs.get(agentId)?.bytes ?? null;
  }
  async exists(agentId: string): Promise<boolean> {
    return this.blobs.has(agentId);
  }
  async delete(agentId: string): Promise<boolean> {
    return this.blobs.delete(agentId);
  }
  async listCachedAgents(): Promise<CachedAgentRecord[]> {
    return [...this.blobs.values()].map((b) => b.record);
  }
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** One conversation of `turns` turns; returns bytes per turn and the decode step times seen meanwhile. */
async function converse(backend: WebGpuBackend, cfg: CheckpointConfig, persist: boolean): Promise<{ perTurn: CheckpointResult['perTurn']; steps: number[] }> {
  const engine = new BlockPoolBatchEngine(backend, null);
  const cold = new CountingStore();
  const store = new AgentCacheStore(engine, backend, safetensorsBlobCodec, cold, { persistOnFinish: persist });
  const perTurn: CheckpointResult['perTurn'] = [];
  const steps: number[] = [];
  let context: number[] = [];
  for (let turn = 0; turn < cfg.turns; turn++) {
    const prompt = [...context, ...ids(turn + 3, cfg.tokensPerTurn)];
    const before = cold.written;
    const uid = await engine.submit({ agentId: 'talker', promptIds: prompt, maxTokens: cfg.decodeTokens });
    const result = engine.result(uid);
    while (engine.hasPendingWork()) {
      const t = performance.now();
      await engine.step();
      steps.push(performance.now() - t);
    }
    const r = await result;
    await store.flush();
    const previous = context.length;
    context = [...prompt, ...r.tokenIds];
    perTurn.push({ turn, contextTokens: context.length, tokensAdded: context.length - previous, bytesWritten: cold.written - before });
  }
  return { perTurn, steps };
}

export async function benchCheckpoint(backend: WebGpuBackend, cfg: CheckpointConfig): Promise<CheckpointResult> {
  // Warm-up first: shader compilation must not land in whichever run goes first.
  await converse(backend, { ...cfg, turns: 1 }, false);
  const on = await converse(backend, cfg, true);
  const off = await converse(backend, cfg, false);
  const stat = (xs: number[]): { p50: number; p99: number } => ({ p50: round(percentile(xs, 50), 3), p99: round(percentile(xs, 99), 3) });
  return { perTurn: on.perTurn, stepMs: { on: stat(on.steps), off: stat(off.steps) } };
}

export function formatCheckpoint(r: CheckpointResult): string {
  const rows = r.perTurn.map((t) => [t.turn, t.tokensAdded, t.contextTokens, t.bytesWritten, round(t.bytesWritten / Math.max(1, t.tokensAdded), 1)]);
  const bytes = table(
    'checkpoint bytes per turn (persistOnFinish)',
    'each finished turn re-encodes the whole context today (issue 8 item 5 asks for O(tokens added))',
    ['turn', 'tokens added', 'context tokens', 'bytes written', 'bytes / token added'],
    rows,
  );
  const steps = table(
    'engine step time with checkpointing on and off (same run)',
    'ms per engine.step() over the same conversation; the checkpoint encodes after an async GPU read',
    ['checkpointing', 'p50 ms', 'p99 ms'],
    [
      ['on', r.stepMs.on.p50, r.stepMs.on.p99],
      ['off', r.stepMs.off.p50, r.stepMs.off.p99],
    ],
  );
  return `${bytes}\n${steps}`;
}

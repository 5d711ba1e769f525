/**
 * Checkpoint cost (issue 8, item 5): an agent converses turn after turn with `persistOnFinish`;
 * the bench counts the bytes each checkpoint writes against the tokens the turn added, and times
 * every engine step, with checkpointing incremental (append a segment), whole (rewrite the whole
 * context every turn, as before), and off, in the same run. Incremental checkpoints write the
 * turn's tokens plus at most one partial block; whole ones grow with the context.
 */
import { AgentCacheStore } from '../src/application/agent-cache-store.ts';
import { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import type { CachePersistencePort, CachedAgentRecord, StoredSegment } from '../src/ports/outbound.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import type { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import { ids, round, table } from './lib.ts';

export interface CheckpointConfig {
  readonly turns: number;
  readonly tokensPerTurn: number;
  readonly decodeTokens: number;
}

type Turn = { turn: number; contextTokens: number; tokensAdded: number; bytesWritten: number };
type Percentiles = { p50: number; p99: number };

export interface CheckpointResult {
  /** Incremental checkpoints (segments). */
  readonly perTurn: Turn[];
  /** The same conversation with whole-blob checkpoints. */
  readonly perTurnWhole: Turn[];
  readonly stepMs: { readonly on: Percentiles; readonly whole: Percentiles; readonly off: Percentiles };
}

type SaveRecord = Omit<CachedAgentRecord, 'tier' | 'bytes'>;

/** An in-memory cold tier, with segments, that counts what is written. */
class CountingStore implements CachePersistencePort {
  written = 0;
  private readonly blobs = new Map<string, { segments: StoredSegment[]; record: CachedAgentRecord }>();
  async save(agentId: string, blob: Uint8Array, record: SaveRecord): Promise<void> {
    this.written += blob.byteLength;
    this.blobs.set(agentId, { segments: [{ start: 0, bytes: blob }], record: { ...record, bytes: blob.byteLength, tier: 'cold' } });
  }
  async appendSegment(agentId: string, segment: StoredSegment, record: SaveRecord): Promise<void> {
    this.written += segment.bytes.byteLength;
    const segments = [...(this.blobs.get(agentId)?.segments ?? []).filter((s) => s.start < segment.start), segment];
    this.blobs.set(agentId, { segments, record: { ...record, bytes: segments.reduce((n, s) => n + s.bytes.byteLength, 0), tier: 'cold' } });
  }
  async loadSegments(agentId: string): Promise<StoredSegment[] | null> {
    return this.blobs.get(agentId)?.segments.slice() ?? null;
  }
  async load(agentId: string): Promise<Uint8Array | null> {
    return this.blobs.get(agentId)?.segments[0].bytes ?? null;
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
async function converse(backend: WebGpuBackend, cfg: CheckpointConfig, mode: 'incremental' | 'whole' | 'off'): Promise<{ perTurn: Turn[]; steps: number[] }> {
  const engine = new BlockPoolBatchEngine(backend, null);
  const cold = new CountingStore();
  const store = new AgentCacheStore(engine, backend, safetensorsBlobCodec, cold, { persistOnFinish: mode !== 'off', incremental: mode === 'incremental' });
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
  await converse(backend, { ...cfg, turns: 1 }, 'off');
  const on = await converse(backend, cfg, 'incremental');
  const whole = await converse(backend, cfg, 'whole');
  const off = await converse(backend, cfg, 'off');
  const stat = (xs: number[]): Percentiles => ({ p50: round(percentile(xs, 50), 3), p99: round(percentile(xs, 99), 3) });
  return { perTurn: on.perTurn, perTurnWhole: whole.perTurn, stepMs: { on: stat(on.steps), whole: stat(whole.steps), off: stat(off.steps) } };
}

export function formatCheckpoint(r: CheckpointResult): string {
  const rows = r.perTurn.map((t, i) => {
    const whole = r.perTurnWhole[i]?.bytesWritten ?? 0;
    return [t.turn, t.tokensAdded, t.contextTokens, t.bytesWritten, round(t.bytesWritten / Math.max(1, t.tokensAdded), 1), whole, round(whole / Math.max(1, t.tokensAdded), 1)];
  });
  const bytes = table(
    'checkpoint bytes per turn (persistOnFinish), incremental segments vs whole blobs',
    'turn 0 writes the whole blob; later turns append a segment from the block boundary at or before the stored end (tokens added + at most one partial block), whole rewrites the context',
    ['turn', 'tokens added', 'context tokens', 'incremental bytes', 'incr. bytes / token added', 'whole bytes', 'whole bytes / token added'],
    rows,
  );
  const steps = table(
    'engine step time with checkpointing on and off (same run)',
    'ms per engine.step() over the same conversation; the GPU read is submitted at the turn end, the encode runs when the write-behind drains',
    ['checkpointing', 'p50 ms', 'p99 ms'],
    [
      ['on (incremental)', r.stepMs.on.p50, r.stepMs.on.p99],
      ['on (whole)', r.stepMs.whole.p50, r.stepMs.whole.p99],
      ['off', r.stepMs.off.p50, r.stepMs.off.p99],
    ],
  );
  return `${bytes}\n${steps}`;
}

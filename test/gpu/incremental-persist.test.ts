import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentCacheStore } from '../../src/application/agent-cache-store.ts';
import { BlockPoolBatchEngine } from '../../src/application/block-pool-batch-engine.ts';
import { RestoreCostModel } from '../../src/application/cache/cost-model.ts';
import type { CachePersistencePort, StoredSegment } from '../../src/ports/outbound.ts';
import { FsCachePersistence } from '../../src/adapters/node/fs-cache-persistence.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { safetensorsBlobCodec } from '../../src/adapters/safetensors/blob-codec.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { SegmentedQuotaStore } from '../quota-store.ts';
import { testGpu } from './harness.ts';

/** Issue 8 item 5: a turn's checkpoint writes O(tokens added), and the segments restore exactly. */
const MODELS = join(import.meta.dirname, '..', '..', 'public', 'models');
let llama: WebGpuBackend;

beforeAll(async () => {
  const t = await testGpu();
  llama = await WebGpuBackend.load(t.gpu, new FsModelSource(join(MODELS, 'tiny-llama')), { kvBudgetBytes: 2 * 1024 * 1024 });
});

afterAll(() => llama.dispose());

function ids(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 37 + i * 31 + ((i * i) % 11)) % 500);
}

/** The folder cache, counting the bytes each save and append hands to the disk. */
class CountingFs extends FsCachePersistence {
  written = 0;
  appends = 0;
  override async save(...args: Parameters<FsCachePersistence['save']>): Promise<void> {
    this.written += args[1].byteLength;
    await super.save(...args);
  }
  override async appendSegment(agentId: string, segment: StoredSegment, record: Parameters<FsCachePersistence['save']>[2]): Promise<void> {
    this.written += segment.bytes.byteLength;
    this.appends++;
    await super.appendSegment(agentId, segment, record);
  }
}

const eager = (): RestoreCostModel => new RestoreCostModel({ prefillTokensPerSecond: 1, restoreMegabytesPerSecond: 1e6 });

function runtime(persistence: CachePersistencePort | null): { engine: BlockPoolBatchEngine; store: AgentCacheStore } {
  const engine = new BlockPoolBatchEngine(llama, null);
  const store = new AgentCacheStore(engine, llama, safetensorsBlobCodec, persistence, { costModel: eager(), persistOnFinish: true, quantization: 'none' });
  return { engine, store };
}

async function turn(engine: BlockPoolBatchEngine, promptIds: number[], maxTokens = 4): Promise<{ tokenIds: readonly number[]; reused: number }> {
  const r = await engine.generate({ agentId: 'juliet', promptIds, maxTokens });
  await engine.run();
  return { tokenIds: r.tokenIds, reused: engine.accounting(r.uid)?.prefillReused ?? 0 };
}

describe('incremental checkpoints (persistOnFinish) on WebGPU with a folder', () => {
  it('each turn appends O(tokens added); a fresh store restores the segments exactly; export gives one blob that imports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'semantic-incr-'));
    const fs = new CountingFs({ dir });
    const a = runtime(fs);
    let context = ids(1, 40);
    const perTurn: Array<{ bytes: number; added: number; full: number }> = [];
    for (let t = 0; t < 4; t++) {
      const before = fs.written;
      const prompt = t === 0 ? context : [...context, ...ids(t + 2, 9)];
      const r = await turn(a.engine, prompt);
      await a.store.flush();
      const full = (await a.store.exportAgent('juliet'))?.byteLength ?? 0;
      perTurn.push({ bytes: fs.written - before, added: prompt.length + r.tokenIds.length - context.length, full });
      context = [...prompt, ...r.tokenIds];
    }
    // Turn 0 writes the whole blob; the next ones append a segment each.
    expect(fs.appends).toBe(3);
    expect(perTurn[0].bytes).toBe(perTurn[0].full);
    const last = perTurn[3];
    expect(last.bytes).toBeLessThan(last.full / 2);
    // Bytes per turn do not grow with the context (13 tokens added each turn, plus a partial block).
    expect(last.bytes).toBeLessThanOrEqual(perTurn[1].bytes * 1.3);
    expect(((await fs.loadSegments('juliet')) ?? []).length).toBe(4);

    const next = [...context, ...ids(9, 5)];
    // The engines below share the backend's KV memory: take what is needed from the agent that
    // never left the GPU first (its blob, and the reference next turn), on a copy of the folder.
    const hotBlob = (await a.store.exportAgent('juliet')) as Uint8Array;
    const copy = mkdtempSync(join(tmpdir(), 'semantic-incr-copy-'));
    cpSync(dir, copy, { recursive: true });
    const reference = await turn(a.engine, next, 6);

    // A fresh store over the folder restores from the segments.
    const b = runtime(new FsCachePersistence({ dir: copy }));
    await b.store.refreshCold();
    expect(b.store.tierOf('juliet')).toBe('cold');
    const resumed = await turn(b.engine, next, 6);
    expect(b.store.lastReport('juliet')).toMatchObject({ tier: 'cold' });
    expect(resumed.reused).toBe(context.length - 1);

    // Export from cold storage alone: one self-contained blob, equal to the hot agent's.
    const c = runtime(new FsCachePersistence({ dir: copy }));
    const exported = await c.store.exportAgent('juliet');
    expect(exported).not.toBeNull();
    const cold = safetensorsBlobCodec.decode(exported as Uint8Array, llama.extractModelSpec());
    const hot = safetensorsBlobCodec.decode(hotBlob, llama.extractModelSpec());
    expect(cold.tokenIds).toEqual(hot.tokenIds);
    expect(cold.snapshot.keys.map((k) => [...k])).toEqual(hot.snapshot.keys.map((k) => [...k]));
    expect(cold.snapshot.values.map((v) => [...v])).toEqual(hot.snapshot.values.map((v) => [...v]));
    const d = runtime(null);
    await d.store.importAgent(exported as Uint8Array);
    const imported = await turn(d.engine, next, 6);
    expect(imported.reused).toBe(context.length - 1);

    expect(resumed.tokenIds).toEqual(reference.tokenIds);
    expect(imported.tokenIds).toEqual(reference.tokenIds);
  }, 300_000);

  it('an append refused by a full store becomes a whole checkpoint, kept unsaved in memory, which lands when room is made', async () => {
    const cold = new SegmentedQuotaStore(1e9);
    const a = runtime(cold);
    let context = ids(3, 40);
    const r1 = await turn(a.engine, context);
    await a.store.flush();
    context = [...context, ...r1.tokenIds];
    const used = [...cold.blobs.values()].reduce((n, b) => n + b.bytes.byteLength, 0);
    cold.quota = used + 16; // no room for a segment, nor for a bigger whole blob
    const p2 = [...context, ...ids(4, 9)];
    const r2 = await turn(a.engine, p2);
    await a.store.flush();
    context = [...p2, ...r2.tokenIds];
    expect(cold.appends).toBe(1);
    expect(a.store.unsavedAgents().get('juliet')?.name).toBe('QuotaExceededError');
    expect(a.store.tierOf('juliet')).toBe('hot');
    expect((await cold.loadSegments('juliet'))?.length).toBe(1); // storage keeps the older state, whole
    cold.quota = 1e9;
    a.store.retryUnsaved();
    await a.store.flush();
    expect(a.store.unsavedAgents().size).toBe(0);
    const stored = (await cold.loadSegments('juliet')) ?? [];
    expect(stored).toHaveLength(1);
    expect(safetensorsBlobCodec.decode(stored[0].bytes, llama.extractModelSpec()).tokenIds).toEqual(context.slice(0, -1));
    // Appends resume on top of the whole blob that landed.
    const p3 = [...context, ...ids(5, 9)];
    const r3 = await turn(a.engine, p3);
    await a.store.flush();
    context = [...p3, ...r3.tokenIds];
    expect(cold.appends).toBe(2);
    expect((await cold.loadSegments('juliet'))?.length).toBe(2);
    // A fresh store restores the segments with the uninterrupted agent's tokens.
    const next = [...context, ...ids(6, 5)];
    const reference = await turn(a.engine, next, 6);
    await a.store.flush();
    const b = runtime(cold);
    await b.store.refreshCold();
    const resumed = await turn(b.engine, next, 6);
    expect(b.store.lastReport('juliet')).toMatchObject({ tier: 'cold', matchedTokens: next.length - 1 });
    expect(resumed.tokenIds).toEqual(reference.tokenIds);
  }, 300_000);

  it('a flipped data byte in a stored segment is a CacheCorruptError: the turn recomputes, with the right tokens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'semantic-incr-bad-'));
    const a = runtime(new FsCachePersistence({ dir }));
    let context = ids(7, 40);
    for (let t = 0; t < 2; t++) {
      const prompt = t === 0 ? context : [...context, ...ids(t + 8, 9)];
      const r = await turn(a.engine, prompt);
      context = [...prompt, ...r.tokenIds];
    }
    await a.store.flush();
    const copy = mkdtempSync(join(tmpdir(), 'semantic-incr-bad-copy-'));
    cpSync(dir, copy, { recursive: true });
    const next = [...context, ...ids(11, 5)];
    const reference = await turn(a.engine, next, 6);
    const [segment] = readdirSync(copy).filter((n) => n.endsWith('.kvseg'));
    const bytes = readFileSync(join(copy, segment));
    bytes[bytes.length - 7] ^= 0x10; // a data byte of the last tensor
    writeFileSync(join(copy, segment), bytes);
    const b = runtime(new FsCachePersistence({ dir: copy }));
    await b.store.refreshCold();
    const got = await turn(b.engine, next, 6);
    expect(b.store.lastReport('juliet')?.refused).toMatchObject({ name: 'CacheCorruptError' });
    expect(got.reused).toBe(0);
    expect(got.tokenIds).toEqual(reference.tokenIds);
  }, 300_000);
});

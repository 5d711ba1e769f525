import { describe, expect, it } from 'vitest';
import { Checkpointer } from '../src/application/cache/checkpointer.ts';
import { WriteBehind } from '../src/application/cache/write-behind.ts';
import type { ModelCacheSpec } from '../src/domain/model-cache-spec.ts';
import type { KvBlobCodecPort, KvSnapshot, StoredSegment } from '../src/ports/outbound.ts';
import { QuotaStore } from './quota-store.ts';

const SPEC: ModelCacheSpec = { modelId: 'm', fingerprint: 'fp', nLayers: 1, nKvHeads: 1, headDim: 1, blockTokens: 4, dtype: 'f32' };

/** A codec whose "blob" is just the token ids: enough to see what each write holds. */
const codec: KvBlobCodecPort = {
  encode: (input) => Uint8Array.from(input.tokenIds),
  decode: () => {
    throw new Error('not used');
  },
};

/** Reads resolve when the test says so, so their order can be shuffled. */
function harness(compactEvery = 16) {
  const store = Object.assign(new QuotaStore(1e9), {
    log: [] as string[],
    async appendSegment(id: string, seg: StoredSegment) {
      store.log.push(`append ${id}@${seg.start} [${[...seg.bytes].join(',')}]`);
    },
    async loadSegments() {
      return null;
    },
  });
  const save = store.save.bind(store);
  store.save = async (id, blob, rec) => {
    store.log.push(`save ${id} [${[...blob].join(',')}]`);
    await save(id, blob, rec);
  };
  const writes = new WriteBehind(store);
  const reads: Array<{ table: readonly number[]; tokens: number; resolve: (s: KvSnapshot) => void }> = [];
  const cp = new Checkpointer({
    spec: SPEC,
    codec,
    quantization: 'none',
    writes,
    canAppend: true,
    compactEvery,
    readBlocks: (table, tokens) => new Promise((resolve) => reads.push({ table, tokens, resolve })),
    track: (p) => p,
  });
  const resolveAll = async (order?: number[]): Promise<void> => {
    const pending = reads.splice(0);
    for (const i of order ?? pending.map((_, j) => j)) pending[i].resolve({ tokens: pending[i].tokens, keys: [], values: [] });
    await new Promise((r) => setTimeout(r, 0));
    await writes.flush();
  };
  return { store, cp, reads, resolveAll };
}

const agent = (n: number) => ({ agentId: 'a', tokenIds: Array.from({ length: n }, (_, i) => i + 1), blockTable: Array.from({ length: Math.ceil(n / 4) }, (_, i) => 100 + i) });

describe('Checkpointer', () => {
  it('writes the whole agent first, then appends from the block boundary at or before the stored end', async () => {
    const { store, cp, reads, resolveAll } = harness();
    cp.checkpoint(agent(6));
    expect(reads[0]).toMatchObject({ table: [100, 101], tokens: 6 });
    await resolveAll();
    cp.checkpoint(agent(11));
    // Stored 6 tokens: the segment starts at 4, reads from block 1 on, 7 tokens.
    expect(reads[0]).toMatchObject({ table: [101, 102], tokens: 7 });
    await resolveAll();
    cp.checkpoint(agent(11)); // nothing new: no write
    expect(reads).toHaveLength(0);
    expect(store.log).toEqual(['save a [1,2,3,4,5,6]', 'append a@4 [5,6,7,8,9,10,11]']);
  });

  it('writes whole again when the context was edited, and every compactEvery segments', async () => {
    const { store, cp, resolveAll } = harness(2);
    for (const n of [5, 9, 13, 17]) {
      cp.checkpoint(agent(n));
      await resolveAll();
    }
    cp.checkpoint({ ...agent(18), tokenIds: [9, ...agent(18).tokenIds.slice(1)] });
    await resolveAll();
    // At most 2 segments (the base counts): 5 whole, 9 appends, 13 compacts, 17 appends; the edit rewrites.
    expect(store.log.map((l) => l.split(' [')[0])).toEqual(['save a', 'append a@4', 'save a', 'append a@12', 'save a']);
  });

  it('queues in planning order even when the reads resolve out of order', async () => {
    const { store, cp, resolveAll } = harness();
    cp.checkpoint(agent(5));
    cp.checkpoint(agent(9));
    cp.checkpoint(agent(14));
    await resolveAll([2, 1, 0]);
    expect(store.log.map((l) => l.split(' [')[0])).toEqual(['save a', 'append a@4', 'append a@8']);
  });

  it('an append planned before a whole write from elsewhere (a spill) is dropped, never lands on top of it', async () => {
    const { store, cp, resolveAll } = harness();
    cp.checkpoint(agent(5));
    await resolveAll();
    cp.checkpoint(agent(9)); // read in flight
    cp.wholeQueued('a', agent(7).tokenIds); // e.g. a spill of another copy
    await resolveAll();
    expect(store.log.map((l) => l.split(' [')[0])).toEqual(['save a']);
    cp.forget('a');
    cp.checkpoint(agent(9));
    await resolveAll();
    expect(store.log.at(-1)).toBe('save a [1,2,3,4,5,6,7,8,9]');
  });

  it('after storage may have changed (another tab saved), the next checkpoint is whole', async () => {
    const { store, cp, resolveAll } = harness();
    cp.checkpoint(agent(5));
    await resolveAll();
    cp.forgetStored();
    cp.checkpoint(agent(9));
    await resolveAll();
    expect(store.log.map((l) => l.split(' [')[0])).toEqual(['save a', 'save a']);
  });
});

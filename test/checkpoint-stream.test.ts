import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { CacheCorruptError, InvalidRequestError, ModelNotFoundError } from '../src/domain/errors.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import {
  readCheckpoint,
  serializeSafetensors,
  streamCheckpoint,
  type CheckpointConsumer,
  type CheckpointProgress,
  type StreamedTensor,
  type TensorHeader,
} from '../src/adapters/safetensors/index.ts';
import type { ModelFileSource, ModelFileStream } from '../src/ports/outbound.ts';

/**
 * The streamed checkpoint reader (what WebGpuBackend.load uses): same fingerprint as the
 * whole-file reader, every byte delivered in order whatever the chunking, progress per file and
 * overall from the first chunk on, and broken streams refused with typed errors.
 */
const MODELS = join(import.meta.dirname, '..', 'public', 'models');

/** Files in memory, streamed in chunks of `chunk` bytes (or read whole when `streams` is false). */
class ChunkedSource implements ModelFileSource {
  readonly id = 'memory';
  opened = 0;
  constructor(
    private readonly files: ReadonlyMap<string, Uint8Array>,
    private readonly chunk: number,
    private readonly cut = Infinity,
  ) {}
  async read(name: string): Promise<Uint8Array> {
    const f = this.files.get(name);
    if (!f) throw new ModelNotFoundError(`${name} missing`);
    return f;
  }
  async has(name: string): Promise<boolean> {
    return this.files.has(name);
  }
  async open(name: string): Promise<ModelFileStream> {
    const f = await this.read(name);
    this.opened++;
    const { chunk, cut } = this;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < Math.min(f.byteLength, cut); i += chunk) yield f.slice(i, Math.min(i + chunk, f.byteLength, cut));
    }
    return { size: f.byteLength, chunks: chunks() };
  }
}

/** Collects each tensor's bytes, read in pieces of `piece` bytes (0: leave it unread). */
class Collector implements CheckpointConsumer {
  readonly got = new Map<string, Uint8Array>();
  headers: ReadonlyMap<string, TensorHeader> = new Map();
  constructor(private readonly piece: number) {}
  begin(tensors: ReadonlyMap<string, TensorHeader>): void {
    this.headers = tensors;
  }
  async tensor(t: StreamedTensor): Promise<void> {
    if (this.piece === 0) return;
    const out = new Uint8Array(t.byteLength);
    for (let at = 0; at < t.byteLength; at += this.piece) out.set(await t.read(Math.min(this.piece, t.byteLength - at)), at);
    this.got.set(t.name, out);
  }
}

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

function shardedFiles(): Map<string, Uint8Array> {
  const a = serializeSafetensors({ w1: { dtype: 'F32', shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i) }, b: { dtype: 'F16', shape: [7], data: new Uint16Array(7).fill(0x3c00) } });
  const b = serializeSafetensors({ w2: { dtype: 'BF16', shape: [600, 3], data: Uint16Array.from({ length: 1800 }, (_, i) => i) } });
  return new Map([
    ['config.json', enc({ model_type: 'llama' })],
    ['model.safetensors.index.json', enc({ weight_map: { w1: 'a.safetensors', b: 'a.safetensors', w2: 'b.safetensors' } })],
    ['a.safetensors', a],
    ['b.safetensors', b],
  ]);
}

describe('streamCheckpoint', () => {
  for (const id of ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3']) {
    it(`${id}: the fingerprint and every tensor byte equal readCheckpoint's, in 1 MiB file chunks and 4 KiB pieces`, async () => {
      const source = new FsModelSource(join(MODELS, id));
      const whole = await readCheckpoint(source);
      const c = new Collector(4096);
      const streamed = await streamCheckpoint(source, c);
      expect(streamed.fingerprint).toBe(whole.fingerprint);
      expect(streamed.totalBytes).toBe(whole.totalBytes);
      expect([...c.got.keys()].sort()).toEqual([...whole.tensors.keys()].sort());
      for (const [name, e] of whole.tensors) expect(c.got.get(name)).toEqual(e.data);
    });
  }

  it('a sharded checkpoint in odd-sized chunks: same bytes and fingerprint, progress per file and overall', async () => {
    const files = shardedFiles();
    const whole = await readCheckpoint(new ChunkedSource(files, 1));
    const events: CheckpointProgress[] = [];
    const c = new Collector(7);
    const source = new ChunkedSource(files, 333);
    const streamed = await streamCheckpoint(source, c, { onProgress: (p) => events.push(p) });
    expect(streamed.fingerprint).toBe(whole.fingerprint);
    for (const [name, e] of whole.tensors) expect(c.got.get(name)).toEqual(e.data);
    const sizeA = files.get('a.safetensors')?.byteLength ?? 0;
    const sizeB = files.get('b.safetensors')?.byteLength ?? 0;
    // Both shards are opened first, so the overall total is known from the first event on.
    expect(events[0].overallTotalBytes).toBe(sizeA + sizeB);
    expect(events[0].loadedBytes).toBeLessThanOrEqual(333);
    for (let i = 1; i < events.length; i++) expect(events[i].overallLoadedBytes).toBeGreaterThan(events[i - 1].overallLoadedBytes);
    const last = (file: string): CheckpointProgress | undefined => events.filter((e) => e.file === file).at(-1);
    expect(last('a.safetensors')).toMatchObject({ loadedBytes: sizeA, totalBytes: sizeA });
    expect(last('b.safetensors')).toMatchObject({ loadedBytes: sizeB, totalBytes: sizeB });
    expect(events.at(-1)?.overallLoadedBytes).toBe(sizeA + sizeB);
  });

  it('skips what the consumer leaves unread and still fingerprints it', async () => {
    const files = shardedFiles();
    const whole = await readCheckpoint(new ChunkedSource(files, 1));
    const streamed = await streamCheckpoint(new ChunkedSource(files, 50), new Collector(0));
    expect(streamed.fingerprint).toBe(whole.fingerprint);
  });

  it('a source without open() streams from read()', async () => {
    const files = shardedFiles();
    const plain: ModelFileSource = { id: 'plain', read: async (n) => files.get(n) ?? new Uint8Array(), has: async (n) => files.has(n) };
    const whole = await readCheckpoint(plain);
    expect((await streamCheckpoint(plain, new Collector(64))).fingerprint).toBe(whole.fingerprint);
  });

  it('a download cut short is CacheCorruptError; a read past a tensor is InvalidRequestError', async () => {
    const files = shardedFiles();
    const size = files.get('b.safetensors')?.byteLength ?? 0;
    // Only b is cut: a is smaller than the cut, so its stream ends normally.
    const cutB = new ChunkedSource(files, 100, size - 10);
    const err = await streamCheckpoint(cutB, new Collector(64)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheCorruptError);
    const greedy: CheckpointConsumer = { begin: () => undefined, tensor: async (t) => void (await t.read(t.byteLength + 1)) };
    await expect(streamCheckpoint(new ChunkedSource(files, 100), greedy)).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it('a consumer that refuses the headers stops the load before any tensor is read', async () => {
    let tensors = 0;
    const refuse: CheckpointConsumer = {
      begin: () => {
        throw new InvalidRequestError('no');
      },
      tensor: async () => void tensors++,
    };
    await expect(streamCheckpoint(new ChunkedSource(shardedFiles(), 100), refuse)).rejects.toBeInstanceOf(InvalidRequestError);
    expect(tensors).toBe(0);
  });
});

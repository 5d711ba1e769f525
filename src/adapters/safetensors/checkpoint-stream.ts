import { CacheCorruptError, InvalidRequestError } from '../../domain/errors.ts';
import { Hash64, sampleRanges } from '../../domain/fingerprint.ts';
import type { ModelFileSource, ModelFileStream } from '../../ports/outbound.ts';
import { weightFiles } from './checkpoint.ts';
import type { SafetensorsDtype } from './dtype.ts';
import { parseSafetensorsLayout, safetensorsHeaderLength, type SafetensorsLayout } from './parse.ts';

/**
 * A checkpoint read as a stream, tensor by tensor, so that loading never holds the file: every
 * shard's header is read and validated first (nothing is handed to the consumer for a bad
 * checkpoint), then the data sections flow through in file order. The consumer pulls each
 * tensor's bytes in pieces of its choosing; what it leaves unread is skipped in bounded chunks.
 * The fingerprint is the one readCheckpoint computes (same samples, same order), kept from the
 * bytes as they pass.
 */

/** A tensor's header entry. */
export interface TensorHeader {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

/** A tensor whose bytes are arriving: `read(n)` gives the next n of them. */
export interface StreamedTensor extends TensorHeader {
  readonly name: string;
  read(n: number): Promise<Uint8Array>;
}

export interface CheckpointConsumer {
  /** Every tensor of every shard, before any data: validate here (throwing aborts the load). */
  begin(tensors: ReadonlyMap<string, TensorHeader>): void;
  /** One tensor, in file order; unread bytes are skipped after it resolves. */
  tensor(t: StreamedTensor): Promise<void>;
}

/** Load progress: bytes of weight files received so far, per file and overall. */
export interface CheckpointProgress {
  readonly file: string;
  readonly loadedBytes: number;
  readonly totalBytes: number;
  readonly overallLoadedBytes: number;
  readonly overallTotalBytes: number;
}

export interface StreamCheckpointOptions {
  /** config.json as text (hashed into the fingerprint); read from the source when absent. */
  readonly configText?: string;
  readonly onProgress?: (p: CheckpointProgress) => void;
}

/** Bytes skipped per read when a consumer leaves a tensor (or part of one) unread. */
const SKIP_CHUNK = 1 << 20;
const FINGERPRINT_SAMPLES = 4;
const FINGERPRINT_SAMPLE_BYTES = 256;

function truncated(file: string, at: number, size: number): CacheCorruptError {
  return new CacheCorruptError(`safetensors: ${file} ended at byte ${at} of ${size}`, { reason: 'too-short', file, at, size });
}

/** Exactly-n-byte reads over a chunk stream, holding at most one chunk besides the answer. */
class ByteReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  private position = 0;

  constructor(
    private readonly file: string,
    private readonly size: number,
    private readonly it: AsyncIterator<Uint8Array>,
    private readonly onBytes: (n: number) => void,
  ) {}

  async read(n: number): Promise<Uint8Array> {
    if (this.position + n > this.size) throw truncated(this.file, this.position + n, this.size);
    this.position += n;
    if (this.at + n <= this.chunk.byteLength) {
      const view = this.chunk.subarray(this.at, this.at + n);
      this.at += n;
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.at >= this.chunk.byteLength) await this.next();
      const take = Math.min(n - filled, this.chunk.byteLength - this.at);
      out.set(this.chunk.subarray(this.at, this.at + take), filled);
      this.at += take;
      filled += take;
    }
    return out;
  }

  /** The file must end exactly here: more bytes than it announced is a corrupt download. */
  async expectEnd(): Promise<void> {
    if (this.at < this.chunk.byteLength) throw new CacheCorruptError(`safetensors: ${this.file} is longer than ${this.size} bytes`, { reason: 'trailing-data', file: this.file });
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
      if (r.value.byteLength > 0) throw new CacheCorruptError(`safetensors: ${this.file} is longer than ${this.size} bytes`, { reason: 'trailing-data', file: this.file });
    }
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }

  private async next(): Promise<void> {
    const r = await this.it.next();
    if (r.done) throw truncated(this.file, this.position, this.size);
    this.chunk = r.value;
    this.at = 0;
    this.onBytes(r.value.byteLength);
  }
}

/** Keeps the fingerprint's sample ranges of one tensor as its bytes pass. */
class SampleTap {
  private readonly ranges: Array<[number, number]>;
  readonly samples: Uint8Array[];
  constructor(length: number) {
    this.ranges = sampleRanges(length, FINGERPRINT_SAMPLES, FINGERPRINT_SAMPLE_BYTES);
    this.samples = this.ranges.map(([b, e]) => new Uint8Array(e - b));
  }

  /** `bytes` are the tensor's bytes from `offset`. */
  feed(offset: number, bytes: Uint8Array): void {
    this.ranges.forEach(([b, e], i) => {
      const from = Math.max(b, offset);
      const to = Math.min(e, offset + bytes.byteLength);
      if (from < to) this.samples[i].set(bytes.subarray(from - offset, to - offset), from - b);
    });
  }
}

interface OpenShard {
  readonly file: string;
  readonly size: number;
  readonly reader: ByteReader;
  readonly layout: SafetensorsLayout;
}

async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A file as a stream: the source's own, or its whole bytes as one chunk (sources without open). */
async function openFile(source: ModelFileSource, file: string): Promise<ModelFileStream> {
  if (source.open) return source.open(file);
  const bytes = await source.read(file);
  return { size: bytes.byteLength, chunks: oneChunk(bytes) };
}

async function readShardHeader(file: string, stream: ModelFileStream, progress: (file: string, n: number) => void): Promise<OpenShard> {
  const reader = new ByteReader(file, stream.size, stream.chunks[Symbol.asyncIterator](), (n) => progress(file, n));
  try {
    const headerBytes = safetensorsHeaderLength(await reader.read(8), stream.size);
    // The header is copied out of the chunk so the chunk can go.
    const layout = parseSafetensorsLayout((await reader.read(headerBytes)).slice(), stream.size);
    return { file, size: stream.size, reader, layout };
  } catch (error) {
    await reader.close();
    throw error;
  }
}

async function closeStream(stream: ModelFileStream): Promise<void> {
  await stream.chunks[Symbol.asyncIterator]().return?.()?.catch(() => undefined);
}

class ProgressMeter {
  private readonly loaded = new Map<string, number>();
  private overall = 0;
  constructor(
    private readonly sizes: ReadonlyMap<string, number>,
    private readonly onProgress: StreamCheckpointOptions['onProgress'],
  ) {}

  add(file: string, n: number): void {
    const loaded = (this.loaded.get(file) ?? 0) + n;
    this.loaded.set(file, loaded);
    this.overall += n;
    let total = 0;
    for (const s of this.sizes.values()) total += s;
    this.onProgress?.({ file, loadedBytes: loaded, totalBytes: this.sizes.get(file) ?? loaded, overallLoadedBytes: this.overall, overallTotalBytes: total });
  }
}

async function streamShard(shard: OpenShard, consumer: CheckpointConsumer): Promise<Map<string, Uint8Array[]>> {
  const samples = new Map<string, Uint8Array[]>();
  // Data come in file order; the header may list tensors in any order.
  const ordered = [...shard.layout.tensors].sort((a, b) => a.begin - b.begin);
  for (const info of ordered) {
    const byteLength = info.end - info.begin;
    const tap = new SampleTap(byteLength);
    let offset = 0;
    const read = async (n: number): Promise<Uint8Array> => {
      if (!Number.isSafeInteger(n) || n < 0 || offset + n > byteLength) {
        throw new InvalidRequestError(`read of ${n} bytes past the end of tensor ${info.name}`, { tensor: info.name, offset, byteLength });
      }
      const bytes = await shard.reader.read(n);
      tap.feed(offset, bytes);
      offset += n;
      return bytes;
    };
    await consumer.tensor({ name: info.name, dtype: info.dtype, shape: info.shape, byteLength, read });
    while (offset < byteLength) await read(Math.min(SKIP_CHUNK, byteLength - offset));
    samples.set(info.name, tap.samples);
  }
  await shard.reader.expectEnd();
  return samples;
}

/**
 * Stream every weight file of `source` through `consumer`; returns the checkpoint's fingerprint
 * (equal to readCheckpoint's) and its total bytes. Files are opened together (so the overall
 * total is known from the start) and read one after another.
 */
export async function streamCheckpoint(
  source: ModelFileSource,
  consumer: CheckpointConsumer,
  options: StreamCheckpointOptions = {},
): Promise<{ readonly fingerprint: string; readonly totalBytes: number }> {
  const hash = new Hash64();
  if (options.configText !== undefined) hash.updateString(options.configText);
  else if (await source.has('config.json')) hash.update(await source.read('config.json'));
  const files = await weightFiles(source);
  const sizes = new Map<string, number>();
  const meter = new ProgressMeter(sizes, options.onProgress);
  const shards: OpenShard[] = [];
  const streams: Array<[string, ModelFileStream]> = [];
  try {
    // Every file is opened (its size known) before any byte is read: the overall total is
    // right from the first progress event.
    for (const file of files) {
      const stream = await openFile(source, file);
      streams.push([file, stream]);
      sizes.set(file, stream.size);
    }
    for (const [file, stream] of streams) shards.push(await readShardHeader(file, stream, (f, n) => meter.add(f, n)));
    const headers = new Map<string, TensorHeader>();
    for (const { file, layout } of shards) {
      for (const t of layout.tensors) {
        if (headers.has(t.name)) throw new InvalidRequestError(`tensor ${t.name} appears in more than one shard`, { tensor: t.name, file });
        headers.set(t.name, { dtype: t.dtype, shape: t.shape, byteLength: t.end - t.begin });
      }
    }
    consumer.begin(headers);
    for (const shard of shards) {
      const samples = await streamShard(shard, consumer);
      for (const t of shard.layout.tensors) {
        hash.updateString(`${t.name}:${t.dtype}:${t.shape.join('x')}`);
        for (const s of samples.get(t.name) ?? []) hash.update(s);
      }
    }
  } finally {
    // Close every stream, including those whose header was never read.
    await Promise.all(shards.map((s) => s.reader.close().catch(() => undefined)));
    await Promise.all(streams.slice(shards.length).map(([, s]) => closeStream(s)));
  }
  let totalBytes = 0;
  for (const s of sizes.values()) totalBytes += s;
  return { fingerprint: hash.digest(), totalBytes };
}

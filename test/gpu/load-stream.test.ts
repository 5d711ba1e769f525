import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FetchModelSource, type ModelCacheStorage } from '../../src/adapters/http/fetch-model-source.ts';
import type { ModelCache } from '../../src/adapters/http/cache-tee.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import type { CheckpointProgress } from '../../src/adapters/safetensors/index.ts';
import { parseSafetensorsLayout, safetensorsHeaderLength } from '../../src/adapters/safetensors/parse.ts';
import { HfTokenizer } from '../../src/adapters/tokenizer/index.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';
import { twinSpec } from '../../tools/twin-specs.ts';
import { writeTwin } from '../../tools/twins.ts';
import { testGpu } from './harness.ts';

/**
 * Streaming loads (issue 9, item 5): host memory during a load is bounded by the largest tensor,
 * not the file (measured as the RSS high-water mark of a process that only loads), and a hub
 * download streams: progress from the first bytes, the Cache API copy written while the bytes
 * pass, and a second load served from the cache with no request at all.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const MODELS = join(ROOT, 'public', 'models');
const MiB = 1 << 20;
/**
 * Allowance besides 1.25x the largest tensor: the loader's chunk (4 MiB of input and its
 * encoding), the flush window (8 MiB of driver staging), the file stream's 1 MiB reads, and
 * garbage the JS heap has not collected yet.
 */
const FIXED_BYTES = 32 * MiB;

function largestTensorBytes(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const prefix = new Uint8Array(8);
    readSync(fd, prefix, 0, 8, 0);
    const header = new Uint8Array(safetensorsHeaderLength(prefix, size));
    readSync(fd, header, 0, header.byteLength, 8);
    return Math.max(...parseSafetensorsLayout(header, size).tensors.map((t) => t.end - t.begin));
  } finally {
    closeSync(fd);
  }
}

describe('peak host memory of a load (RSS high-water mark, in a process of its own)', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'semantic-load-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('SmolLM2-135M twin with 8 layers (113 MB, bf16): peak <= baseline + GPU weights + 1.25 x largest tensor + 32 MiB', () => {
    // 8 layers, so that the file is twice its largest tensor (the 57 MB embedding).
    const twin = writeTwin(twinSpec('smollm2-135m'), dir, 8);
    const largest = largestTensorBytes(join(twin.dir, 'model.safetensors'));
    const run = spawnSync(process.execPath, [join(ROOT, 'tools', 'load-peak.mjs'), twin.dir, 'stream'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as { baselineRss: number; peakRss: number; gpuWeightBytes: number; progressEvents: number };
    // On this CPU adapter (SwiftShader) GPU buffers live in the process: they count once.
    const bound = r.baselineRss + r.gpuWeightBytes + 1.25 * largest + FIXED_BYTES;
    const hostExtra = r.peakRss - r.baselineRss - r.gpuWeightBytes;
    console.log(`load peak: file ${(twin.fileBytes / MiB).toFixed(1)} MiB, largest tensor ${(largest / MiB).toFixed(1)} MiB, ` +
      `host beyond GPU weights ${(hostExtra / MiB).toFixed(1)} MiB, bound ${((bound - r.baselineRss - r.gpuWeightBytes) / MiB).toFixed(1)} MiB`);
    expect(r.gpuWeightBytes).toBeGreaterThan(0.99 * twin.tensorBytes);
    expect(r.peakRss).toBeLessThanOrEqual(bound);
    expect(r.progressEvents).toBeGreaterThan(10); // one per 1 MiB read
  }, 90_000);
});

/** The Cache API's put/match in memory (Node has no Cache API); put consumes the body like the real one. */
class MemoryCaches implements ModelCacheStorage {
  readonly entries = new Map<string, { status: number; headers: Headers; body: ArrayBuffer }>();
  async open(): Promise<ModelCache> {
    return {
      match: async (url) => {
        const e = this.entries.get(url);
        return e && new Response(e.status === 200 ? e.body : null, { status: e.status, headers: e.headers });
      },
      put: async (url, res) => {
        const body = await res.arrayBuffer();
        this.entries.set(url, { status: res.status, headers: new Headers(res.headers), body });
      },
    };
  }
}

describe('a hub-style download over real HTTP', () => {
  let server: Server;
  let base = '';
  /** Opened by the test once a progress event for the checkpoint has been seen. */
  let releaseSecondHalf: () => void = () => undefined;
  let heldUntilProgress = false;
  const model = join(MODELS, 'tiny-llama');

  beforeAll(async () => {
    server = createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '/').slice(1));
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(model, name));
      } catch {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': bytes.byteLength, 'content-type': 'application/octet-stream' });
      if (req.method === 'HEAD') return void res.end();
      if (name !== 'model.safetensors') return void res.end(bytes);
      // Half the checkpoint, then nothing until the client reports progress (or 10 s pass).
      const half = bytes.byteLength >> 1;
      res.write(bytes.subarray(0, half));
      const timer = setTimeout(() => res.end(bytes.subarray(half)), 10_000);
      releaseSecondHalf = () => {
        heldUntilProgress = true;
        clearTimeout(timer);
        res.end(bytes.subarray(half));
      };
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('progress starts before the download ends, the cache fills as it streams, a second load makes no request', async () => {
    const t = await testGpu();
    const caches = new MemoryCaches();
    let requests = 0;
    const counted: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    const load = async (onProgress?: (p: CheckpointProgress) => void): Promise<{ backend: WebGpuBackend; tokenizer: HfTokenizer }> => {
      const files = new FetchModelSource(base, { fetchImpl: counted, caches, cacheName: 'semantic-models' });
      const backend = await WebGpuBackend.load(t.gpu, files, { kvBudgetBytes: MiB, onProgress });
      const tokenizer = await HfTokenizer.fromFiles(files);
      return { backend, tokenizer };
    };
    const events: number[] = [];
    const first = await load((p) => {
      if (p.file !== 'model.safetensors') return;
      events.push(p.loadedBytes);
      releaseSecondHalf();
    });
    expect(heldUntilProgress).toBe(true); // an event came while half the file was still held back
    const size = readFileSync(join(model, 'model.safetensors')).byteLength;
    expect(events[0]).toBeLessThan(size);
    expect(events.at(-1)).toBe(size);
    expect(requests).toBeGreaterThan(0);
    expect(new Uint8Array(caches.entries.get(`${base}model.safetensors`)?.body ?? new ArrayBuffer(0))).toEqual(new Uint8Array(readFileSync(join(model, 'model.safetensors'))));

    const before = requests;
    const second = await load();
    expect(requests - before).toBe(0);
    const local = await WebGpuBackend.load(t.gpu, new FsModelSource(model), { kvBudgetBytes: MiB });
    for (const b of [first.backend, second.backend]) {
      expect(b.extractModelSpec().fingerprint).toBe(local.extractModelSpec().fingerprint);
      expect(b.weightBytes).toBe(local.weightBytes);
    }
    expect(second.tokenizer.encode('ROMEO: But soft')).toEqual(first.tokenizer.encode('ROMEO: But soft'));
    for (const b of [first.backend, second.backend, local]) b.dispose();
  }, 60_000);
});

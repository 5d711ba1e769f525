/**
 * GGUF over real HTTP range requests (node:http on loopback): the header is parsed from the
 * ranges it needs, not the whole file; tensors and fingerprint equal the in-memory read; a server
 * without range support is refused with a typed error. Plus hub file URLs.
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRangeSource, openGgufModel, readGguf } from '../src/adapters/gguf/index.ts';
import { HttpRangeSource, hubFileUrl, resolveModelSource } from '../src/adapters/http/range-source.ts';
import { InvalidRequestError, ModelNotFoundError } from '../src/domain/errors.ts';
import type { ModelDescriptor } from '../src/ports/inbound.ts';

const FILE = readFileSync(join(import.meta.dirname, '..', 'public', 'models', 'gguf', 'llama-k-mix.gguf'));
let server: Server;
let base = '';
let served = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (req.url === '/no-range.gguf' || !m) {
      res.writeHead(200, { 'content-length': FILE.length });
      res.end(FILE);
      return;
    }
    const [start, end] = [Number(m[1]), Math.min(Number(m[2]), FILE.length - 1)];
    served += end - start + 1;
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${FILE.length}`, 'content-length': end - start + 1 });
    res.end(FILE.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('GGUF over HTTP range requests', () => {
  it('reads the header from a few ranges and the model the same as from memory', async () => {
    const source = await HttpRangeSource.open(`${base}/m.gguf`, { cacheName: null });
    expect(source.size).toBe(FILE.length);
    served = 0;
    const header = await readGguf(source, { initialReadBytes: 64 * 1024 });
    expect(served).toBeLessThan(FILE.length / 4);
    const memory = new MemoryRangeSource(new Uint8Array(FILE));
    expect(header.tensors).toEqual((await readGguf(memory)).tensors);
    const [viaHttp, inMemory] = [await openGgufModel(source, { initialReadBytes: 64 * 1024 }), await openGgufModel(memory)];
    expect(viaHttp.fingerprint).toBe(inMemory.fingerprint);
    expect(viaHttp.config).toEqual(inMemory.config);
  });

  it('refuses a server that ignores Range with ModelNotFoundError', async () => {
    await expect(HttpRangeSource.open(`${base}/no-range.gguf`, { cacheName: null })).rejects.toBeInstanceOf(ModelNotFoundError);
  });

  it('resolves hub files', () => {
    expect(hubFileUrl('hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf'))
      .toBe('https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q4_K_M.gguf');
    expect(hubFileUrl({ repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF', file: 'qwen2.5-0.5b-instruct-q8_0.gguf', revision: 'v1' }))
      .toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/v1/qwen2.5-0.5b-instruct-q8_0.gguf');
    expect(hubFileUrl('/models/x.gguf')).toBe('/models/x.gguf');
    expect(() => hubFileUrl('hf://no-repo')).toThrow(/not a hub file/);
  });

  it('resolves a ModelDescriptor source: hub files, hub repos (model folders), and plain URLs', () => {
    const sources: Array<[ModelDescriptor['source'], string]> = [
      [{ repo: 'bartowski/SmolLM2-135M-Instruct-GGUF', file: 'SmolLM2-135M-Instruct-Q4_K_M.gguf' }, 'https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q4_K_M.gguf'],
      [{ repo: 'owner/repo', file: 'sub dir/x.gguf', revision: 'refs/pr/1' }, 'https://huggingface.co/owner/repo/resolve/refs%2Fpr%2F1/sub%20dir/x.gguf'],
      ['hf://owner/repo/x.gguf', 'https://huggingface.co/owner/repo/resolve/main/x.gguf'],
      [{ repo: 'mlx-community/Qwen2.5-0.5B-Instruct-4bit' }, 'https://huggingface.co/mlx-community/Qwen2.5-0.5B-Instruct-4bit/resolve/main/'],
      ['hf://mlx-community/Qwen2.5-0.5B-Instruct-4bit', 'https://huggingface.co/mlx-community/Qwen2.5-0.5B-Instruct-4bit/resolve/main/'],
      ['/models/tiny-llama/', '/models/tiny-llama/'],
    ];
    for (const [source, url] of sources) expect(resolveModelSource(source)).toBe(url);
    for (const bad of [{ repo: 'no-owner' }, { repo: 'a/b/c', file: 'x.gguf' }, { repo: 7 }] as unknown as ModelDescriptor['source'][]) {
      expect(() => resolveModelSource(bad)).toThrow(InvalidRequestError);
    }
  });
});

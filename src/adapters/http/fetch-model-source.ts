import { ModelNotFoundError } from '../../domain/errors.ts';
import type { ModelFileSource, ModelFileStream } from '../../ports/outbound.ts';
import { teeToCache, type ModelCache } from './cache-tee.ts';

export interface FetchProgress {
  readonly file: string;
  readonly loadedBytes: number;
  readonly totalBytes: number;
}

/** The part of the Cache API this source uses (window.caches satisfies it). */
export interface ModelCacheStorage {
  open(name: string): Promise<ModelCache>;
}

export interface FetchModelSourceOptions {
  /** Bytes of files read whole (config, tokenizer) as they arrive; checkpoints report through their loader. */
  readonly onProgress?: (p: FetchProgress) => void;
  readonly fetchImpl?: typeof fetch;
  /**
   * Cache API bucket for downloaded files, so a model is fetched once and loads offline after.
   * Default: 'semantic-models' for files from another origin (e.g. the Hugging Face hub); null
   * turns caching off. Same-origin files are the app's own and are left to its service worker.
   */
  readonly cacheName?: string | null;
  /** The Cache API to use (default: the global `caches`, where there is one). */
  readonly caches?: ModelCacheStorage;
}

const DEFAULT_CACHE = 'semantic-models';
/** Status of the marker a cache keeps for a file the server does not have. */
const MISSING = 404;

/**
 * Model files under a base URL: the app's own origin (`/models/tiny-llama/`) or a Hugging Face
 * repo (`https://huggingface.co/<repo>/resolve/main/`). Bodies stream: `open` hands the bytes on
 * as they arrive, and when caching is on the same bytes go into the Cache API as they pass (a
 * tee paced by the reader, see cache-tee.ts), so a download is held neither in memory nor twice.
 * A cached model loads with no request at all: files, and files the server said it lacks.
 */
export class FetchModelSource implements ModelFileSource {
  readonly id: string;
  private readonly base: URL;
  private readonly fetchImpl: typeof fetch;
  private readonly cacheName: string | null;

  constructor(
    baseUrl: string,
    private readonly options: FetchModelSourceOptions = {},
  ) {
    const here = globalThis.location?.href ?? 'http://localhost/';
    this.base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, here);
    this.id = this.base.href;
    this.fetchImpl = options.fetchImpl ?? ((input, init) => fetch(input, init));
    const crossOrigin = globalThis.location !== undefined && this.base.origin !== globalThis.location.origin;
    this.cacheName = options.cacheName === undefined ? (crossOrigin ? DEFAULT_CACHE : null) : options.cacheName;
  }

  async has(name: string): Promise<boolean> {
    const hit = await this.cached(name);
    if (hit) return hit.status !== MISSING;
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(name), { method: 'HEAD' });
    } catch {
      return false;
    }
    if (res.status === MISSING) await this.rememberMissing(name);
    return res.ok;
  }

  /** The whole file, with progress events from its first bytes on. */
  async read(name: string): Promise<Uint8Array> {
    const { size, chunks } = await this.open(name);
    const parts: Uint8Array[] = [];
    let loaded = 0;
    for await (const chunk of chunks) {
      parts.push(chunk);
      loaded += chunk.byteLength;
      this.options.onProgress?.({ file: name, loadedBytes: loaded, totalBytes: Math.max(size, loaded) });
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(loaded);
    let offset = 0;
    for (const p of parts) {
      out.set(p, offset);
      offset += p.byteLength;
    }
    return out;
  }

  async open(name: string): Promise<ModelFileStream> {
    const hit = await this.cached(name);
    if (hit && hit.status === MISSING) throw this.notFound(name, MISSING);
    const res = hit ?? (await this.fetchOk(name));
    // A compressed response's Content-Length counts the compressed bytes, not the body's.
    const encoding = res.headers.get('content-encoding');
    const length = encoding && encoding !== 'identity' ? null : res.headers.get('content-length');
    if (!res.body || length === null) {
      // No length up front (a compressed or chunked response): the size comes from the whole body.
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (!hit) await this.store(name, new Response(bytes, { headers: res.headers }));
      return { size: bytes.byteLength, chunks: single(bytes) };
    }
    const store = hit ? null : await this.cache();
    const chunks = store ? teeToCache(res, store, this.url(name)) : bodyChunks(res.body);
    return { size: Number(length), chunks };
  }

  private async fetchOk(name: string): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(name));
    } catch (cause) {
      throw new ModelNotFoundError(`Cannot fetch ${this.url(name)}`, { url: this.url(name), reason: String(cause) });
    }
    if (res.status === MISSING) await this.rememberMissing(name);
    if (!res.ok) throw this.notFound(name, res.status);
    return res;
  }

  private notFound(name: string, status: number): ModelNotFoundError {
    return new ModelNotFoundError(`Model file ${name} not found at ${this.id} (HTTP ${status})`, { url: this.url(name), status });
  }

  private url(name: string): string {
    return new URL(name, this.base).href;
  }

  private async cache(): Promise<ModelCache | null> {
    const storage = this.options.caches ?? (typeof caches === 'undefined' ? undefined : caches);
    if (!this.cacheName || !storage) return null;
    return storage.open(this.cacheName).catch(() => null);
  }

  private async cached(name: string): Promise<Response | null> {
    const store = await this.cache();
    return (await store?.match(this.url(name)).catch(() => undefined)) ?? null;
  }

  /** A file the server lacks (optional tokenizer files): remembered, so a cached load asks nothing. */
  private async rememberMissing(name: string): Promise<void> {
    await this.store(name, new Response(null, { status: MISSING }));
  }

  private async store(name: string, res: Response): Promise<void> {
    const store = await this.cache();
    // A failed put (quota) only costs a later re-download.
    await store?.put(this.url(name), res).catch(() => undefined);
  }
}

async function* single(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A body's chunks; stopping early cancels the download. */
async function* bodyChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield value;
    }
    finished = true;
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

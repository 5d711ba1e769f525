import { ModelNotFoundError } from '../../domain/errors.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';

export interface FetchProgress {
  readonly file: string;
  readonly loadedBytes: number;
  readonly totalBytes: number;
}

export interface FetchModelSourceOptions {
  readonly onProgress?: (p: FetchProgress) => void;
  readonly fetchImpl?: typeof fetch;
  /**
   * Cache API bucket for downloaded files, so a model is fetched once and loads offline after.
   * Default: 'semantic-models' for files from another origin (e.g. the Hugging Face hub); null
   * turns caching off. Same-origin files are the app's own and are left to its service worker.
   */
  readonly cacheName?: string | null;
}

const DEFAULT_CACHE = 'semantic-models';

/**
 * Model files under a base URL: the app's own origin (`/models/tiny-llama/`) or a Hugging Face
 * repo (`https://huggingface.co/<repo>/resolve/main/`). Streams bodies so progress can be shown.
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
    if (await this.cached(name)) return true;
    try {
      const res = await this.fetchImpl(this.url(name), { method: 'HEAD' });
      return res.ok;
    } catch {
      return false;
    }
  }

  async read(name: string): Promise<Uint8Array> {
    const hit = await this.cached(name);
    if (hit) return this.readBody(name, hit);
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(name));
    } catch (cause) {
      throw new ModelNotFoundError(`Cannot fetch ${this.url(name)}`, { url: this.url(name), reason: String(cause) });
    }
    if (!res.ok) {
      throw new ModelNotFoundError(`Model file ${name} not found at ${this.id} (HTTP ${res.status})`, { url: this.url(name), status: res.status });
    }
    const store = await this.cache();
    if (store) {
      // The cache gets its own copy of the stream; a failed put only costs a later re-download.
      await store.put(this.url(name), res.clone()).catch(() => undefined);
    }
    return this.readBody(name, res);
  }

  private url(name: string): string {
    return new URL(name, this.base).href;
  }

  private async cache(): Promise<Cache | null> {
    if (!this.cacheName || typeof caches === 'undefined') return null;
    return caches.open(this.cacheName).catch(() => null);
  }

  private async cached(name: string): Promise<Response | null> {
    const store = await this.cache();
    return (await store?.match(this.url(name))) ?? null;
  }

  private async readBody(name: string, res: Response): Promise<Uint8Array> {
    const total = Number(res.headers.get('content-length') ?? 0);
    if (!res.body || !this.options.onProgress) return new Uint8Array(await res.arrayBuffer());
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      this.options.onProgress({ file: name, loadedBytes: loaded, totalBytes: total || loaded });
    }
    const out = new Uint8Array(loaded);
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.byteLength;
    }
    return out;
  }
}

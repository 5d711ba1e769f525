/**
 * A ByteRangeSource over HTTP range requests, so a multi-GB GGUF file on the Hugging Face hub is
 * read tensor by tensor and never held whole. The server must answer `Range` with 206. In a
 * browser each range is kept in the Cache API (key: the URL with the range in its query), so a reload or an offline start
 * reads the same ranges from the cache; the reader asks for the same ranges every time.
 */
import { InvalidRequestError, ModelNotFoundError } from '../../domain/errors.ts';
import type { HubSource } from '../../ports/inbound.ts';
import type { ByteRangeSource } from '../../ports/outbound.ts';

export interface HttpRangeSourceOptions {
  readonly fetchImpl?: typeof fetch;
  /** Cache API bucket for ranges (default 'semantic-models'); null turns caching off. */
  readonly cacheName?: string | null;
  /** Bytes fetched so far (cached ranges count too), for a progress bar. */
  readonly onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

/** A hub file as a URL: `hf://owner/repo/path/file.gguf` or `{ repo, file, revision? }`. */
export function hubFileUrl(source: string | (HubSource & { readonly file: string })): string {
  if (typeof source === 'string' && !source.startsWith('hf://')) return source;
  const parts = typeof source === 'string' ? /^hf:\/\/([^/]+\/[^/]+)\/(.+)$/.exec(source) : [null, source.repo, source.file];
  if (!parts || !parts[1] || !parts[2] || !/^[\w.-]+\/[\w.-]+$/.test(parts[1])) {
    throw new InvalidRequestError(`not a hub file: ${JSON.stringify(source)} (want hf://owner/repo/file or { repo, file })`);
  }
  const revision = typeof source === 'string' ? 'main' : (source.revision ?? 'main');
  return `https://huggingface.co/${parts[1]}/resolve/${encodeURIComponent(revision)}/${parts[2].split('/').map(encodeURIComponent).join('/')}`;
}

const REPO = /^[\w.-]+\/[\w.-]+$/;

/**
 * A model source as the URL the loaders fetch: a hub file (`hf://owner/repo/file.gguf`,
 * `{ repo, file }`) becomes its resolve URL; a hub repo (`hf://owner/repo`, `{ repo }`) the folder
 * URL its files sit under (`https://huggingface.co/owner/repo/resolve/main/`); anything else (a
 * URL, a path of the app's origin) is returned as it is. Bad repo names are InvalidRequestErrors.
 */
export function resolveModelSource(source: string | HubSource): string {
  if (typeof source === 'string') {
    if (!source.startsWith('hf://')) return source;
    const repo = source.slice('hf://'.length).replace(/\/$/, '');
    return REPO.test(repo) ? hubFolderUrl(repo, 'main') : hubFileUrl(source);
  }
  if (typeof source !== 'object' || source === null || typeof source.repo !== 'string' || (source.file !== undefined && typeof source.file !== 'string')) {
    throw new InvalidRequestError('a hub source is { repo: string, file?: string, revision?: string }');
  }
  if (source.file !== undefined) return hubFileUrl({ repo: source.repo, file: source.file, revision: source.revision });
  if (!REPO.test(source.repo)) throw new InvalidRequestError(`not a hub repo: ${JSON.stringify(source.repo)} (want owner/name)`, { repo: source.repo });
  return hubFolderUrl(source.repo, source.revision ?? 'main');
}

function hubFolderUrl(repo: string, revision: string): string {
  return `https://huggingface.co/${repo}/resolve/${encodeURIComponent(revision)}/`;
}

export class HttpRangeSource implements ByteRangeSource {
  private loaded = 0;

  private constructor(
    readonly id: string,
    readonly size: number,
    private readonly options: HttpRangeSourceOptions,
  ) {}

  /** Learns the size with a one-byte range request (HEAD loses Content-Length behind some CDNs). */
  static async open(url: string, options: HttpRangeSourceOptions = {}): Promise<HttpRangeSource> {
    const probe = new HttpRangeSource(url, Number.MAX_SAFE_INTEGER, options);
    const res = await probe.range(0, 1);
    const total = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
    await res.body?.cancel();
    if (total === undefined) throw new ModelNotFoundError(`${url} does not report its size (no Content-Range)`, { url });
    return new HttpRangeSource(url, Number(total), options);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const res = await this.range(offset, length);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length !== length) {
      throw new ModelNotFoundError(`${this.id}: asked ${length} bytes at ${offset}, got ${bytes.length}`, { url: this.id, offset, length });
    }
    this.loaded += length;
    this.options.onProgress?.(this.loaded, this.size);
    return bytes;
  }

  private async range(offset: number, length: number): Promise<Response> {
    const header = `bytes=${offset}-${offset + length - 1}`;
    const cache = await this.cache();
    // The Cache API ignores URL fragments when matching, so the range goes in the query.
    const key = `${this.id}${this.id.includes('?') ? '&' : '?'}semantic-range=${offset}-${offset + length - 1}`;
    const hit = await cache?.match(key);
    if (hit) return hit;
    let res: Response;
    try {
      res = await (this.options.fetchImpl ?? fetch)(this.id, { headers: { Range: header } });
    } catch (cause) {
      throw new ModelNotFoundError(`cannot fetch ${this.id}`, { url: this.id, reason: String(cause) });
    }
    if (res.status !== 206) {
      await res.body?.cancel();
      throw new ModelNotFoundError(`${this.id} answered a range request with HTTP ${res.status} (206 needed)`, { url: this.id, status: res.status });
    }
    // The Cache API refuses 206 responses: keep the bytes under a 200 of their own.
    if (!cache) return res;
    const copy = new Response(await res.arrayBuffer(), { status: 200, headers: { 'content-range': res.headers.get('content-range') ?? '' } });
    await cache.put(key, copy.clone()).catch(() => undefined);
    return copy;
  }

  private async cache(): Promise<Cache | null> {
    const name = this.options.cacheName === undefined ? 'semantic-models' : this.options.cacheName;
    if (name === null || typeof caches === 'undefined') return null;
    return caches.open(name).catch(() => null);
  }
}

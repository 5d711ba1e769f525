/**
 * A ByteRangeSource over HTTP range requests, so a multi-GB GGUF file on the Hugging Face hub is
 * read tensor by tensor and never held whole. The server must answer `Range` with 206.
 */
import { ModelNotFoundError } from '../../domain/errors.ts';
import type { ByteRangeSource } from '../../ports/outbound.ts';

export class HttpRangeSource implements ByteRangeSource {
  private constructor(
    readonly id: string,
    readonly size: number,
    private readonly fetchImpl: typeof fetch,
  ) {}

  /** Learns the size with a one-byte range request (HEAD loses Content-Length behind some CDNs). */
  static async open(url: string, fetchImpl: typeof fetch = (i, init) => fetch(i, init)): Promise<HttpRangeSource> {
    const res = await rangeFetch(fetchImpl, url, 0, 1);
    const total = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
    await res.body?.cancel();
    if (total === undefined) {
      throw new ModelNotFoundError(`${url} does not report its size (no Content-Range)`, { url });
    }
    return new HttpRangeSource(url, Number(total), fetchImpl);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const res = await rangeFetch(this.fetchImpl, this.id, offset, length);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length !== length) {
      throw new ModelNotFoundError(`${this.id}: asked ${length} bytes at ${offset}, got ${bytes.length}`, { url: this.id, offset, length });
    }
    return bytes;
  }
}

async function rangeFetch(fetchImpl: typeof fetch, url: string, offset: number, length: number): Promise<Response> {
  let res: Response;
  try {
    res = await fetchImpl(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
  } catch (cause) {
    throw new ModelNotFoundError(`cannot fetch ${url}`, { url, reason: String(cause) });
  }
  if (res.status !== 206) {
    await res.body?.cancel();
    throw new ModelNotFoundError(`${url} answered a range request with HTTP ${res.status} (206 needed)`, { url, status: res.status });
  }
  return res;
}

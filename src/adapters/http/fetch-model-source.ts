import { ModelNotFoundError } from '../../domain/errors.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';

export interface FetchProgress {
  readonly file: string;
  readonly loadedBytes: number;
  readonly totalBytes: number;
}

/**
 * Model files under a base URL: the app's own origin (`/models/tiny-llama/`) or a Hugging Face
 * repo (`https://huggingface.co/<repo>/resolve/main/`). Streams bodies so progress can be shown.
 */
export class FetchModelSource implements ModelFileSource {
  readonly id: string;
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly onProgress?: (p: FetchProgress) => void,
    private readonly fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  ) {
    this.base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    this.id = this.base;
  }

  async has(name: string): Promise<boolean> {
    try {
      const res = await this.fetchImpl(this.url(name), { method: 'HEAD' });
      return res.ok;
    } catch {
      return false;
    }
  }

  async read(name: string): Promise<Uint8Array> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(name));
    } catch (cause) {
      throw new ModelNotFoundError(`Cannot fetch ${this.url(name)}`, { url: this.url(name), reason: String(cause) });
    }
    if (!res.ok) {
      throw new ModelNotFoundError(`Model file ${name} not found at ${this.base} (HTTP ${res.status})`, {
        url: this.url(name),
        status: res.status,
      });
    }
    return this.readBody(name, res);
  }

  private url(name: string): string {
    return new URL(name, new URL(this.base, globalThis.location?.href ?? 'http://localhost/')).href;
  }

  private async readBody(name: string, res: Response): Promise<Uint8Array> {
    const total = Number(res.headers.get('content-length') ?? 0);
    if (!res.body || !this.onProgress) return new Uint8Array(await res.arrayBuffer());
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      this.onProgress({ file: name, loadedBytes: loaded, totalBytes: total || loaded });
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

import { transfer } from 'comlink';
import type { FetchHandler } from '../src/adapters/api/index.ts';
import type { ApiWireRequest, ApiWireResponse } from '../src/client/runtime-api.ts';

/**
 * engine.fetch across the worker boundary: a Request arrives as plain data, the handler answers,
 * and the Response body goes back as a transferred ReadableStream, so tokens reach the page as
 * they are sampled. The page's abort signal arrives as apiAbort(id).
 */
const inflight = new Map<string, AbortController>();

export async function apiFetch(handler: FetchHandler, wire: ApiWireRequest): Promise<ApiWireResponse> {
  const abort = new AbortController();
  inflight.set(wire.id, abort);
  const done = (): void => void inflight.delete(wire.id);
  try {
    const response = await handler(new Request(wire.url, { method: wire.method, headers: wire.headers, body: wire.body, signal: abort.signal }));
    const headers = [...response.headers];
    if (!response.body) {
      done();
      return { status: response.status, headers, body: null };
    }
    const body = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ flush: done }));
    return transfer({ status: response.status, headers, body }, [body as unknown as Transferable]);
  } catch (error) {
    done();
    throw error;
  }
}

export function apiAbort(id: string): void {
  inflight.get(id)?.abort();
  inflight.delete(id);
}

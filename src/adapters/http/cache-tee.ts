/** The part of a Cache API cache that model downloads use (window's Cache satisfies it). */
export interface ModelCache {
  match(request: string): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
}

/**
 * A download's chunks, each also written to the Cache API as it passes: the cache entry is a
 * Response over a stream that receives the same chunks, so the copy is made during the
 * download, not after it, and the bytes are held once.
 *
 * Why not ReadableStream.tee(): tee reads as fast as its faster branch and queues every chunk
 * for the slower one without bound, so a cache writing faster than the GPU upload consumes
 * would buffer the whole file. Here the reader sets the pace: a chunk is read from the network
 * only when the loader asks for one, and handed to the cache only once the cache has taken the
 * previous one (writer.ready). If the cache fails (quota), the download goes on uncached; if the
 * load stops early, the cache entry is aborted, so a partial file is never stored.
 */
export async function* teeToCache(res: Response, cache: ModelCache, url: string): AsyncGenerator<Uint8Array> {
  const body = res.body;
  if (!body) return;
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  let caching = true;
  const stop = (): void => {
    caching = false;
    writer.abort().catch(() => undefined);
  };
  const put = cache.put(url, new Response(readable, { status: res.status, statusText: res.statusText, headers: res.headers })).catch(stop);
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (caching) {
        await writer.ready.catch(stop);
        if (caching) writer.write(value).catch(stop);
      }
      yield value;
    }
    finished = true;
    if (caching) await writer.close().catch(stop);
    await put;
  } finally {
    if (!finished) {
      stop();
      await reader.cancel().catch(() => undefined);
    }
    reader.releaseLock();
  }
}

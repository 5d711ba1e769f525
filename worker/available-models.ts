import { hubFileOf, KNOWN_HUB_MODELS, sourceKey } from '../src/application/model-sources.ts';
import type { ModelDescriptor } from '../src/ports/inbound.ts';

/** The Cache API bucket the loaders keep hub files in (FetchModelSource, HttpRangeSource). */
const MODEL_CACHE = 'semantic-models';

/** The models the app ships: its `/models/index.json` (tools/make-fixtures.ts writes it); none when absent. */
async function embedded(): Promise<ModelDescriptor[]> {
  try {
    const res = await fetch(new URL('/models/index.json', globalThis.location.href));
    if (!res.ok) return [];
    const index = (await res.json()) as { models?: Array<{ id?: unknown; path?: unknown; architecture?: unknown }> };
    return (index.models ?? [])
      .filter((m): m is { id: string; path: string; architecture?: unknown } => typeof m.id === 'string' && typeof m.path === 'string')
      .map((m) => ({ id: m.id, source: `/models/${m.path}`, kind: 'embedded' as const, ...(typeof m.architecture === 'string' ? { architecture: m.architecture } : {}) }));
  } catch {
    return [];
  }
}

/** Sources with files in the Cache API: hub repo ids, and `hf://` GGUF files. */
async function cachedSources(): Promise<Set<string>> {
  const out = new Set<string>();
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) return out;
  try {
    for (const request of await (await storage.open(MODEL_CACHE)).keys()) {
      const hub = hubFileOf(request.url);
      if (hub) out.add(/\.gguf$/i.test(hub.file) ? `hf://${hub.repo}/${hub.file}` : `hf://${hub.repo}`);
    }
  } catch {
    // No Cache API here (an opaque origin): nothing is cached.
  }
  return out;
}

/** The embedded models, the hub models known to work, and what is cached (each once). */
export async function availableModels(loaded: ModelDescriptor | null): Promise<ModelDescriptor[]> {
  const [shipped, cached] = await Promise.all([embedded(), cachedSources()]);
  const list = new Map<string, ModelDescriptor>();
  for (const m of [...shipped, ...KNOWN_HUB_MODELS.map((m) => ({ ...m, kind: 'hub' as const }))]) list.set(sourceKey(m.source), { ...m, cached: cached.has(sourceKey(m.source)) });
  for (const source of cached) if (!list.has(source)) list.set(source, { id: source.replace(/^hf:\/\//, ''), source, kind: 'hub', cached: true });
  if (loaded && !list.has(sourceKey(loaded.source))) list.set(sourceKey(loaded.source), { ...loaded, kind: 'loaded' });
  return [...list.values()];
}

import local from './local-models.json';

/** A model the picker offers. */
export interface CatalogEntry {
  readonly id: string;
  readonly label: string;
  /** What createEngine loads: a path this app serves, or a hub URL (kept in the Cache API). */
  readonly source: string;
  readonly bytes: number;
  /** embedded: shipped and precached (offline); fixture: shipped test model; hub: downloaded once. */
  readonly kind: 'embedded' | 'fixture' | 'hub';
  /** The size is the hub's published figure, not measured here. */
  readonly approximate?: boolean;
}

const HUB = 'https://huggingface.co';

/**
 * Hub models known to load (Llama and Qwen2 architectures; safetensors in bf16, and a Q4_K_M
 * GGUF). Sizes are the files' sizes on the hub. The runtime keeps their files in the Cache API
 * ('semantic-models'), so a second load is offline; the app's service worker never holds them.
 */
const HUB_MODELS: readonly CatalogEntry[] = [
  { id: 'SmolLM2-135M-Instruct', label: 'SmolLM2 135M Instruct', source: `${HUB}/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/`, bytes: 269_060_552, kind: 'hub', approximate: true },
  { id: 'SmolLM2-360M-Instruct', label: 'SmolLM2 360M Instruct', source: `${HUB}/HuggingFaceTB/SmolLM2-360M-Instruct/resolve/main/`, bytes: 723_674_912, kind: 'hub', approximate: true },
  { id: 'Qwen2.5-0.5B-Instruct', label: 'Qwen2.5 0.5B Instruct', source: `${HUB}/Qwen/Qwen2.5-0.5B-Instruct/resolve/main/`, bytes: 988_097_824, kind: 'hub', approximate: true },
  {
    id: 'SmolLM2-135M-Instruct-Q4_K_M',
    label: 'SmolLM2 135M Instruct, GGUF Q4_K_M',
    source: `${HUB}/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q4_K_M.gguf`,
    bytes: 105_472_064,
    kind: 'hub',
    approximate: true,
  },
];

/** Embedded model first (the default), then the fixtures, then the hub. */
export const CATALOG: readonly CatalogEntry[] = [...(local.models as CatalogEntry[]), ...HUB_MODELS];

export const DEFAULT_MODEL: CatalogEntry = CATALOG[0];

/** The Cache API bucket the runtime keeps hub files in (FetchModelSource's default). */
const MODEL_CACHE = 'semantic-models';

/** Which hub models have files in the Cache API (a download that finished or started). */
export async function cachedHubModels(): Promise<Set<string>> {
  const found = new Set<string>();
  if (typeof caches === 'undefined' || !(await caches.has(MODEL_CACHE))) return found;
  const keys = (await (await caches.open(MODEL_CACHE)).keys()).map((r) => r.url);
  for (const m of HUB_MODELS) {
    const weights = m.source.endsWith('.gguf') ? m.source : `${m.source}model.safetensors`;
    if (keys.some((k) => k.startsWith(weights))) found.add(m.id);
  }
  return found;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

import { describe, expect, it } from 'vitest';
import { hubFileOf, KNOWN_HUB_MODELS, repoIdSource, sourceKey } from '../src/application/model-sources.ts';
import { resolveModelSource } from '../src/adapters/http/range-source.ts';

describe('model sources', () => {
  it('reads a bare Hugging Face repo id as a hub folder; paths, URLs and GGUF files stay as given', () => {
    expect(resolveModelSource(repoIdSource('HuggingFaceTB/SmolLM2-135M-Instruct'))).toBe('https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/');
    expect(repoIdSource('hf://Qwen/Qwen2.5-0.5B-Instruct')).toBe('hf://Qwen/Qwen2.5-0.5B-Instruct');
    for (const kept of ['/models/tiny-llama/', './models/x', 'models/tiny-llama/', 'https://example.com/m/', 'owner/file.gguf', 'hf://a/b/c.gguf', '../x']) {
      expect(repoIdSource(kept)).toBe(kept);
    }
    expect(repoIdSource({ repo: 'a/b' })).toEqual({ repo: 'a/b' });
  });

  it('names the repo and file of a hub URL (what the Cache API holds), keyed like the sources', () => {
    expect(hubFileOf('https://huggingface.co/Qwen/Qwen3-0.6B/resolve/main/model.safetensors')).toEqual({ repo: 'Qwen/Qwen3-0.6B', file: 'model.safetensors' });
    expect(hubFileOf('https://huggingface.co/a/b/resolve/main/x%20y.gguf?range=0-99')).toEqual({ repo: 'a/b', file: 'x y.gguf' });
    expect(hubFileOf('http://127.0.0.1/models/tiny-llama/config.json')).toBeNull();
    expect(sourceKey('Qwen/Qwen3-0.6B')).toBe(sourceKey({ repo: 'Qwen/Qwen3-0.6B' }));
    expect(sourceKey({ repo: 'a/b', file: 'c.gguf' })).toBe('hf://a/b/c.gguf');
  });

  it('lists each known hub model once, each resolving to a hub URL', () => {
    const keys = KNOWN_HUB_MODELS.map((m) => sourceKey(m.source));
    expect(new Set(keys).size).toBe(keys.length);
    for (const m of KNOWN_HUB_MODELS) expect(resolveModelSource(repoIdSource(m.source)).startsWith('https://huggingface.co/')).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { hubFileOf, hubFolderUrl, KNOWN_HUB_MODELS } from '../src/application/model-sources.ts';

describe('model sources', () => {
  it('reads a Hugging Face repo id as the hub URL of its files; paths, URLs and GGUF files stay as given', () => {
    expect(hubFolderUrl('HuggingFaceTB/SmolLM2-135M-Instruct')).toBe('https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/');
    expect(hubFolderUrl('hf://Qwen/Qwen2.5-0.5B-Instruct')).toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/resolve/main/');
    for (const kept of ['/models/tiny-llama/', './models/x', 'models/tiny-llama/', 'https://example.com/m/', 'owner/file.gguf', 'hf://a/b/c.gguf', '../x']) {
      expect(hubFolderUrl(kept)).toBe(kept);
    }
  });

  it('names the repo and file of a hub URL (what the Cache API holds)', () => {
    expect(hubFileOf('https://huggingface.co/Qwen/Qwen3-0.6B/resolve/main/model.safetensors')).toEqual({ repo: 'Qwen/Qwen3-0.6B', file: 'model.safetensors' });
    expect(hubFileOf('https://huggingface.co/a/b/resolve/main/x%20y.gguf?range=0-99')).toEqual({ repo: 'a/b', file: 'x y.gguf' });
    expect(hubFileOf('http://127.0.0.1/models/tiny-llama/config.json')).toBeNull();
  });

  it('lists each known hub model once, each a repo id or a hub GGUF file', () => {
    const sources = KNOWN_HUB_MODELS.map((m) => m.source);
    expect(new Set(sources).size).toBe(sources.length);
    for (const s of sources) expect(hubFolderUrl(s).startsWith('https://huggingface.co/') || /^hf:\/\/.+\.gguf$/.test(s)).toBe(true);
  });
});

import type { ModelDescriptor } from '../ports/inbound.ts';

/**
 * Where a model's files are. A model source is a URL or a path the app serves (`/models/x/`,
 * `./x/`, `https://...`), a GGUF file (`*.gguf`, `hf://owner/repo/file.gguf`), or a Hugging Face
 * repo id (`owner/name` or `hf://owner/name`), read from the hub's `resolve/main` URLs (and kept
 * in the Cache API by the loader, so a second load works offline). A path with one slash and
 * neither a leading `/` or `./` nor a trailing `/` reads as a repo id.
 */
const REPO_ID = /^(?:hf:\/\/)?([\w.-]+\/[\w.-]+)$/;

export function hubFolderUrl(source: string): string {
  const m = REPO_ID.exec(source);
  if (!m || /\.gguf$/i.test(source) || m[1].startsWith('.')) return source;
  return `https://huggingface.co/${m[1]}/resolve/main/`;
}

/** The repo id and file of a hub URL (`https://huggingface.co/<owner>/<repo>/resolve/<rev>/<file>`), else null. */
export function hubFileOf(url: string): { readonly repo: string; readonly file: string } | null {
  const m = /^https:\/\/huggingface\.co\/([\w.-]+\/[\w.-]+)\/resolve\/[^/]+\/([^?#]+)/.exec(url);
  return m ? { repo: m[1], file: decodeURIComponent(m[2]) } : null;
}

/**
 * Hub models whose architecture and configuration the runtime runs (their random-weight twins,
 * at real shapes, pass the GPU tests: test/gpu/twins.test.ts), each in the format people have.
 * Llama 3.2 comes from an ungated mirror: meta-llama's repo needs a token.
 */
export const KNOWN_HUB_MODELS: readonly ModelDescriptor[] = Object.freeze([
  { id: 'SmolLM2-135M-Instruct', source: 'HuggingFaceTB/SmolLM2-135M-Instruct', architecture: 'LlamaForCausalLM' },
  { id: 'SmolLM2-360M-Instruct', source: 'HuggingFaceTB/SmolLM2-360M-Instruct', architecture: 'LlamaForCausalLM' },
  { id: 'Qwen2.5-0.5B-Instruct', source: 'Qwen/Qwen2.5-0.5B-Instruct', architecture: 'Qwen2ForCausalLM' },
  { id: 'Qwen3-0.6B', source: 'Qwen/Qwen3-0.6B', architecture: 'Qwen3ForCausalLM' },
  { id: 'Llama-3.2-1B-Instruct', source: 'unsloth/Llama-3.2-1B-Instruct', architecture: 'LlamaForCausalLM' },
  { id: 'SmolLM2-135M-Instruct-Q4_K_M', source: 'hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf', architecture: 'llama' },
]);

import type { HubSource, ModelDescriptor } from '../ports/inbound.ts';

/**
 * Where a model's files are. Beside what the loaders resolve (a URL or a path the app serves,
 * a `.gguf` file, `hf://owner/repo[/file.gguf]`, `{ repo, file?, revision? }`), a bare Hugging
 * Face repo id `owner/name` names a hub model folder: it becomes `hf://owner/name`. A relative
 * path with one slash therefore needs a leading `./` or `/`, or a trailing `/`.
 */
const REPO_ID = /^[\w-][\w.-]*\/[\w.-]+$/;

export function repoIdSource(source: string | HubSource): string | HubSource {
  return typeof source === 'string' && REPO_ID.test(source) && !/\.gguf$/i.test(source) ? `hf://${source}` : source;
}

/** One key per source, for lists (a hub source object by its fields). */
export function sourceKey(source: string | HubSource): string {
  if (typeof source === 'string') return repoIdSource(source) as string;
  const revision = source.revision && source.revision !== 'main' ? `@${source.revision}` : '';
  return `hf://${source.repo}${source.file ? `/${source.file}` : ''}${revision}`;
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

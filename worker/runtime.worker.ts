/**
 * Composition root inside the dedicated Web Worker: builds the adapters and exposes them to the
 * page with Comlink. For now the model runs on the CPU reference backend; the WebGPU backend
 * and the batch engine plug in here behind the same surface.
 */
import { expose } from 'comlink';
import { installErrorTransfer } from '../src/client/comlink-errors.ts';
import type { GenerateReply, GpuInfo, LoadedModelInfo, PromptInput, RuntimeApi } from '../src/client/runtime-api.ts';
import { InvalidRequestError, ModelNotFoundError } from '../src/domain/errors.ts';
import { validateTokenIds } from '../src/domain/values.ts';
import type { LoadProgress, ModelDescriptor } from '../src/ports/inbound.ts';
import type { ChatMessage } from '../src/ports/outbound.ts';
import { loadCpuModel, type LoadedCpuModel } from '../src/adapters/cpu/index.ts';
import { FetchModelSource } from '../src/adapters/http/fetch-model-source.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';

installErrorTransfer();

interface Loaded {
  readonly descriptor: ModelDescriptor;
  readonly cpu: LoadedCpuModel;
  readonly tokenizer: HfTokenizer;
}

let current: Loaded | null = null;

function requireModel(): Loaded {
  if (!current) throw new ModelNotFoundError('No model is loaded; call loadModel first');
  return current;
}

/** `/models/tiny-llama/` -> tokenizer folder `tiny-llama` under `/models/`. */
function splitSource(source: string): { localModelPath: string; modelId: string } {
  const trimmed = source.replace(/\/+$/, '');
  const cut = trimmed.lastIndexOf('/');
  if (cut < 0) throw new InvalidRequestError('model source must be a URL path such as /models/tiny-llama/', { source });
  return { localModelPath: `${trimmed.slice(0, cut)}/`, modelId: trimmed.slice(cut + 1) };
}

function promptIds(loaded: Loaded, prompt: PromptInput): number[] {
  const given = [prompt.text, prompt.chat, prompt.ids].filter((p) => p !== undefined).length;
  if (given !== 1) throw new InvalidRequestError('give exactly one of text, chat or ids');
  if (prompt.ids) return [...validateTokenIds(prompt.ids, loaded.cpu.config.vocabSize)];
  if (prompt.chat) return loaded.tokenizer.applyChatTemplate(prompt.chat);
  return loaded.tokenizer.encode(prompt.text ?? '');
}

const api: RuntimeApi = {
  async gpuInfo(): Promise<GpuInfo> {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) return { available: false, features: [] };
    return { available: true, vendor: adapter.info.vendor, architecture: adapter.info.architecture, features: [...adapter.features] };
  },

  async loadModel(descriptor: ModelDescriptor, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo> {
    const files = new FetchModelSource(descriptor.source, onProgress);
    const cpu = await loadCpuModel(files);
    const tokenizer = await HfTokenizer.load({ ...splitSource(descriptor.source), files });
    current = { descriptor, cpu, tokenizer };
    const c = cpu.config;
    return {
      id: descriptor.id,
      architecture: c.architecture,
      nLayers: c.nLayers,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      eosTokenIds: tokenizer.eosTokenIds(),
    };
  },

  async tokenize(text: string): Promise<number[]> {
    return requireModel().tokenizer.encode(text);
  },

  async detokenize(ids: readonly number[]): Promise<string> {
    return requireModel().tokenizer.decode(ids);
  },

  async renderChat(messages: readonly ChatMessage[]): Promise<{ text: string; ids: number[] }> {
    const { tokenizer } = requireModel();
    return { text: tokenizer.renderChat(messages), ids: tokenizer.applyChatTemplate(messages) };
  },

  async generate(prompt: PromptInput, maxTokens: number, onToken?: (id: number, text: string) => void): Promise<GenerateReply> {
    const loaded = requireModel();
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidRequestError('maxTokens must be a positive integer', { maxTokens });
    const ids = promptIds(loaded, prompt);
    const started = performance.now();
    const eos = loaded.tokenizer.eosTokenIds();
    const { tokens } = loaded.cpu.model.generateGreedy(ids, maxTokens, { eosTokenIds: eos });
    if (onToken) for (const t of tokens) await onToken(t, loaded.tokenizer.decode([t]));
    const last = tokens[tokens.length - 1];
    return {
      promptIds: ids,
      tokenIds: tokens,
      text: loaded.tokenizer.decode(tokens, { skipSpecialTokens: true }),
      finishReason: last !== undefined && eos.includes(last) ? 'stop' : 'length',
      elapsedMs: performance.now() - started,
    };
  },
};

expose(api);

/**
 * Composition of the GGUF loader with the WebGPU backend and the tokenizer: a lone `.gguf` file
 * (or one with a tokenizer.json beside it) becomes a backend whose matrices stay in the file's
 * block layouts on the GPU, plus its HfTokenizer. Shared by `semantic generate` and the tests.
 */
import { dirname } from 'node:path';
import { ggufTokenizerFiles, GgufTokenizerSource, openGgufModel, type GgufModel } from '../src/adapters/gguf/index.ts';
import { FileRangeSource } from '../src/adapters/node/file-range-source.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import type { GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../src/adapters/webgpu/webgpu-backend.ts';
import { blockWeightTensors } from '../src/adapters/webgpu/block-weights.ts';
import type { ByteRangeSource } from '../src/ports/outbound.ts';

export async function ggufBackend(gpu: GpuContext, model: GgufModel, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  return WebGpuBackend.fromTensors(gpu, model.config, { tensors: await blockWeightTensors(model.weights()), fingerprint: model.fingerprint }, options);
}

export async function ggufTokenizer(model: GgufModel, id: string, beside?: FsModelSource): Promise<HfTokenizer> {
  return HfTokenizer.fromFiles(new GgufTokenizerSource(id, ggufTokenizerFiles(model.file), beside));
}

export interface OpenedGguf {
  readonly model: GgufModel;
  readonly tokenizer: HfTokenizer;
  readonly source: ByteRangeSource & { close(): Promise<void> };
}

/** Open a `.gguf` path: header, config and tokenizer (a tokenizer.json beside the file wins). */
export async function openGgufPath(path: string): Promise<OpenedGguf> {
  const source = await FileRangeSource.open(path);
  const model = await openGgufModel(source);
  const tokenizer = await ggufTokenizer(model, path, new FsModelSource(dirname(path)));
  return { model, tokenizer, source };
}

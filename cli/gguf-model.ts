/**
 * Composition of the GGUF loader with the WebGPU backend and the tokenizer: a lone `.gguf` file
 * (or one with a tokenizer.json beside it) becomes a backend whose matrices stay in the file's
 * block layouts on the GPU, plus its HfTokenizer. Shared by `semantic generate` and the tests.
 */
import { dirname } from 'node:path';
import { dequantizeWeight, ggufTokenizerFiles, GgufTokenizerSource, openGgufModel, type GgufModel } from '../src/adapters/gguf/index.ts';
import { FileRangeSource } from '../src/adapters/node/file-range-source.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import type { TensorEntry } from '../src/adapters/safetensors/index.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import type { GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../src/adapters/webgpu/webgpu-backend.ts';
import type { BlockTensorEntry } from '../src/adapters/webgpu/weights.ts';
import type { ByteRangeSource } from '../src/ports/outbound.ts';

/**
 * The model's tensors for the uploader: matrices keep their ggml bytes (BlockTensorEntry);
 * vectors (norms, biases: F32 in practice) are widened to f32 here, as every backend keeps them.
 */
export async function ggufGpuTensors(model: GgufModel): Promise<Map<string, TensorEntry>> {
  const out = new Map<string, TensorEntry>();
  for await (const w of model.weights()) {
    if (w.shape.length === 1) {
      const f32 = dequantizeWeight(w);
      out.set(w.name, { dtype: 'F32', shape: w.shape, data: new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength) });
    } else {
      const entry: BlockTensorEntry = { dtype: 'U8', shape: w.shape, data: w.bytes, ggmlType: w.type };
      out.set(w.name, entry);
    }
  }
  return out;
}

export async function ggufBackend(gpu: GpuContext, model: GgufModel, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  return WebGpuBackend.fromTensors(gpu, model.config, { tensors: await ggufGpuTensors(model), fingerprint: model.fingerprint }, options);
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

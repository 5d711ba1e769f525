import { parseModelConfig, type ModelConfig } from '../../domain/model-config.ts';
import { assertTensorShapes } from '../../domain/model-tensors.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';
import { readCheckpoint, readJsonFile, tensorToFloat32 } from '../safetensors/index.ts';
import { CpuReferenceModel } from './cpu-model.ts';

/**
 * Load an HF model folder (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json) into the CPU reference model, every tensor widened to f32.
 */

/** One tensor of the checkpoint, widened to f32, with its shape from the file. */
export interface LoadedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface LoadedCpuModel {
  readonly config: ModelConfig;
  readonly model: CpuReferenceModel;
}

/** Every tensor of every weight file, converted to f32, keyed by HF name. */
export async function loadWeights(source: ModelFileSource): Promise<Map<string, LoadedTensor>> {
  const out = new Map<string, LoadedTensor>();
  const { tensors } = await readCheckpoint(source);
  for (const [name, entry] of tensors) out.set(name, { shape: entry.shape, data: tensorToFloat32(entry) });
  return out;
}

export async function loadModelConfig(source: ModelFileSource): Promise<ModelConfig> {
  return parseModelConfig(await readJsonFile(source, 'config.json'));
}

export async function loadCpuModel(source: ModelFileSource): Promise<LoadedCpuModel> {
  const config = await loadModelConfig(source);
  const tensors = await loadWeights(source);
  assertTensorShapes(config, tensors);
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of tensors) weights.set(name, t.data);
  return { config, model: new CpuReferenceModel(config, weights) };
}

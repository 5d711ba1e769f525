import { InvalidRequestError, ModelNotFoundError } from '../../domain/errors.ts';
import { parseModelConfig, type ModelConfig } from '../../domain/model-config.ts';
import { modelTensorSpecs } from '../../domain/model-tensors.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';
import { parseSafetensors, tensorToFloat32 } from '../safetensors/index.ts';
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

const SINGLE_FILE = 'model.safetensors';
const SHARD_INDEX = 'model.safetensors.index.json';

async function readJson(source: ModelFileSource, name: string): Promise<unknown> {
  const bytes = await source.read(name);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new InvalidRequestError(`${name} in ${source.id} is not valid JSON`, { file: name }, { cause: error });
  }
}

export async function loadModelConfig(source: ModelFileSource): Promise<ModelConfig> {
  return parseModelConfig(await readJson(source, 'config.json'));
}

/** The shard files named by an index's weight_map, each once, in first-seen order. */
function shardFiles(index: unknown): string[] {
  const map: unknown = typeof index === 'object' && index !== null ? Reflect.get(index, 'weight_map') : undefined;
  if (typeof map !== 'object' || map === null) {
    throw new InvalidRequestError(`${SHARD_INDEX} has no weight_map object`);
  }
  const files = new Set<string>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string') throw new InvalidRequestError(`${SHARD_INDEX}: bad file for ${tensor}`, { tensor });
    files.add(file);
  }
  return [...files];
}

async function weightFiles(source: ModelFileSource): Promise<string[]> {
  if (await source.has(SINGLE_FILE)) return [SINGLE_FILE];
  if (await source.has(SHARD_INDEX)) return shardFiles(await readJson(source, SHARD_INDEX));
  throw new ModelNotFoundError(`${source.id} has neither ${SINGLE_FILE} nor ${SHARD_INDEX}`, { source: source.id });
}

/** Every tensor of every weight file, converted to f32, keyed by HF name. */
export async function loadWeights(source: ModelFileSource): Promise<Map<string, LoadedTensor>> {
  const out = new Map<string, LoadedTensor>();
  for (const file of await weightFiles(source)) {
    const parsed = parseSafetensors(await source.read(file));
    for (const [name, entry] of parsed.tensors) {
      if (out.has(name)) {
        throw new InvalidRequestError(`tensor ${name} appears in more than one shard`, { tensor: name, file });
      }
      out.set(name, { shape: entry.shape, data: tensorToFloat32(entry) });
    }
  }
  return out;
}

/** Element counts alone would accept a transposed weight; the file's shapes catch it. */
function checkShapes(config: ModelConfig, tensors: ReadonlyMap<string, LoadedTensor>): void {
  for (const spec of modelTensorSpecs(config)) {
    const found = tensors.get(spec.name);
    if (!found) continue; // CpuReferenceModel names missing tensors
    const same = found.shape.length === spec.shape.length && found.shape.every((d, i) => d === spec.shape[i]);
    if (!same) {
      throw new InvalidRequestError(
        `tensor ${spec.name} has shape [${found.shape.join(', ')}], expected [${spec.shape.join(', ')}]`,
        { tensor: spec.name, shape: found.shape, expected: spec.shape },
      );
    }
  }
}

export async function loadCpuModel(source: ModelFileSource): Promise<LoadedCpuModel> {
  const config = await loadModelConfig(source);
  const tensors = await loadWeights(source);
  checkShapes(config, tensors);
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of tensors) weights.set(name, t.data);
  return { config, model: new CpuReferenceModel(config, weights) };
}

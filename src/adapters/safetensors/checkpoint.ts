import { InvalidRequestError, ModelNotFoundError } from '../../domain/errors.ts';
import { Hash64, sampleBytes } from '../../domain/fingerprint.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';
import { parseSafetensors, type TensorEntry } from './parse.ts';

/**
 * A Hugging Face checkpoint as stored: model.safetensors, or the shards a
 * model.safetensors.index.json names. Tensors are zero-copy views into the file bytes.
 */
export interface Checkpoint {
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /** Hash of config.json, every tensor's name/dtype/shape, and sampled weight bytes. */
  readonly fingerprint: string;
  readonly totalBytes: number;
}

export const SINGLE_FILE = 'model.safetensors';
export const SHARD_INDEX = 'model.safetensors.index.json';

export async function readJsonFile(source: ModelFileSource, name: string): Promise<unknown> {
  const bytes = await source.read(name);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new InvalidRequestError(`${name} in ${source.id} is not valid JSON`, { file: name }, { cause: error });
  }
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

/** The weight files of a checkpoint: model.safetensors, or the shards its index names. */
export async function weightFiles(source: ModelFileSource): Promise<string[]> {
  if (await source.has(SINGLE_FILE)) return [SINGLE_FILE];
  if (await source.has(SHARD_INDEX)) return shardFiles(await readJsonFile(source, SHARD_INDEX));
  throw new ModelNotFoundError(`${source.id} has neither ${SINGLE_FILE} nor ${SHARD_INDEX}`, { source: source.id });
}

export async function readCheckpoint(source: ModelFileSource, configText?: string): Promise<Checkpoint> {
  const tensors = new Map<string, TensorEntry>();
  const hash = new Hash64();
  if (configText !== undefined) hash.updateString(configText);
  else if (await source.has('config.json')) hash.update(await source.read('config.json'));
  let totalBytes = 0;
  for (const file of await weightFiles(source)) {
    const bytes = await source.read(file);
    totalBytes += bytes.byteLength;
    const parsed = parseSafetensors(bytes);
    for (const [name, entry] of parsed.tensors) {
      if (tensors.has(name)) throw new InvalidRequestError(`tensor ${name} appears in more than one shard`, { tensor: name, file });
      tensors.set(name, entry);
      hash.updateString(`${name}:${entry.dtype}:${entry.shape.join('x')}`);
      for (const sample of sampleBytes(entry.data, 4, 256)) hash.update(sample);
    }
  }
  return { tensors, fingerprint: hash.digest(), totalBytes };
}

/**
 * A GGUF checkpoint opened for loading: header, ModelConfig, fingerprint, and its weights read
 * one tensor at a time through the source (never the whole file).
 *
 * The fingerprint hashes the architecture keys, every tensor's name, type and shape, and bytes
 * sampled from each tensor's quantized data: the same model quantized differently (Q4_K_M vs
 * Q8_0) gives different KV, so its caches must not cross.
 */
import { Hash64 } from '../../domain/fingerprint.ts';
import type { ModelConfig } from '../../domain/model-config.ts';
import type { ByteRangeSource } from '../../ports/outbound.ts';
import { ggufModelConfig } from './model-config.ts';
import { readGguf, type GgufFile, type ReadGgufOptions } from './reader.ts';
import { readGgufWeight, readRopeFactors, type GgufWeight } from './weights.ts';

export interface GgufModel {
  readonly file: GgufFile;
  readonly config: ModelConfig;
  readonly fingerprint: string;
  /** Bytes of the weight tensors in the file (what the GPU should hold). */
  readonly weightBytes: number;
  /** The runtime's weights, one at a time, rows in HF order, still in their block layout. */
  weights(): AsyncGenerator<GgufWeight>;
}

export async function openGgufModel(source: ByteRangeSource, options: ReadGgufOptions = {}): Promise<GgufModel> {
  const file = await readGguf(source, options);
  const config = ggufModelConfig(file, await readRopeFactors(source, file));
  const fingerprint = await fingerprintOf(source, file, config);
  let weightBytes = 0;
  for (const t of file.tensors) weightBytes += t.byteLength;
  return {
    file,
    config,
    fingerprint,
    weightBytes,
    async *weights() {
      for (const info of file.tensors) {
        const w = await readGgufWeight(source, config, info);
        if (w !== undefined) yield w;
      }
    },
  };
}

async function fingerprintOf(source: ByteRangeSource, file: GgufFile, config: ModelConfig): Promise<string> {
  const hash = new Hash64().updateString(`gguf:${JSON.stringify(config)}`);
  for (const t of file.tensors) {
    hash.updateString(`${t.name}:${t.type.name}:${t.ne.join('x')}`);
    // Four 256-byte samples per tensor: cheap on multi-GB files, yet any requantization shows.
    const len = Math.min(t.byteLength, 256);
    const step = t.byteLength > len ? Math.floor((t.byteLength - len) / 3) : 0;
    for (let i = 0; i < (step > 0 ? 4 : 1); i++) {
      hash.update(await source.read(t.offset + i * step, len));
    }
  }
  return hash.digest();
}

/** Every weight dequantized to f32, keyed by HF name (the CPU reference's input). */
export async function readGgufWeightsF32(model: GgufModel, dequantize: (w: GgufWeight) => Float32Array): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for await (const w of model.weights()) out.set(w.name, dequantize(w));
  return out;
}

